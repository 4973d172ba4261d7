"""Escalation: ladders frozen at delivery, levels firing at their instants, and what stops them."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.delivery.models import ScheduledJob
from handover.timeutil import parse_iso
from tests.conftest import Api
from tests.delivery.conftest import (
    MONDAY_10,
    create,
    delivered,
    event_kinds,
    handover_row,
    jobs,
    ladder,
    outbox,
    read_back,
    record_for,
    submit_at,
    tick,
)

SECOND = timedelta(seconds=1)
TEAM_MANAGER = "grace.okoro@northvale.example"
SERVICE_MANAGER = "head.of.service@northvale.example"


def _escalations(app: Flask, handover_id: str) -> list[str]:
    return sorted(target for kind, _, target in outbox(app, handover_id) if kind == "escalated")


def test_deadline_across_the_october_clock_change_counts_working_minutes(
    app: Flask, api: Api
) -> None:
    # Friday 23 October 2026, 16:45 London (BST): 15 working minutes left that day.
    friday = datetime(2026, 10, 23, 15, 45, tzinfo=UTC)
    handover_id = delivered(app, api, at=friday)
    assert handover_row(app, handover_id).ack_due_at == parse_iso("2026-10-26T09:15:00Z")
    assert ladder(app, handover_id) == [
        (1, "2026-10-26T09:15:00Z", ["team_manager"]),
        (2, "2026-10-26T09:45:00Z", ["service_manager"]),
    ]
    assert jobs(app, handover_id) == {
        "transfer:<id>": "done",
        "escalate:<id>:1": "pending",
        "escalate:<id>:2": "pending",
    }


def test_levels_fire_at_their_instants_and_notify_their_people(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api, at=datetime(2026, 10, 23, 15, 45, tzinfo=UTC))
    level_1, level_2 = parse_iso("2026-10-26T09:15:00Z"), parse_iso("2026-10-26T09:45:00Z")

    assert tick(app, level_1 - SECOND).escalated == 0
    assert handover_row(app, handover_id).escalation_level == 0

    assert tick(app, level_1).escalated == 1
    body = api.get(f"/handovers/{handover_id}", as_="social_worker").get_json()
    assert (body["status"], body["escalation_level"]) == ("delivered", 1)
    assert _escalations(app, handover_id) == [TEAM_MANAGER]

    assert tick(app, level_2 - SECOND).escalated == 0
    assert tick(app, level_2).escalated == 1
    assert handover_row(app, handover_id).escalation_level == 2
    assert _escalations(app, handover_id) == sorted([TEAM_MANAGER, SERVICE_MANAGER])
    assert tick(app, level_2 + timedelta(days=3)).claimed == 0
    assert event_kinds(app, handover_id)[-3:] == ["delivered", "escalated", "escalated"]


@pytest.mark.parametrize(
    ("urgency", "expected"),
    [
        ("immediate", ["2026-11-30T10:30:00Z", "2026-11-30T11:00:00Z"]),
        ("priority", ["2026-11-30T12:00:00Z", "2026-11-30T13:00:00Z"]),
        # routine: the end of the working day, then 10:00 the next working day.
        ("routine", ["2026-11-30T17:00:00Z", "2026-12-01T10:00:00Z"]),
    ],
)
def test_default_ladders_per_urgency(
    app: Flask, api: Api, urgency: str, expected: list[str]
) -> None:
    handover_id = delivered(app, api, urgency=urgency)
    assert [at for _, at, _ in ladder(app, handover_id)] == expected
    assert [notify for _, _, notify in ladder(app, handover_id)] == [
        ["team_manager"],
        ["service_manager"],
    ]


def test_a_late_tick_fires_both_levels_in_order(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    assert tick(app, MONDAY_10 + timedelta(hours=5)).escalated == 2
    assert event_kinds(app, handover_id)[-2:] == ["escalated", "escalated"]
    assert handover_row(app, handover_id).escalation_level == 2


def test_acknowledgement_cancels_escalation(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    assert tick(app, MONDAY_10 + timedelta(minutes=30)).escalated == 1
    response = api.post(
        f"/handovers/{handover_id}/acknowledge", as_="social_worker", json_body=read_back()
    )
    assert response.status_code == 200, response.get_json()
    assert jobs(app, handover_id)["escalate:<id>:2"] == "cancelled"
    assert tick(app, MONDAY_10 + timedelta(days=2)).escalated == 0
    assert event_kinds(app, handover_id)[-3:] == ["delivered", "escalated", "acknowledged"]
    assert _escalations(app, handover_id) == [TEAM_MANAGER]


def test_an_escalation_that_finds_the_record_acknowledged_cancels_itself(
    app: Flask, api: Api
) -> None:
    handover_id = delivered(app, api)
    api.post(f"/handovers/{handover_id}/acknowledge", as_="social_worker", json_body=read_back())
    with app.app_context(), transaction() as session:  # as if a tick had held it during the ack
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.handover_id == handover_id, ScheduledJob.level == 1)
            .values(state="pending", finished_at=None)
        )
    counts = tick(app, MONDAY_10 + timedelta(hours=1))
    assert (counts.escalated, counts.cancelled) == (0, 1)
    assert jobs(app, handover_id)["escalate:<id>:1"] == "cancelled"
    assert "escalated" not in event_kinds(app, handover_id)


def test_levels_nobody_can_receive_raise_an_alert_at_delivery(app: Flask, api: Api) -> None:
    # southmoor-fst has no team manager and no service manager in the demo directory.
    handover_id = delivered(app, api, team="southmoor-fst")
    assert event_kinds(app, handover_id).count("escalation_unreachable") == 2
    alerts = {target for kind, _, target in outbox(app, handover_id) if kind == "alert"}
    assert alerts == {"admin@tri-borough.example", "marcus.bell@tri-borough.example"}
    events = api.get(f"/handovers/{handover_id}/events", as_="edt_manager").get_json()["events"]
    details = [e["detail"] for e in events if e["kind"] == "escalation_unreachable"]
    assert details[0] == "Escalation level 1 (team_manager) has nobody to notify at southmoor-fst."


def test_a_teams_own_ladder_is_frozen_at_delivery(app: Flask, api: Api) -> None:
    # northvale-mash's immediate ladder in the example directory: 15 working minutes, then 15.
    handover_id = delivered(app, api, team="northvale-mash")
    assert ladder(app, handover_id) == [
        (1, "2026-11-30T10:15:00Z", ["team_manager"]),
        (2, "2026-11-30T10:30:00Z", ["service_manager"]),
    ]
    assert event_kinds(app, handover_id).count("escalation_unreachable") == 1  # no team manager
    _load_directory(app, _example_with_mash_escalation(None))
    assert [at for _, at, _ in ladder(app, handover_id)][0] == "2026-11-30T10:15:00Z"
    later = create(api, record_for("northvale-mash"))
    submit_at(app, later, MONDAY_10)
    tick(app, MONDAY_10)
    assert [at for _, at, _ in ladder(app, later)][0] == "2026-11-30T10:30:00Z"


def _example_with_mash_escalation(escalation: object) -> str:
    text = (PROJECT_ROOT / "config" / "directory.example.toml").read_text()
    data = tomllib.loads(text)
    start = text.index("[teams.escalation]")
    end = text.index("[[teams]]", start)
    replacement = "" if escalation is None else f"[teams.escalation]\n{escalation}\n\n"
    assert "northvale-mash" in str(data["teams"][1])
    return text[:start] + replacement + text[end:]


def _load_directory(app: Flask, text: str) -> Result:
    path = Path(app.instance_path) / "directory.toml"
    path.write_text(text)
    return app.test_cli_runner().invoke(args=["directory", "load", str(path)])


@pytest.mark.parametrize(
    ("escalation", "field"),
    [
        ("immediate = [{ notify = ['team_manager'] }]", "teams.1.escalation.immediate.0"),
        (
            "priority = [{ working_minutes = 0, notify = ['team_manager'] }]",
            "teams.1.escalation.priority.0.working_minutes",
        ),
        (
            "routine = [{ end_of_day = true, notify = ['the boss'] }]",
            "teams.1.escalation.routine.0.notify.0",
        ),
        ("urgent = []", "teams.1.escalation.urgent"),
        ("service_manager = 'nobody'", "teams.1.escalation.service_manager"),
    ],
)
def test_a_bad_escalation_table_is_refused_naming_the_field(
    app: Flask, escalation: str, field: str
) -> None:
    result = _load_directory(app, _example_with_mash_escalation(escalation))
    assert result.exit_code != 0
    assert field in result.output
