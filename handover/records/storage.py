"""Encrypting and decrypting a record's sections, notes and event details under its data key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from handover import crypto
from handover.records.models import Handover, HandoverSection

SECTION_TABLE = "handover_section"


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, byte for byte what ``json.dumps(separators=(",", ":"),
    ensure_ascii=False)`` writes for a record's strings, booleans and nulls, twenty times faster."""
    return orjson.dumps(value)


def open_key(handover: Handover) -> bytes:
    """Unwrap the record's data key; a shredded record has none."""
    return unwrap_key(handover.id, handover.wrapped_dek)


def unwrap_key(record_id: str, wrapped_dek: bytes | None) -> bytes:
    """Unwrap a record's data key read as plain columns; a shredded record has none."""
    if wrapped_dek is None:
        raise crypto.CryptoError(f"record {record_id} has no data key (shredded)")
    return crypto.unwrap_dek(crypto.current_keyring(), wrapped_dek, record_id=record_id)


def give_key(handover: Handover) -> bytes:
    """Create and wrap a fresh data key for a new record; returns the plain key for this request."""
    keyring = crypto.current_keyring()
    dek = crypto.new_dek()
    handover.wrapped_dek = crypto.wrap_dek(keyring, dek, record_id=handover.id)
    handover.kek_id = keyring.active_kek_id
    return dek


def seal_section(dek: bytes, handover_id: str, version: int, section: str, value: Any) -> bytes:
    """Encrypt one section's JSON value for exactly this record, version and section."""
    return crypto.encrypt(
        dek,
        _dumps(value),
        table=SECTION_TABLE,
        record_id=handover_id,
        version=version,
        section=section,
    )


def open_section(dek: bytes, row: HandoverSection) -> Any:
    """Decrypt one stored section row."""
    return open_ciphertext(dek, row.handover_id, row.version, row.section, row.ciphertext)


def open_ciphertext(
    dek: bytes, handover_id: str, version: int, section: str, ciphertext: bytes
) -> Any:
    """Decrypt one section's ciphertext, stored for exactly this record, version and section."""
    plaintext = crypto.decrypt(
        dek,
        ciphertext,
        table=SECTION_TABLE,
        record_id=handover_id,
        version=version,
        section=section,
    )
    return orjson.loads(plaintext)


def seal_text(
    dek: bytes, *, table: str, record_id: str, version: int, place: str, text: str
) -> bytes:
    """Encrypt a note or detail bound to its table, record, version and place."""
    return crypto.encrypt(
        dek, text.encode(), table=table, record_id=record_id, version=version, section=place
    )


def open_text(
    dek: bytes, blob: bytes, *, table: str, record_id: str, version: int, place: str
) -> str:
    """Decrypt a note or detail sealed by seal_text."""
    return crypto.decrypt(
        dek, blob, table=table, record_id=record_id, version=version, section=place
    ).decode()


# Built once: a statement built per call costs more to construct and key than to run.
_LATEST_ROWS = (
    sa.select(HandoverSection)
    .where(
        HandoverSection.handover_id == sa.bindparam("handover_id"),
        # only the ciphertexts wanted
        HandoverSection.section.in_(sa.bindparam("sections", expanding=True)),
    )
    .order_by(HandoverSection.version.desc())
)


def latest_rows(
    session: Session, handover: Handover, sections: Iterable[str]
) -> list[HandoverSection]:
    """For each wanted section, the row of the newest version that holds it."""
    wanted = set(sections)
    if not wanted:
        return []
    rows = session.scalars(_LATEST_ROWS, {"handover_id": handover.id, "sections": sorted(wanted)})
    latest: dict[str, HandoverSection] = {}
    for row in rows:
        if row.section not in latest:
            latest[row.section] = row
    return list(latest.values())


def read_sections(session: Session, handover: Handover, sections: Iterable[str]) -> dict[str, Any]:
    """Decrypt the newest value of each wanted section (and nothing else)."""
    rows = latest_rows(session, handover, sections)
    if not rows:
        return {}
    dek = open_key(handover)
    return {row.section: open_section(dek, row) for row in rows}


def rewrap_batch(session: Session, *, keyring: crypto.Keyring, batch_size: int) -> int:
    """Re-wrap up to ``batch_size`` data keys not under the active KEK; returns how many changed.

    Each update is a compare-and-swap on the old wrapped value, so a concurrent rewrap or shred
    is never overwritten; records whose swap lost are picked up by the next batch.
    """
    active = keyring.active_kek_id
    # "Below or above the active id" rather than "!=", and in no particular order: each batch
    # then reads only its own rows through ix_handover_kek_id, instead of walking past every
    # record re-wrapped so far (which made a whole run quadratic in the number of records).
    rows = session.execute(
        sa.select(Handover.id, Handover.wrapped_dek)
        .where(
            Handover.wrapped_dek.is_not(None),
            sa.or_(Handover.kek_id < active, Handover.kek_id > active),
        )
        .limit(batch_size)
    ).all()
    if not rows:
        return 0
    swaps = [
        {
            "record_id": record_id,
            "old": wrapped,
            "new": crypto.rewrap_dek(keyring, wrapped, record_id=record_id),
            "kek": active,
        }
        for record_id, wrapped in rows
        if wrapped is not None
    ]
    table = cast(sa.Table, Handover.__table__)
    # One statement for the batch (executemany; the drivers add up each row's count): building
    # an ORM update per row cost ten times the crypto. Still one compare-and-swap per row.
    result: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
        sa.update(table)
        .where(table.c.id == sa.bindparam("record_id"), table.c.wrapped_dek == sa.bindparam("old"))
        .values(wrapped_dek=sa.bindparam("new"), kek_id=sa.bindparam("kek")),
        swaps,
    )
    return result.rowcount


def key_status(session: Session) -> dict[str, int]:
    """How many records' data keys are wrapped under each KEK id (``shredded`` for none)."""
    rows = session.execute(sa.select(Handover.kek_id, sa.func.count()).group_by(Handover.kek_id))
    return {kek_id or "shredded": count for kek_id, count in rows}
