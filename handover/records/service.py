"""Handover use-cases: create and edit drafts, submit to the standard, addenda, and queries.

Services take the session first and ``now`` as an argument; they flush but never commit. Every
change writes its event and its audit row in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from handover import audit
from handover.auth import policy
from handover.db import bulk_insert, insert_later, new_id, reading
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.directory.models import LocalAuthority, Team, TeamCoverage, User
from handover.errors import InvalidTransition, NotFound, ValidationFailed
from handover.prepared import Prepared
from handover.records import linking, sections, standard, storage
from handover.records.models import (
    Handover,
    HandoverEvent,
    HandoverSection,
    HandoverVersion,
)
from handover.timeutil import to_london

VERSION_TABLE = "handover_version"
EVENT_TABLE = "handover_event"


def _today(now: datetime) -> date:
    return to_london(now).date()


_NEXT_REFERENCE = Prepared(
    sa.text(
        "INSERT INTO reference_counter (year, last) VALUES (:year, 1) "
        "ON CONFLICT (year) DO UPDATE SET last = reference_counter.last + 1 RETURNING last"
    )
)


def next_reference(session: Session, *, now: datetime) -> str:
    """Issue the next reference of the year, e.g. HO-2026-000123 (atomic on both databases)."""
    year = _today(now).year
    connection = session.connection()  # a plain statement: nothing need be flushed first
    (last,) = _NEXT_REFERENCE.scalars(connection, {"year": year})
    return f"HO-{year}-{last:06d}"


# Written one at a time by ``record_event``, or a tick's batch at once (on PostgreSQL by COPY).
INSERT_EVENT = bulk_insert(cast(sa.Table, HandoverEvent.__table__))
_HANDOVER_TABLE = cast(sa.Table, Handover.__table__)
_HANDOVER_COLUMNS = tuple(_HANDOVER_TABLE.columns)
_INSERT_HANDOVER = Prepared(sa.insert(_HANDOVER_TABLE))
_INSERT_VERSION = Prepared(sa.insert(cast(sa.Table, HandoverVersion.__table__)))
_INSERT_SECTIONS = Prepared(sa.insert(cast(sa.Table, HandoverSection.__table__)))


class Eventful(Protocol):
    """What an event records of its handover: a ``Handover``, or the columns a tick holds."""

    @property
    def id(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def current_version(self) -> int: ...
    @property
    def wrapped_dek(self) -> bytes | None: ...


def event_records(
    subject: Eventful,
    *,
    now: datetime,
    actor_id: str | None,
    kind: str,
    to_status: str | None = None,
    detail: str | None = None,
) -> tuple[dict[str, Any], audit.Entry]:
    """An event's row (its detail sealed under the record's key) and the audit entry of it."""
    event_id, to_status = new_id(), to_status or subject.status
    sealed = None
    if detail:
        dek = storage.unwrap_key(subject.id, subject.wrapped_dek)
        sealed = storage.seal_text(
            dek, table=EVENT_TABLE, record_id=subject.id, version=0, place=event_id, text=detail
        )
    row = {
        "id": event_id,
        "handover_id": subject.id,
        "at": now,
        "actor_id": actor_id,
        "kind": kind,
        "from_status": subject.status,
        "to_status": to_status,
        "version": subject.current_version,
        "detail": sealed,
    }
    entry = audit.Entry(
        action=f"handover.{kind}",
        actor_id=actor_id,
        object_type="handover",
        object_id=subject.id,
        details={"from": subject.status, "to": to_status, "reference": subject.reference},
    )
    return row, entry


def record_event(
    session: Session,
    handover: Handover,
    *,
    now: datetime,
    actor: User | None,
    kind: str,
    to_status: str | None = None,
    detail: str | None = None,
) -> None:
    """Add an event to the record's history and the same fact to the audit log.

    The event is a plain insert (in a tick's batch, one with the batch's others): an ORM
    object per event cost more than the event records.
    """
    row, entry = event_records(
        handover,
        now=now,
        actor_id=actor.id if actor else None,
        kind=kind,
        to_status=to_status,
        detail=detail,
    )
    insert_later(session, INSERT_EVENT, row)
    audit.record_many(session, now=now, entries=[entry])


# One statement for the directory check: the authority (with the author's team if it covers it),
# and the kind of each team named (a fixed list of two: an expanding IN is rendered anew each time).
_DIRECTORY = Prepared(
    sa.union_all(
        sa.select(
            sa.literal("authority").label("what"),
            LocalAuthority.code,
            TeamCoverage.team_code.label("detail"),  # the author's team, if it covers the LA
        )
        .outerjoin(
            TeamCoverage,
            sa.and_(
                TeamCoverage.local_authority_code == LocalAuthority.code,
                TeamCoverage.team_code == sa.bindparam("team"),
            ),
        )
        .where(LocalAuthority.code == sa.bindparam("la")),
        sa.select(sa.literal("team"), Team.code, Team.kind).where(
            Team.code.in_([sa.bindparam("allocated_team"), sa.bindparam("police_team")])
        ),
    )
)


def _check_directory(connection: sa.Connection, user: User, payload: Mapping[str, Any]) -> None:
    """Codes in the record must name the directory's LAs and teams, as the author may use them."""
    la_code = payload.get("local_authority")
    team_code = payload.get("allocated_team")
    police = payload.get("police")
    police_team = police.get("team_code") if isinstance(police, Mapping) else None
    if la_code is None and not team_code and not police_team:
        return
    found = _DIRECTORY.all(
        connection,
        {
            "la": la_code,
            "team": user.team_code,
            "allocated_team": team_code or None,
            "police_team": police_team or None,
        },
    )
    authority = next((row for row in found if row.what == "authority"), None)
    kinds = {row.code: row.detail for row in found if row.what == "team"}
    errors: dict[str, list[str]] = {}
    if la_code is not None:
        if authority is None:
            errors["local_authority"] = [f"No local authority {la_code!r}."]
        elif authority.detail is None:
            errors["local_authority"] = [f"Your team does not cover {la_code!r}."]
    if team_code and kinds.get(team_code) != "social_work":
        errors["allocated_team"] = [f"No daytime social work team {team_code!r}."]
    if police_team and kinds.get(police_team) != "police":
        errors["police.team_code"] = [f"No police team {police_team!r}."]
    if errors:
        raise ValidationFailed("The record names unknown codes.", fields=errors)


def _apply_routing(handover: Handover, payload: Mapping[str, Any]) -> None:
    if "local_authority" in payload:
        handover.local_authority_code = payload["local_authority"]
    if "allocated_team" in payload:
        handover.allocated_team_code = payload["allocated_team"]
    if "urgency" in payload:
        handover.urgency = payload["urgency"]
    police = payload.get("police")
    if "police" in payload:
        handover.police_team_code = police.get("team_code") if isinstance(police, Mapping) else None


def _write_sections(
    session: Session, handover: Handover, dek: bytes, version: int, stored: Mapping[str, Any]
) -> None:
    # One query for the rows already there, not a get (and an autoflush) per section.
    existing = {
        row.section: row
        for row in session.scalars(
            sa.select(HandoverSection).where(
                HandoverSection.handover_id == handover.id,
                HandoverSection.version == version,
                HandoverSection.section.in_(list(stored)),
            )
        )
    }
    for name, value in stored.items():
        row = existing.get(name)
        if value is None:
            if row is not None:
                session.delete(row)
            continue
        ciphertext = storage.seal_section(dek, handover.id, version, name, value)
        if row is None:
            session.add(
                HandoverSection(
                    handover_id=handover.id, version=version, section=name, ciphertext=ciphertext
                )
            )
        else:
            row.ciphertext = ciphertext


def _validate_draft(payload: Any) -> None:
    errors = standard.validate_draft(payload)
    if errors:
        raise ValidationFailed("The record is not well formed.", fields=errors)


def create(session: Session, *, user: User, payload: Mapping[str, Any], now: datetime) -> Handover:
    """Create a draft from any well-formed subset of the record."""
    _validate_draft(payload)
    draft = _prepare(user, payload, now)
    handover = draft.handover
    with reading(session) as connection:
        _check_directory(connection, user, payload)
        digests = linking.read_groups(connection, draft.digests)
    make_transient_to_detached(handover)  # loaded, not new: the ORM writes nothing of it
    session.add(handover)
    # From here to the commit SQLite's one write lock is held, and every other writer waits for
    # all that is done under it: only statements, with rows made above.
    reference = next_reference(session, now=now)
    set_committed_value(handover, "reference", reference)  # as stored, not a change to write
    connection = session.connection()
    _INSERT_HANDOVER.run(connection, {**draft.row, "reference": reference})
    _INSERT_VERSION.run(connection, draft.version)
    _INSERT_SECTIONS.run(connection, draft.sections)
    record_event(session, handover, now=now, actor=user, kind="created")
    linking.write_index(session, handover, digests, fresh=True)
    return handover


@dataclass(frozen=True)
class _Draft:
    """A new draft's rows, made before its transaction: none of them needs the database."""

    handover: Handover
    row: dict[str, Any]  # the handover's columns, but for its reference
    version: dict[str, Any]
    sections: list[dict[str, Any]]  # one executemany: an ORM object per section cost more
    digests: linking.Digests


def _prepare(user: User, payload: Mapping[str, Any], now: datetime) -> _Draft:
    handover = Handover(
        id=new_id(),
        status="draft",
        author_team_code=user.team_code,
        created_by_id=user.id,
        created_at=now,
        updated_at=now,
        current_version=1,
        completeness=standard.completeness(payload, today=_today(now)),
    )
    _apply_routing(handover, payload)
    dek = storage.give_key(handover)
    values = vars(handover)  # columns left unset get their defaults, and load if read
    return _Draft(
        handover=handover,
        row={c.key: values[c.key] for c in _HANDOVER_COLUMNS if c.key in values},
        version={
            "handover_id": handover.id,
            "version": 1,
            "kind": "original",
            "created_at": now,
            "created_by_id": user.id,
        },
        sections=[
            {
                "handover_id": handover.id,
                "version": 1,
                "section": name,
                "ciphertext": storage.seal_section(dek, handover.id, 1, name, value),
            }
            for name, value in sections.split(payload).items()
            if value is not None
        ],
        digests=linking.digests_of(handover, payload),
    )


def update(
    session: Session, *, user: User, handover: Handover, payload: Mapping[str, Any], now: datetime
) -> Handover:
    """Merge sections into a draft: each key given replaces that section; null clears it."""
    if handover.status != "draft":
        raise InvalidTransition("Only a draft can be edited; add an addendum instead.")
    _validate_draft(payload)
    _check_directory(session.connection(), user, payload)
    _apply_routing(handover, payload)
    dek = storage.open_key(handover)
    _write_sections(session, handover, dek, 1, sections.split(payload))
    session.flush()
    current = read_record(session, handover, "edt")
    handover.completeness = standard.completeness(current, today=_today(now))
    handover.updated_at = now
    record_event(session, handover, now=now, actor=user, kind="updated")
    linking.index_record(session, handover, current)
    return handover


def read_record(session: Session, handover: Handover, audience: str) -> dict[str, Any]:
    """The current record as the audience may read it (only its sections are decrypted)."""
    content = storage.read_sections(session, handover, sections.AUDIENCE_SECTIONS[audience])
    further = sections.further_sections(audience, content)
    if further:  # e.g. the referrer, for police, only once contact shows police referred
        content.update(storage.read_sections(session, handover, further))
    record: dict[str, Any] = {
        "template_version": handover.template_version,
        "local_authority": handover.local_authority_code,
        "allocated_team": handover.allocated_team_code,
        "urgency": handover.urgency,
    }
    record.update(sections.join(content))
    return record


def _holding_team_code(session: Session, handover: Handover) -> str:
    """The allocated team, or the LA's intake team when none was named."""
    if handover.allocated_team_code:
        return handover.allocated_team_code
    authority = directory.get_authority(session, handover.local_authority_code or "")
    if authority is None or not authority.intake_team_code:
        raise ValidationFailed(
            "No team to send this to.",
            fields={"allocated_team": ["Name a team: this LA has no intake team."]},
        )
    return authority.intake_team_code


def submit(session: Session, *, user: User, handover: Handover, now: datetime) -> Handover:
    """Enforce the standard, lock version 1 and schedule the transfer for the team's next start."""
    if handover.status != "draft":
        raise InvalidTransition(f"A {handover.status} handover cannot be submitted.")
    record = read_record(session, handover, "edt")
    errors = standard.validate_submit(record, today=_today(now))
    if errors:
        raise ValidationFailed("The handover does not meet the standard yet.", fields=errors)
    team = directory.get_team(session, _holding_team_code(session, handover))
    if team is None or team.kind != "social_work":
        raise ValidationFailed(
            "No team to send this to.", fields={"allocated_team": ["Unknown team."]}
        )
    if team.local_authority_code != handover.local_authority_code:
        raise ValidationFailed(
            "The team is in another local authority.",
            fields={
                "allocated_team": [f"{team.code} is not a team of {handover.local_authority_code}."]
            },
        )
    handover.team_code = team.code
    handover.due_at = due_at = directory.calendar_for(team).due_at(now)
    session.add(  # the transfer, in the same transaction: the tick delivers it at due_at
        ScheduledJob.transfer(
            handover_id=handover.id, delivery_round=handover.delivery_round, due_at=due_at, now=now
        )
    )
    handover.submitted_at = handover.updated_at = now
    handover.completeness = 100
    version = session.get(HandoverVersion, (handover.id, 1))
    assert version is not None
    version.sections = ",".join(sorted(sections.split(record)))
    record_event(session, handover, now=now, actor=user, kind="submitted", to_status="scheduled")
    handover.status = "scheduled"
    session.flush()
    return handover


ADDENDUM_CLOSED = frozenset({"draft", "withdrawn", "closed"})


def add_addendum(
    session: Session,
    *,
    user: User,
    handover: Handover,
    note: str,
    changes: Mapping[str, Any],
    now: datetime,
) -> HandoverVersion:
    """Add a version with the changed sections and a note; the standard must still be met."""
    if handover.status in ADDENDUM_CLOSED:
        raise InvalidTransition(f"A {handover.status} handover takes no addenda.")
    routing = sorted(set(changes) & set(sections.ROUTING_FIELDS))
    if routing:
        raise ValidationFailed(
            "An addendum changes content only.",
            fields={f"changes.{name}": ["Cannot be changed by an addendum."] for name in routing},
        )
    _validate_draft(changes)
    merged = {**read_record(session, handover, "edt"), **changes}
    errors = standard.validate_submit(merged, today=_today(now))
    if errors:
        raise ValidationFailed(
            "The record would no longer meet the standard.",
            fields={f"changes.{path}": msgs for path, msgs in errors.items()},
        )
    _check_directory(session.connection(), user, changes)
    _apply_routing(handover, changes)
    dek = storage.open_key(handover)
    handover.current_version += 1
    stored = sections.split(changes)
    _write_sections(session, handover, dek, handover.current_version, stored)
    version = HandoverVersion(
        handover_id=handover.id,
        version=handover.current_version,
        kind="addendum",
        created_at=now,
        created_by_id=user.id,
        sections=",".join(sorted(stored)),
        note=storage.seal_text(
            dek,
            table=VERSION_TABLE,
            record_id=handover.id,
            version=handover.current_version,
            place="note",
            text=note,
        ),
    )
    session.add(version)
    handover.updated_at = now
    record_event(session, handover, now=now, actor=user, kind="addendum")
    linking.index_record(session, handover, read_record(session, handover, "edt"))
    session.flush()
    return version


def get_visible(session: Session, *, user: User, handover_id: str) -> Handover:
    """The handover if ``user`` may know it exists; otherwise NotFound, exactly as if it did not."""
    handover = session.get(Handover, handover_id) if _is_uuid(handover_id) else None
    if handover is None or not policy.can_see(user, handover):
        raise NotFound("No such handover.")
    return handover


def _is_uuid(value: str) -> bool:
    """Whether ``value`` is an id as ``new_id`` writes them (anything else is no handover)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@dataclass(frozen=True)
class ListFilters:
    """Filters of the handover list; each is optional."""

    status: str | None = None
    team: str | None = None
    local_authority: str | None = None
    overdue: bool | None = None
    limit: int = 100
    offset: int = 0


def list_visible(
    session: Session, *, user: User, filters: ListFilters, now: datetime
) -> list[Handover]:
    """Handovers ``user`` may know exist, newest first, narrowed by the filters."""
    query = sa.select(Handover).where(policy.visible_clause(user))
    if filters.status:
        query = query.where(Handover.status == filters.status)
    if filters.team:
        query = query.where(Handover.team_code == filters.team)
    if filters.local_authority:
        query = query.where(Handover.local_authority_code == filters.local_authority)
    if filters.overdue is not None:
        overdue = sa.and_(Handover.status == "delivered", Handover.ack_due_at < now)
        query = query.where(overdue if filters.overdue else sa.not_(overdue))
    query = query.order_by(Handover.created_at.desc(), Handover.id)
    return list(session.scalars(query.limit(filters.limit).offset(filters.offset)))


def versions(session: Session, handover: Handover, *, with_notes: bool) -> list[dict[str, Any]]:
    """Every version of the record: which sections it holds, who made it, and its note."""
    rows = session.scalars(
        sa.select(HandoverVersion)
        .where(HandoverVersion.handover_id == handover.id)
        .order_by(HandoverVersion.version)
    ).all()
    dek = storage.open_key(handover) if with_notes and any(r.note for r in rows) else None
    return [
        {
            "version": row.version,
            "kind": row.kind,
            "created_at": row.created_at,
            "created_by": row.created_by_id,
            "sections": [s for s in row.sections.split(",") if s],
            "note": storage.open_text(
                dek,
                row.note,
                table=VERSION_TABLE,
                record_id=handover.id,
                version=row.version,
                place="note",
            )
            if dek and row.note
            else None,
        }
        for row in rows
    ]


def history(session: Session, handover: Handover, *, with_details: bool) -> list[dict[str, Any]]:
    """The record's events, oldest first, with actors' names and (for content readers) reasons."""
    rows = session.execute(
        sa.select(HandoverEvent, User)
        .outerjoin(User, User.id == HandoverEvent.actor_id)
        .where(HandoverEvent.handover_id == handover.id)
        .order_by(HandoverEvent.seq)
    ).all()
    dek = storage.open_key(handover) if with_details and any(e.detail for e, _ in rows) else None
    return [
        {
            "id": event.id,
            "at": event.at,
            "kind": event.kind,
            "from": event.from_status,
            "to": event.to_status,
            "version": event.version,
            "actor": {"id": actor.id, "name": actor.name, "team": actor.team_code}
            if actor
            else None,
            "detail": storage.open_text(
                dek,
                event.detail,
                table=EVENT_TABLE,
                record_id=handover.id,
                version=0,
                place=event.id,
            )
            if dek and event.detail
            else None,
        }
        for event, actor in rows
    ]
