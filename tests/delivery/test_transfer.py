"""The scheduled transfer: due_at across clock changes and bank holidays, exactly once per tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from handover.timeutil import isoformat
from tests.conftest import Api
from tests.delivery.conftest import (
    create,
    event_kinds,
    handover_row,
    jobs,
    outbox,
    record_for,
    submit_at,
    tick,
)

SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        # Friday before the spring clock change: Monday 09:00 BST is 08:00Z.
        (datetime(2026, 3, 27, 17, 30, tzinfo=UTC), "2026-03-30T08:00:00Z"),
        # Friday before the autumn clock change: Monday 09:00 GMT is 09:00Z.
        (datetime(2026, 10, 23, 17, 30, tzinfo=UTC), "2026-10-26T09:00:00Z"),
        # Christmas Eve: Christmas Day and the Boxing Day substitute (Monday 28th) are holidays.
        (datetime(2026, 12, 24, 17, 30, tzinfo=UTC), "2026-12-29T09:00:00Z"),
    ],
)
def test_transfer_happens_once_at_the_teams_next_start(
    app: Flask, api: Api, runner: object, submitted: datetime, due: str
) -> None:
    handover_id = create(api, record_for("southmoor-fst"))
    assert isoformat(submit_at(app, handover_id, submitted)) == due
    assert jobs(app, handover_id) == {"transfer:<id>": "pending"}
    due_at = handover_row(app, handover_id).due_at
    assert due_at is not None

    before = app.test_cli_runner().invoke(
        args=["scheduler", "tick", "--now", isoformat(due_at - SECOND)]
    )
    assert before.exit_code == 0, before.output
    assert "delivered 0" in before.output
    assert handover_row(app, handover_id).status == "scheduled"

    at_due = app.test_cli_runner().invoke(args=["scheduler", "tick", "--now", due])
    assert at_due.exit_code == 0, at_due.output
    assert "delivered 1" in at_due.output
    row = handover_row(app, handover_id)
    assert (row.status, row.delivered_at) == ("delivered", due_at)

    again = app.test_cli_runner().invoke(args=["scheduler", "tick", "--now", due])
    assert "delivered 0" in again.output
    assert event_kinds(app, handover_id).count("delivered") == 1
    assert jobs(app, handover_id)["transfer:<id>"] == "done"
    assert [k for k, _, _ in outbox(app, handover_id) if k == "delivered"] == ["delivered"]


def test_submit_inside_working_hours_is_due_at_once(app: Flask, api: Api) -> None:
    monday = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    handover_id = create(api, record_for("southmoor-fst"))
    assert submit_at(app, handover_id, monday) == monday
    assert tick(app, monday).delivered == 1
    body = api.get(f"/handovers/{handover_id}", as_="southmoor_worker").get_json()
    assert body["status"] == "delivered"
    assert body["delivered_at"] == "2026-11-30T14:00:00Z"
    assert body["acknowledged_at"] is None and body["acknowledged_by"] is None


def test_the_tick_refuses_a_naive_or_malformed_now(app: Flask) -> None:
    for bad in ("2026-03-30T08:00:00", "next monday"):
        result = app.test_cli_runner().invoke(args=["scheduler", "tick", "--now", bad])
        assert result.exit_code == 2
        assert "--now" in result.output


def test_a_delivered_team_is_notified_with_reference_only(app: Flask, api: Api) -> None:
    handover_id = create(api, record_for("northvale-east-fst"))
    due = submit_at(app, handover_id, datetime(2026, 11, 28, 2, 10, tzinfo=UTC))
    assert isoformat(due) == "2026-11-30T09:00:00Z"
    tick(app, due)
    assert ("delivered", "email", "east-fst@northvale.example") in outbox(app, handover_id)
