"""The audit chain: written with every action, and any edit, deletion or reordering detected."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from handover import audit, crypto
from handover.audit import AuditEvent
from handover.db import transaction
from handover.timeutil import now
from tests.conftest import Api, reference_record


@contextmanager
def tampering(app: Flask) -> Iterator[Session]:
    """A transaction allowed to alter the audit log, as an attacker with database access could."""
    with app.app_context(), transaction() as session:
        if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
            session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        yield session


def verify(app: Flask) -> audit.VerifyResult:
    with app.app_context(), transaction() as session:
        return audit.verify(session, keyring=crypto.current_keyring())


def checkpoint(app: Flask) -> int:
    with app.app_context(), transaction() as session:
        return audit.checkpoint(session, now=now(), keyring=crypto.current_keyring()).seq


@pytest.fixture
def activity(api: Api) -> str:
    """A handover created, read, submitted and read again: a few audit entries."""
    hid: str = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()[
        "id"
    ]
    api.get(f"/handovers/{hid}", as_="edt_worker")
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    api.get(f"/handovers/{hid}", as_="social_worker")
    return hid


def actions(app: Flask) -> list[str]:
    with app.app_context(), transaction() as session:
        return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_every_action_is_audited_in_order(app: Flask, activity: str) -> None:
    assert actions(app) == [
        "handover.created",
        "handover.view",
        "handover.submitted",
        "handover.view",
    ]
    result = verify(app)
    assert result.ok and result.checked == 4


def test_refused_actions_are_audited(app: Flask, api: Api, activity: str) -> None:
    response = api.patch(f"/handovers/{activity}", as_="social_worker", json_body={"summary": "x"})
    assert response.status_code == 403
    assert actions(app)[-1] == "access.denied"
    assert verify(app).ok


def test_entries_hold_ids_never_values(app: Flask, activity: str) -> None:
    with app.app_context(), transaction() as session:
        details = " ".join(session.scalars(sa.select(AuditEvent.details)))
    assert "Marsh" not in details and "Jaylen" not in details
    assert "team" in details


@pytest.mark.parametrize("column", ["details", "action", "actor_id", "at"])
def test_editing_any_entry_is_detected(app: Flask, activity: str, column: str) -> None:
    value = {"details": '{"count":0}', "action": "handover.list", "actor_id": None, "at": now()}[
        column
    ]
    with tampering(app) as session:
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 2).values({column: value}))
    result = verify(app)
    assert not result.ok and result.bad_seq == 2


def test_deleting_an_entry_is_detected(app: Flask, activity: str) -> None:
    with tampering(app) as session:
        session.execute(sa.delete(AuditEvent).where(AuditEvent.seq == 3))
    result = verify(app)
    assert not result.ok and result.bad_seq == 3


def test_reordering_entries_is_detected(app: Flask, activity: str) -> None:
    with tampering(app) as session:
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 2).values(seq=-2))
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3).values(seq=2))
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == -2).values(seq=3))
    result = verify(app)
    assert not result.ok and result.bad_seq == 2


def test_deleting_the_tail_is_detected_against_a_checkpoint(app: Flask, activity: str) -> None:
    assert checkpoint(app) == 4
    with tampering(app) as session:
        session.execute(sa.delete(AuditEvent).where(AuditEvent.seq >= 3))
        # A careful attacker also winds the head back so the chain looks whole.
        third = session.get(AuditEvent, 2)
        assert third is not None
        session.execute(sa.update(audit.AuditHead).values(seq=2, mac=third.mac))
    result = verify(app)
    assert not result.ok
    assert result.problem == "chain truncated before checkpoint"


def test_a_forged_checkpoint_is_detected(app: Flask, activity: str) -> None:
    checkpoint(app)
    with tampering(app) as session:
        session.execute(sa.update(audit.AuditCheckpoint).values(signature="00" * 64))
    assert verify(app).problem == "checkpoint signature invalid"


def test_postgres_refuses_update_and_delete_of_audit_rows(app: Flask, activity: str) -> None:
    with app.app_context(), transaction() as session:
        if session.bind.dialect.name != "postgresql":  # type: ignore[union-attr]
            pytest.skip("the trigger is PostgreSQL's")
    for statement in (
        sa.update(AuditEvent).values(action="x"),
        sa.delete(AuditEvent),
        sa.text("TRUNCATE audit_event"),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with app.app_context(), transaction() as session:
                session.execute(statement)
    assert verify(app).ok


def test_a_read_fails_closed_when_its_audit_entry_cannot_be_written(
    app: Flask, api: Api, activity: str
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    # Make the audit insert fail: the head row says the next seq is one that already exists.
    with tampering(app) as session:
        session.execute(sa.update(audit.AuditHead).values(seq=1))
    response = api.get(f"/handovers/{activity}", as_="edt_worker")
    assert response.status_code == 500
    assert b"Marsh" not in response.get_data()


def _entries(*actions: str) -> list[audit.Entry]:
    return [
        audit.Entry(action=a, actor_id=None, object_type="handover", object_id=f"id-{a}")
        for a in actions
    ]


def test_entries_written_together_chain_exactly_as_one_by_one(app: Flask, activity: str) -> None:
    with app.app_context(), transaction() as session:
        at = now()
        audit.record(session, now=at, action="one", actor_id=None, details={"n": 1})
        assert audit.record_many(session, now=at, entries=_entries("two", "three")) == 2
        audit.record(session, now=at, action="four", actor_id=None)
        audit.record_many(session, now=at, entries=[])
    assert actions(app)[-4:] == ["one", "two", "three", "four"]
    result = verify(app)  # every entry's MAC checked against the canonical entry as stored
    assert result.ok and result.checked == len(actions(app)), result
    checkpoint(app)
    assert verify(app).ok


def test_entries_rolled_back_with_their_savepoint_leave_no_gap(app: Flask, activity: str) -> None:
    with app.app_context(), transaction() as session:
        at = now()
        try:
            with session.begin_nested():
                audit.record_many(session, now=at, entries=_entries("lost", "also lost"))
                raise RuntimeError("the batch failed")
        except RuntimeError:
            pass
        audit.record_many(session, now=at, entries=_entries("kept"))
    assert "lost" not in actions(app) and actions(app)[-1] == "kept"
    result = verify(app)
    assert result.ok and result.checked == len(actions(app)), result
