"""Helpers of the delivery tests: handovers submitted and ticked at chosen instants.

Time is an argument: records are created through the API, submitted through the service at a
given ``now``, and delivered by a tick run ``--now`` a given instant. Mail goes to a loopback port
that nothing listens on, so notifications stay in the outbox where the tests can read them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover import scheduler
from handover.db import transaction
from handover.delivery.models import HandoverMessage, ScheduledJob
from handover.delivery.scheduled import TickCounts
from handover.directory import service as directory
from handover.notifications.models import OutboxMessage
from handover.records import service as records
from handover.records.models import Handover, HandoverEvent
from tests.conftest import DEMO_USERS, Api, reference_record

# A Monday in November 2026, 10:00 London (GMT): inside every demo team's working hours.
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

READ_BACK = "Four children and an unexplained injury to the baby; police are investigating."


@pytest.fixture(autouse=True)
def _quiet_mail(app: Flask) -> Iterator[None]:
    """Point mail at a closed loopback port: sending fails fast and rows stay pending."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.config.update(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT_SECONDS=2)
    yield


def record_for(team: str = "northvale-east-fst", urgency: str = "immediate") -> dict[str, Any]:
    """The reference record allocated to ``team`` (and its LA) at ``urgency``.

    The baby's dates move back a year, so that the record may be submitted any time in 2026.
    """
    record = reference_record()
    record["allocated_team"], record["urgency"] = team, urgency
    record["local_authority"] = team.split("-")[0]
    baby = record["children"][0]
    baby["date_of_birth"], baby["date_of_death"] = "2025-07-24", "2025-11-28"
    return record


def create(api: Api, record: dict[str, Any] | None = None) -> str:
    """A draft through the API; returns its id."""
    response = api.post("/handovers", as_="edt_worker", json_body=record or reference_record())
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def submit_at(app: Flask, handover_id: str, at: datetime) -> datetime:
    """Submit as the EDT worker at ``at``; returns the due_at it was given."""
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        assert user is not None
        handover = session.get(Handover, handover_id)
        assert handover is not None
        records.submit(session, user=user, handover=handover, now=at)
        assert handover.due_at is not None
        return handover.due_at


def tick(app: Flask, at: datetime) -> TickCounts:
    """One tick as of ``at``."""
    with app.app_context():
        return scheduler.tick(now=at)


def delivered(
    app: Flask,
    api: Api,
    *,
    at: datetime = MONDAY_10,
    team: str = "northvale-east-fst",
    urgency: str = "immediate",
) -> str:
    """A handover submitted and delivered at ``at`` (inside the team's hours)."""
    handover_id = create(api, record_for(team, urgency))
    assert submit_at(app, handover_id, at) == at
    assert tick(app, at).delivered == 1
    return handover_id


def read_back(*queried: str, refs: tuple[str, ...] = ("a1", "a2", "a3", "a4", "a5", "a6")) -> Any:
    """An acknowledgement body answering every action of the reference record."""
    actions = [
        {"ref": ref, "response": "queried", "question": f"Who owns {ref} now?"}
        if ref in queried
        else {"ref": ref, "response": "accepted"}
        for ref in refs
    ]
    return {"synthesis": READ_BACK, "actions": actions}


def handover_row(app: Flask, handover_id: str) -> Handover:
    """The handover as stored now."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        return handover


def event_kinds(app: Flask, handover_id: str) -> list[str]:
    """The kinds of the record's history, in order."""
    with app.app_context(), transaction() as session:
        return list(
            session.scalars(
                sa.select(HandoverEvent.kind)
                .where(HandoverEvent.handover_id == handover_id)
                .order_by(HandoverEvent.seq)
            )
        )


def jobs(app: Flask, handover_id: str) -> dict[str, str]:
    """The handover's scheduled jobs: dedup key → state."""
    with app.app_context(), transaction() as session:
        rows = session.execute(
            sa.select(ScheduledJob.dedup_key, ScheduledJob.state).where(
                ScheduledJob.handover_id == handover_id
            )
        )
        return {key.replace(handover_id, "<id>"): state for key, state in rows}


def outbox(app: Flask, handover_id: str) -> list[tuple[str, str, str]]:
    """The handover's queued notifications: (kind, channel, target), sorted."""
    with app.app_context(), transaction() as session:
        rows = session.execute(
            sa.select(OutboxMessage.kind, OutboxMessage.channel, OutboxMessage.target).where(
                OutboxMessage.handover_id == handover_id
            )
        )
        return sorted((kind, channel, target) for kind, channel, target in rows)


def ladder(app: Flask, handover_id: str) -> list[tuple[int, str, list[str]]]:
    """The frozen escalation ladder: (level, at, notify)."""
    stored = json.loads(handover_row(app, handover_id).escalation_ladder or "[]")
    return [(level["level"], level["at"], level["notify"]) for level in stored]


def message_rows(app: Flask, handover_id: str) -> list[HandoverMessage]:
    """The stored thread rows (ciphertext)."""
    with app.app_context(), transaction() as session:
        return list(
            session.scalars(
                sa.select(HandoverMessage).where(HandoverMessage.handover_id == handover_id)
            )
        )
