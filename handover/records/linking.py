"""Linking handovers through blind indexes: keyed digests of normalised identifiers, never values.

Each record's identifiers are normalised (``normalise_*`` below) and stored only as
``crypto.blind_index`` digests, keyed by the keyring's index key (separate from the KEKs) and by
kind, so a digest means nothing without the key and digests of different kinds never meet:

- ``child_nhs_number``: a child's NHS number (digits only);
- ``child_name_dob``: a child's surname, forename and date of birth;
- ``household_name_dob``: a household member's surname, forename and date of birth;
- ``crime_reference``: the police crime reference (upper-case letters and digits);
- ``la_person_id``: a child's id in the in-hours system, qualified by the record's LA (ids are
  only unique within one LA's system);
- ``family_surname_postcode``: the surname and postcode of any child or household member.

**Truncation: 8 bytes (64 bits).** Shorter digests leak less: unrelated values share buckets, so
a reader of the table cannot tell a match from a collision. But that deniability needs crowded
buckets; at our scale (tens of thousands of records a year) a digest short enough to give it
(2 bytes: 65,536 buckets) would make most candidates false, each costing decryptions per lookup.
At 8 bytes ten million values of one kind give about 3 colliding pairs in a million, so candidates
are almost always true matches, and the table reveals only "these records share an identifier of
this kind", which the linked panel tells its readers anyway. A collision is never trusted: every
candidate is decrypted and compared exactly, so it costs time, never a false link.

**Crime references are also matched exactly at write time**, because police access follows them
and a list query must decide that in SQL: each crime-reference digest row joins a ``LinkMatch``
group whose members were compared with the decrypted value of a current member. A colliding value
gets a group of its own. Writers of the same digest are serialised (an advisory lock on
PostgreSQL; SQLite serialises every writer).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from handover import crypto
from handover.db import new_id
from handover.prepared import Prepared
from handover.records import storage
from handover.records.models import Handover, HandoverSection, LinkDigest, LinkMatch

CHILD_NHS = "child_nhs_number"
CHILD_NAME_DOB = "child_name_dob"
HOUSEHOLD_NAME_DOB = "household_name_dob"
CRIME_REFERENCE = "crime_reference"
PERSON_ID = "la_person_id"
FAMILY = "family_surname_postcode"

# Why two records are linked, strongest first: the order the panel lists reasons in.
REASONS: Mapping[str, str] = {
    CHILD_NHS: "same child: NHS number",
    CHILD_NAME_DOB: "same child: name and date of birth",
    PERSON_ID: "same person in the in-hours system",
    HOUSEHOLD_NAME_DOB: "same household member: name and date of birth",
    CRIME_REFERENCE: "same crime reference",
    FAMILY: "same family: surname and postcode",
}
DIGEST_BYTES = 8
LINK_SECTIONS = ("children", "household", "police")
MAX_LINKS = 200
_LOCK_NAMESPACE = 0x4C494E4B  # "LINK": keeps these advisory locks apart from anyone else's

Values = dict[str, set[str]]


# Normalisers: pure, idempotent; anything that is not a string normalises to "".


def _fixed_point(step: Callable[[str], str], value: Any) -> str:
    """Apply ``step`` until the text stops changing (Unicode folding can take two rounds)."""
    if not isinstance(value, str):
        return ""
    text = value
    for _ in range(5):
        following = step(text)
        if following == text:
            break
        text = following
    return text


def _strip_accents(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


# Latin letters that carry their mark inside the letter, so NFKD cannot strip it ("Yıldız" is
# often written "Yildiz", "Łukasz" "Lukasz", "Søren" "Soren").
_BARE_LETTERS = str.maketrans(
    {"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ŧ": "t", "ŀ": "l"}
    | {"æ": "ae", "œ": "oe", "þ": "th"}
)


def _name_step(text: str) -> str:
    folded = _strip_accents(_strip_accents(text).casefold().translate(_BARE_LETTERS))
    return "".join(ch for ch in folded if ch.isalnum())


def _code_step(text: str) -> str:
    folded = _strip_accents(_strip_accents(text).casefold().translate(_BARE_LETTERS)).upper()
    return "".join(ch for ch in folded if ch.isalnum())


def normalise_name(value: Any) -> str:
    """NFKD, accents stripped, casefolded, without spaces, hyphens, apostrophes or punctuation."""
    if isinstance(value, str) and value.isascii():  # the same result, without Unicode folding
        return "".join(ch for ch in value.lower() if ch.isalnum())
    return _fixed_point(_name_step, value)


def normalise_code(value: Any) -> str:
    """Upper-case letters and digits only: crime references, postcodes and in-hours ids."""
    if isinstance(value, str) and value.isascii():  # the same result, without Unicode folding
        return "".join(ch for ch in value.upper() if ch.isalnum())
    return _fixed_point(_code_step, value)


normalise_crime_reference = normalise_code
normalise_postcode = normalise_code


def normalise_nhs_number(value: Any) -> str:
    """The digits 0-9 only (full-width and other compatibility digits folded to them)."""
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in unicodedata.normalize("NFKD", value) if "0" <= ch <= "9")


def normalise_date(value: Any) -> str:
    """An ISO date as YYYY-MM-DD, or "" if the value is not one."""
    try:
        return date.fromisoformat(value).isoformat() if isinstance(value, str) else ""
    except ValueError:
        return ""


# What a record's identifiers are.


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _person(values: Values, kind: str, person: Mapping[str, Any]) -> str:
    """Add the person's name-and-birth and family values; return their normalised surname."""
    surname = normalise_name(person.get("last_name"))
    forename = normalise_name(person.get("first_name"))
    born = normalise_date(person.get("date_of_birth"))
    if surname and forename and born:
        values[kind].add(f"{surname}|{forename}|{born}")
    address = person.get("address")
    postcode = normalise_postcode(address.get("postcode")) if isinstance(address, Mapping) else ""
    if surname and postcode:
        values[FAMILY].add(f"{surname}|{postcode}")
    return surname


def link_values(record: Mapping[str, Any], *, local_authority: str | None) -> Values:
    """Every normalised identifier of a (possibly partial) record, by kind."""
    values: Values = {kind: set() for kind in REASONS}
    for child in _items(record.get("children")):
        _person(values, CHILD_NAME_DOB, child)
        nhs = normalise_nhs_number(child.get("nhs_number"))
        if nhs:
            values[CHILD_NHS].add(nhs)
        person_id = normalise_code(child.get("la_person_id"))
        if person_id and local_authority:
            values[PERSON_ID].add(f"{local_authority}|{person_id}")
    for member in _items(record.get("household")):
        _person(values, HOUSEHOLD_NAME_DOB, member)
    police = record.get("police")
    if isinstance(police, Mapping) and normalise_crime_reference(police.get("crime_reference")):
        values[CRIME_REFERENCE].add(normalise_crime_reference(police["crime_reference"]))
    return values


def digest(keyring: crypto.Keyring, kind: str, value: str) -> str:
    """The blind index of one normalised value of one kind."""
    return crypto.blind_index(keyring, kind, value, length=DIGEST_BYTES)


def stored_values(session: Session, handover: Handover) -> Values:
    """Decrypt the sections identifiers live in (and only those) and normalise them."""
    content = storage.read_sections(session, handover, LINK_SECTIONS)
    return link_values(content, local_authority=handover.local_authority_code)


def _crime_reference(session: Session, handover: Handover) -> str | None:
    """The record's normalised crime reference; None if it has none or cannot be decrypted."""
    try:
        content = storage.read_sections(session, handover, ["police"])
    except crypto.CryptoError:
        return None
    return next(iter(link_values(content, local_authority=None)[CRIME_REFERENCE]), None)


# Writing the index.


@dataclass(frozen=True)
class Digests:
    """A record's digests, worked out before its transaction: HMACs need no database."""

    rows: list[dict[str, Any]]  # every kind but crime references, ready to insert
    crimes: dict[str, str]  # crime-reference digest -> normalised value
    # The exact-match groups of those digests, read ahead: group id -> the value its members
    # share (None if none is readable). See ``read_groups``.
    groups: Mapping[str, str | None] = field(default_factory=dict)


def digests_of(handover: Handover, record: Mapping[str, Any]) -> Digests:
    """The digests of the record's identifiers (its local authority qualifies in-hours ids)."""
    keyring = crypto.current_keyring()
    values = link_values(record, local_authority=handover.local_authority_code)
    rows = {
        (kind, digest(keyring, kind, value)): None
        for kind, found in values.items()
        if kind != CRIME_REFERENCE
        for value in found
    }
    return Digests(
        rows=[
            # match_id: the same keys as the crime rows', so that one INSERT takes all of them
            {"handover_id": handover.id, "kind": kind, "digest": value, "match_id": None}
            for kind, value in rows
        ],
        crimes={digest(keyring, CRIME_REFERENCE, v): v for v in values[CRIME_REFERENCE]},
    )


def read_groups(connection: sa.Connection, found: Digests) -> Digests:
    """``found`` with the values of its crime references' groups, read before the write.

    Reading a group's value decrypts a member's police section; done ahead, in a read of its
    own, it is not done while the write transaction holds SQLite's one write lock. A group's
    value never changes, so a value read ahead stays true; ``write_index`` reads, under the
    lock, only the groups made since.
    """
    if not found.crimes:
        return found
    groups = {
        group: _group_value(connection, group)
        for crime_digest in sorted(found.crimes)
        for group in _GROUPS.scalars(connection, {"digest": crime_digest})
    }
    return replace(found, groups=groups)


def index_record(
    session: Session, handover: Handover, record: Mapping[str, Any], *, fresh: bool = False
) -> None:
    """Replace the record's digests with those of its current content (update, addendum)."""
    write_index(session, handover, digests_of(handover, record), fresh=fresh)


def write_index(
    session: Session, handover: Handover, found: Digests, *, fresh: bool = False
) -> None:
    """Store the record's digests in place of any it had, matching crime references exactly.

    ``fresh``: the record was created in this transaction and has no digests yet, so there are
    none to look up and delete. Call it after the change's audit row, so that on PostgreSQL the
    audit chain's lock is taken before the crime-reference locks, in the same order by every
    writer.
    """
    old_crimes = (
        []
        if fresh
        else session.scalars(
            sa.select(LinkDigest.digest).where(
                LinkDigest.handover_id == handover.id, LinkDigest.kind == CRIME_REFERENCE
            )
        ).all()
    )
    _lock(session, set(found.crimes) | set(old_crimes))
    if not fresh:
        remove(session, handover)
    rows = found.rows + [
        {
            "handover_id": handover.id,
            "kind": CRIME_REFERENCE,
            "digest": crime_digest,
            "match_id": _match(session, crime_digest, value, found.groups),
        }
        for crime_digest, value in sorted(found.crimes.items())
    ]
    # Straight to the connection: nothing the insert depends on waits to be flushed.
    _INSERT_DIGESTS.run(session.connection(), rows)


def remove(session: Session, handover: Handover) -> None:
    """Forget the record's digests (before re-indexing it, or when it is shredded)."""
    session.execute(
        sa.delete(LinkDigest)
        .where(LinkDigest.handover_id == handover.id)
        .execution_options(synchronize_session=False)
    )


def _lock(session: Session, digests: Iterable[str]) -> None:
    """Serialise writers of the same crime-reference digests (PostgreSQL; SQLite already is)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for value in sorted(digests):
        key = int.from_bytes(bytes.fromhex(value)[:4], "big", signed=True)
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _LOCK_NAMESPACE, "key": key},
        )


# Built once: a statement built per call costs more to construct and key than to run.
_INSERT_DIGESTS = Prepared(sa.insert(cast(sa.Table, LinkDigest.__table__)))
_GROUPS = Prepared(
    sa.select(LinkMatch.id)
    .where(LinkMatch.kind == CRIME_REFERENCE, LinkMatch.digest == sa.bindparam("digest"))
    .order_by(LinkMatch.id)
)
_INSERT_GROUP = Prepared(sa.insert(cast(sa.Table, LinkMatch.__table__)))
_LATEST_POLICE = (
    sa.select(HandoverSection.version)
    .where(HandoverSection.handover_id == Handover.id, HandoverSection.section == "police")
    .order_by(HandoverSection.version.desc())
    .limit(1)
    .correlate(Handover)
    .scalar_subquery()
)
# A few readable members of a group, each with its newest police section, in one query.
_MEMBERS = Prepared(
    sa.select(
        Handover.id, Handover.wrapped_dek, HandoverSection.version, HandoverSection.ciphertext
    )
    .join(LinkDigest, LinkDigest.handover_id == Handover.id)
    .join(
        HandoverSection,
        sa.and_(
            HandoverSection.handover_id == Handover.id,
            HandoverSection.section == "police",
            HandoverSection.version == _LATEST_POLICE,
        ),
    )
    .where(LinkDigest.match_id == sa.bindparam("group"), Handover.wrapped_dek.is_not(None))
    .limit(3)
)


def _match(session: Session, crime_digest: str, value: str, known: Mapping[str, str | None]) -> str:
    """The exact-match group of this crime reference: one whose value is equal, or a new one.

    ``known``: values of groups read ahead (``read_groups``); any other group is read here.
    Plain statements on the transaction's connection: they need nothing flushed first.
    """
    connection = session.connection()
    groups: list[str] = _GROUPS.scalars(connection, {"digest": crime_digest})
    for group in groups:
        group_value = known[group] if group in known else _group_value(connection, group)
        if group_value == value:
            return group
    created = new_id()
    _INSERT_GROUP.run(connection, {"id": created, "kind": CRIME_REFERENCE, "digest": crime_digest})
    return created


def _group_value(connection: sa.Connection, group: str) -> str | None:
    """The decrypted value the group's members share (None if no member is left or readable)."""
    for member in _MEMBERS.all(connection, {"group": group}):
        try:
            dek = storage.unwrap_key(member.id, member.wrapped_dek)
            police = storage.open_ciphertext(
                dek, member.id, member.version, "police", member.ciphertext
            )
        except crypto.CryptoError:
            continue
        found = link_values({"police": police}, local_authority=None)[CRIME_REFERENCE]
        if found:
            return next(iter(found))
    return None


# Police access through a shared crime reference.


def crime_reference_peers(team_code: str) -> sa.Select[str]:
    """Ids of handovers whose crime reference equals, exactly, a submitted one's naming the team."""
    mine, peer = aliased(LinkDigest), aliased(LinkDigest)
    named = aliased(Handover)
    return (
        sa.select(mine.handover_id)
        .join(peer, sa.and_(peer.match_id == mine.match_id, peer.handover_id != mine.handover_id))
        .join(named, named.id == peer.handover_id)
        .where(
            mine.kind == CRIME_REFERENCE,
            named.police_team_code == team_code,
            named.submitted_at.is_not(None),  # a draft withdrawn unsent names no one
            named.wrapped_dek.is_not(None),  # a shredded record's reference is gone
        )
    )


def shares_crime_reference(session: Session, handover: Handover, team_code: str) -> bool:
    """Whether a submitted handover naming the team has exactly this record's crime reference.

    Decrypts this record's and every candidate's crime reference and compares them, so that a
    digest collision never grants access; the same rule as ``crime_reference_peers``.
    """
    mine = _crime_reference(session, handover)
    if mine is None:
        return False
    candidates = session.scalars(
        sa.select(Handover)
        .join(LinkDigest, LinkDigest.handover_id == Handover.id)
        .where(
            LinkDigest.kind == CRIME_REFERENCE,
            LinkDigest.digest == digest(crypto.current_keyring(), CRIME_REFERENCE, mine),
            Handover.id != handover.id,
            Handover.police_team_code == team_code,
            Handover.submitted_at.is_not(None),
        )
    )
    return any(_crime_reference(session, candidate) == mine for candidate in candidates)


# The linked panel.


@dataclass(frozen=True)
class Link:
    """Another handover sharing an identifier with this one, exactly, and why."""

    handover: Handover
    reasons: tuple[str, ...]
    visible: bool


def find_links(
    session: Session,
    handover: Handover,
    *,
    among: sa.ColumnElement[bool],
    visible: sa.ColumnElement[bool],
) -> list[Link]:
    """Handovers linked to this one that ``among`` admits, flagged by ``visible``, newest first.

    Candidates come from the digests; each is decrypted and compared exactly, so a digest
    collision is dropped here and never shown.
    """
    mine, theirs = aliased(LinkDigest), aliased(LinkDigest)
    rows = session.execute(
        sa.select(Handover, theirs.kind, sa.case((visible, True), else_=False))
        .join(theirs, theirs.handover_id == Handover.id)
        .join(mine, sa.and_(mine.kind == theirs.kind, mine.digest == theirs.digest))
        .where(mine.handover_id == handover.id, Handover.id != handover.id, among)
        .order_by(Handover.created_at.desc(), Handover.id)
    ).all()
    candidates: dict[str, tuple[Handover, set[str], bool]] = {}
    for other, kind, shown in rows:
        candidates.setdefault(other.id, (other, set(), bool(shown)))[1].add(kind)
    if not candidates:
        return []
    own = stored_values(session, handover)
    links: list[Link] = []
    for other, kinds, shown in candidates.values():
        reasons = _confirmed(own, _readable_values(session, other), kinds)
        if reasons:
            links.append(Link(handover=other, reasons=reasons, visible=shown))
        if len(links) == MAX_LINKS:
            break
    return links


def _readable_values(session: Session, handover: Handover) -> Values:
    """The record's identifiers, or none if it cannot be decrypted (e.g. shredded)."""
    try:
        return stored_values(session, handover)
    except crypto.CryptoError:
        return {}


def _confirmed(own: Values, other: Values, kinds: set[str]) -> tuple[str, ...]:
    """The reasons, strongest first, whose values are exactly equal (not merely their digests)."""
    return tuple(
        reason
        for kind, reason in REASONS.items()
        if kind in kinds and own.get(kind, set()) & other.get(kind, set())
    )
