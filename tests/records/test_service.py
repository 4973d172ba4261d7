"""Submit schedules the transfer for the holding team's next working-day start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask

from handover.db import transaction
from handover.directory import service as directory
from handover.errors import ValidationFailed
from handover.records import service
from handover.timeutil import isoformat, parse_iso
from tests.conftest import DEMO_USERS, reference_record


def submit_at(app: Flask, moment: str, **changes: Any) -> Any:
    now: datetime = parse_iso(moment)
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        assert user is not None
        record = {**reference_record(), **changes}
        if now.year == 2026 and now.month < 8:  # the fixture's baby is born in July 2026
            record["children"][0]["date_of_birth"] = "2025-07-24"
        handover = service.create(session, user=user, payload=record, now=now)
        service.submit(session, user=user, handover=handover, now=now)
        return handover


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        ("2026-03-27T17:30:00Z", "2026-03-30T08:00:00Z"),  # clocks go forward on the Sunday
        ("2026-10-23T17:30:00Z", "2026-10-26T09:00:00Z"),  # clocks go back on the Sunday
        ("2026-12-22T17:30:00Z", "2026-12-23T09:00:00Z"),
        # The team is closed on Christmas Eve; Christmas, Boxing Day (Monday substitute) follow.
        ("2026-12-23T17:30:00Z", "2026-12-29T09:00:00Z"),
        ("2026-11-30T10:15:00Z", "2026-11-30T10:15:00Z"),  # inside working hours: due now
        ("2026-11-30T07:00:00Z", "2026-11-30T09:00:00Z"),
    ],
)
def test_due_at_follows_the_allocated_teams_calendar(
    app: Flask, demo: dict[str, str], submitted: str, due: str
) -> None:
    handover = submit_at(app, submitted)
    assert handover.status == "scheduled"
    assert handover.team_code == "northvale-east-fst"
    assert isoformat(handover.due_at) == due


def test_no_allocated_team_goes_to_the_las_intake_team(app: Flask, demo: dict[str, str]) -> None:
    handover = submit_at(app, "2026-11-27T18:00:00Z", allocated_team=None)  # a Friday evening
    assert handover.team_code == "northvale-mash"
    assert isoformat(handover.due_at) == "2026-11-30T08:30:00Z"  # the MASH opens at 08:30


def test_a_team_in_another_local_authority_is_refused(app: Flask, demo: dict[str, str]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        submit_at(app, "2026-11-27T18:00:00Z", allocated_team="southmoor-fst")
    assert "allocated_team" in raised.value.fields
