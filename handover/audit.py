"""The audit log: a keyed hash chain written in the same transaction as the action it records.

``mac = HMAC(audit_key, prev_mac || canonical_json(entry))``. A single head row holds the last
sequence number and MAC; every writer locks it, so the chain is serialised and gap-free in commit
order. Entries hold ids and names of sections, never values. Signed checkpoints make truncation of
the tail detectable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from handover import crypto
from handover.db import Base, UTCDateTime, bulk_insert, insert_rows
from handover.prepared import Prepared

GENESIS_MAC = bytes(32)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    action: Mapped[str] = mapped_column(sa.String(60))
    object_type: Mapped[str | None] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    prev_mac: Mapped[str] = mapped_column(sa.String(64))
    mac: Mapped[str] = mapped_column(sa.String(64))


# Built once: ``record_many`` writes a batch's entries with it.
_INSERT_EVENT = bulk_insert(cast(sa.Table, AuditEvent.__table__))


class AuditHead(Base):
    """The chain's last sequence number and MAC: the row every writer locks."""

    __tablename__ = "audit_head"

    chain: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))
    mac: Mapped[str] = mapped_column(sa.String(64))


class AuditCheckpoint(Base):
    """A signed (seq, mac): the chain must still reach it, unchanged."""

    __tablename__ = "audit_checkpoint"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    mac: Mapped[str] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


def canonical_entry(event: AuditEvent) -> bytes:
    """The bytes the MAC covers: every field but the MACs, as sorted compact JSON."""
    entry = {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": json.loads(event.details),
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def _compute_mac(keyring: crypto.Keyring, prev_mac_hex: str, event: AuditEvent) -> str:
    return crypto.audit_mac(keyring, bytes.fromhex(prev_mac_hex), canonical_entry(event)).hex()


_HELD_HEAD = "handover.audit.held_head"


def _innermost(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


@dataclass
class _Head:
    """The chain's head as this transaction holds it locked."""

    seq: int
    mac: str


_HEAD_TABLE = cast(sa.Table, AuditHead.__table__)
_READ_HEAD = Prepared(
    sa.select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.mac)
    .where(_HEAD_TABLE.c.chain == "main")
    .with_for_update()
)
_INSERT_HEAD = Prepared(sa.insert(_HEAD_TABLE))
_UPDATE_HEAD = Prepared(
    sa.update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.chain == "main")
    .values(seq=sa.bindparam("new_seq"), mac=sa.bindparam("new_mac"))
)


def _lock_head(session: Session) -> _Head:
    """Lock the chain's head row; again only when the (sub)transaction that locked it has ended.

    Many entries in one transaction (a tick's batch) then cost one locking read, not one each.
    A savepoint's rollback releases a lock taken inside it, so the lock is reused only while
    the very (sub)transaction that took it is still going on.
    """
    held = session.info.get(_HELD_HEAD)
    current = _innermost(session)
    if held is not None and current is not None and held[0] is current and current.is_active:
        head: _Head = held[1]
        return head
    connection = session.connection()
    found = _READ_HEAD.first(connection)
    if found is None:
        head = _Head(seq=0, mac=GENESIS_MAC.hex())
        _INSERT_HEAD.run(connection, {"chain": "main", "seq": head.seq, "mac": head.mac})
    else:
        head = _Head(seq=found.seq, mac=found.mac)
    session.info[_HELD_HEAD] = (_innermost(session), head)
    return head


def record(
    session: Session,
    *,
    now: datetime,
    action: str,
    actor_id: str | None,
    object_type: str | None = None,
    object_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append an entry to the chain inside the caller's transaction (fails closed with it)."""
    record_many(
        session,
        now=now,
        entries=[
            Entry(action, actor_id, object_type=object_type, object_id=object_id, details=details)
        ],
    )


@dataclass(frozen=True)
class Entry:
    """One entry for ``record_many``: what ``record`` takes, but for ``now``."""

    action: str
    actor_id: str | None
    object_type: str | None = None
    object_id: str | None = None
    details: Mapping[str, Any] | None = None


def record_many(session: Session, *, now: datetime, entries: Sequence[Entry]) -> int:
    """Append ``entries`` in order, exactly as ``record`` would one by one, in one INSERT.

    For a tick's batch: an ORM object and a flush per entry cost more than the entry. The same
    head row is locked (once per (sub)transaction) and the same canonical entry is chained, so
    ``verify`` cannot tell the two apart. The rows are written at once; returns how many.
    """
    if not entries:
        return 0
    keyring = crypto.current_keyring()
    head = _lock_head(session)
    seq, mac, at = head.seq, head.mac, now.isoformat()
    rows = []
    for entry in entries:
        seq += 1
        details = json.dumps(dict(entry.details or {}), sort_keys=True, separators=(",", ":"))
        canonical = {
            "seq": seq,
            "at": at,
            "actor_id": entry.actor_id,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "details": json.loads(details),  # as ``canonical_entry`` reads it back
        }
        message = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        new_mac = crypto.audit_mac(keyring, bytes.fromhex(mac), message).hex()
        rows.append(
            {
                "seq": seq,
                "at": now,
                "actor_id": entry.actor_id,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "details": details,
                "prev_mac": mac,
                "mac": new_mac,
            }
        )
        mac = new_mac
    connection = session.connection()
    insert_rows(connection, _INSERT_EVENT, rows)
    _UPDATE_HEAD.run(connection, {"new_seq": seq, "new_mac": mac})
    head.seq, head.mac = seq, mac
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain: ok, how many entries, and the first problem found."""

    ok: bool
    checked: int
    problem: str | None = None
    bad_seq: int | None = None


def verify(session: Session, *, keyring: crypto.Keyring) -> VerifyResult:
    """Walk the chain from the start and name the first entry that does not verify."""
    expected_seq, prev_mac, macs = 1, GENESIS_MAC.hex(), {}
    query = sa.select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    with closing(session.scalars(query)) as events:
        for event in events:
            if event.seq != expected_seq:
                return VerifyResult(
                    False, expected_seq - 1, "missing or reordered entry", expected_seq
                )
            if event.prev_mac != prev_mac or _compute_mac(keyring, prev_mac, event) != event.mac:
                return VerifyResult(False, expected_seq - 1, "entry altered", event.seq)
            macs[event.seq] = event.mac
            prev_mac, expected_seq = event.mac, expected_seq + 1
    last_seq = expected_seq - 1
    head = session.get(AuditHead, "main")
    if head is not None and (head.seq != last_seq or head.mac != prev_mac):
        return VerifyResult(False, last_seq, "chain ends before its head", last_seq + 1)
    return _verify_checkpoints(session, keyring, macs, last_seq)


def _verify_checkpoints(
    session: Session, keyring: crypto.Keyring, macs: dict[int, str], last_seq: int
) -> VerifyResult:
    for checkpoint in session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq)):
        message = checkpoint_message(checkpoint.seq, checkpoint.mac)
        if not crypto.verify_signature(keyring, message, bytes.fromhex(checkpoint.signature)):
            return VerifyResult(False, last_seq, "checkpoint signature invalid", checkpoint.seq)
        if macs.get(checkpoint.seq) != checkpoint.mac:
            return VerifyResult(
                False, last_seq, "chain truncated before checkpoint", checkpoint.seq
            )
    return VerifyResult(True, last_seq)


def checkpoint_message(seq: int, mac: str) -> bytes:
    """The bytes a checkpoint signs."""
    return f"handover-audit-checkpoint:{seq}:{mac}".encode()


def checkpoint(session: Session, *, now: datetime, keyring: crypto.Keyring) -> AuditCheckpoint:
    """Sign the current head of the chain so that later truncation is detectable."""
    head = _lock_head(session)
    signature = crypto.sign(keyring, checkpoint_message(head.seq, head.mac)).hex()
    existing = session.get(AuditCheckpoint, head.seq)
    if existing is not None:
        return existing
    point = AuditCheckpoint(seq=head.seq, mac=head.mac, signature=signature, at=now)
    session.add(point)
    session.flush()
    return point
