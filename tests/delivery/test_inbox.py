"""The team inbox: what it holds, its order (overdue first), and who may read it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.db import transaction
from handover.delivery import service
from handover.timeutil import now
from tests.conftest import Api
from tests.delivery.conftest import (
    MONDAY_10,
    create,
    read_back,
    record_for,
    submit_at,
    tick,
)


def _deliver(app: Flask, api: Api, urgency: str, minutes_after_nine: int) -> str:
    at = MONDAY_10 - timedelta(minutes=60 - minutes_after_nine)
    handover_id = create(api, record_for(urgency=urgency))
    submit_at(app, handover_id, at)
    tick(app, at)
    return handover_id


def _order(app: Flask, at: datetime) -> list[str]:
    with app.app_context(), transaction() as session:
        return [h.id for h in service.inbox(session, team_code="northvale-east-fst", now=at)]


def test_overdue_first_then_awaiting_acknowledgement_by_deadline_then_the_rest(
    app: Flask, api: Api
) -> None:
    early = _deliver(app, api, "immediate", 5)  # due 09:35
    immediate = _deliver(app, api, "immediate", 60)  # due 10:30
    routine = _deliver(app, api, "routine", 60)  # due 17:00
    priority = _deliver(app, api, "priority", 60)  # due 12:00
    acknowledged = _deliver(app, api, "immediate", 50)  # due 10:20, but acknowledged
    returned = _deliver(app, api, "immediate", 55)  # due 10:25, but returned
    scheduled = create(api, record_for())
    submit_at(app, scheduled, MONDAY_10 + timedelta(hours=1))  # not delivered yet
    assert (
        api.post(
            f"/handovers/{acknowledged}/acknowledge", as_="social_worker", json_body=read_back()
        ).status_code
        == 200
    )
    assert (
        api.post(
            f"/handovers/{returned}/return", as_="social_worker", json_body={"reason": "Not ours."}
        ).status_code
        == 200
    )

    at_1045 = MONDAY_10 + timedelta(minutes=45)
    assert _order(app, at_1045) == [early, immediate, priority, routine, acknowledged, returned]
    at_0940 = MONDAY_10 - timedelta(minutes=20)
    assert _order(app, at_0940)[:4] == [early, immediate, priority, routine]
    at_1300 = MONDAY_10 + timedelta(hours=3)
    assert _order(app, at_1300)[:4] == [early, immediate, priority, routine]  # all overdue but one

    body = api.get("/teams/northvale-east-fst/inbox", as_="social_worker").get_json()
    assert body["team"] == "northvale-east-fst"
    assert [h["id"] for h in body["handovers"]] == _order(app, now())
    first = body["handovers"][0]
    assert {"reference", "status", "urgency", "ack_due_at", "overdue", "escalation_level"} <= set(
        first
    )
    assert "record" not in first


def test_only_the_teams_members_read_its_inbox(app: Flask, api: Api) -> None:
    path = "/teams/northvale-east-fst/inbox"
    assert api.get(path, as_="team_manager").status_code == 200
    for who in ("mash_worker", "edt_manager", "police_officer", "admin"):
        assert api.get(path, as_=who).status_code == 403, who
    assert api.get("/teams/no-such-team/inbox", as_="social_worker").status_code == 404
    assert api.get(f"{path}?limit=0", as_="social_worker").status_code == 400


def test_reading_the_inbox_is_audited(app: Flask, api: Api) -> None:
    api.get("/teams/northvale-east-fst/inbox", as_="social_worker")
    with app.app_context(), transaction() as session:
        row = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "inbox.view")).one()
        assert row.object_id == "northvale-east-fst"
