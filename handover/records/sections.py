"""How a record is cut into separately encrypted sections, and which audience reads which.

The routing fields (LA, allocated team, urgency, template version) live in plaintext columns.
Every other top-level key of the record is a section of its own, except ``contact``, which is
stored as two: the referral facts and the referrer's identity, so that the police audience can
be given the first without ever decrypting the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROUTING_FIELDS = ("template_version", "local_authority", "allocated_team", "urgency")
REFERRER_FIELDS = ("referrer_name", "referrer_agency", "referrer_phone")

CONTENT_SECTIONS = (
    "summary",
    "contact",
    "concern",
    "children",
    "household",
    "professionals",
    "timeline",
    "strategy_discussion",
    "police",
    "medical",
    "safety_plans",
    "analysis",
    "contingency",
    "actions",
    "equality_and_diversity",
    "consent",
    "confidential_from_family",
)
STORED_SECTIONS = (*CONTENT_SECTIONS, "contact_referrer")

# Sections each audience decrypts. Police never decrypt the equality and diversity notes or
# consent, and decrypt the referrer's identity only once ``contact`` shows that police referred.
AUDIENCE_SECTIONS: dict[str, frozenset[str]] = {
    "edt": frozenset(STORED_SECTIONS),
    "team": frozenset(STORED_SECTIONS),
    "police": frozenset(STORED_SECTIONS)
    - {"equality_and_diversity", "consent", "contact_referrer"},
    "metadata": frozenset(),
}
POLICE_SOURCE = "police"


def referred_by_police(contact: Any) -> bool:
    """Whether the contact section says the police made the referral."""
    return isinstance(contact, Mapping) and contact.get("source") == POLICE_SOURCE


def further_sections(audience: str, content: Mapping[str, Any]) -> frozenset[str]:
    """Sections the audience may decrypt only given what it has already read."""
    if audience == "police" and referred_by_police(content.get("contact")):
        return frozenset({"contact_referrer"})
    return frozenset()


def split(record: Mapping[str, Any]) -> dict[str, Any]:
    """Cut the content of a (possibly partial) record into stored sections."""
    stored = {name: record[name] for name in CONTENT_SECTIONS if name in record}
    contact = stored.get("contact")
    if isinstance(contact, Mapping):
        stored["contact"] = {k: v for k, v in contact.items() if k not in REFERRER_FIELDS}
        stored["contact_referrer"] = {k: v for k, v in contact.items() if k in REFERRER_FIELDS}
    elif "contact" in stored:
        stored["contact_referrer"] = None
    return stored


def join(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Put stored sections back together into record content, in template order."""
    record: dict[str, Any] = {}
    for name in CONTENT_SECTIONS:
        if name not in stored:
            continue
        value = stored[name]
        if name == "contact" and isinstance(value, Mapping):
            value = {**value, **(stored.get("contact_referrer") or {})}
        record[name] = value
    return record
