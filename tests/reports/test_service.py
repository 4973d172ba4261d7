"""The report service: weekly timeliness figures from known times, and what needs a manager."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask

from handover.db import transaction
from handover.directory import service as directory
from handover.reports import service
from tests.reports.helpers import (
    MONDAY_10,
    acknowledge,
    delivered,
    person,
    return_,
    tick,
)

pytestmark = pytest.mark.usefixtures("no_mail")
MINUTE = timedelta(minutes=1)


def timeliness(app: Flask, *, role: str, team: str, now: datetime) -> list[service.Week]:
    with app.app_context(), transaction() as session:
        found = directory.get_team(session, team)
        assert found is not None
        return service.timeliness(session, user=person(session, role), team=found, now=now)


def overview(app: Flask, *, role: str, now: datetime) -> service.Overview:
    with app.app_context(), transaction() as session:
        return service.overview(session, user=person(session, role), now=now)


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([10.0, 20.0, 90.0], 0.9, 90.0),
        ([float(v) for v in range(1, 11)], 0.9, 9.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([], 0.9, None),
        ([7.0], 0.9, 7.0),
    ],
)
def test_percentile_is_nearest_rank(
    values: list[float], share: float, expected: float | None
) -> None:
    assert service.percentile(values, share) == expected


def test_weeks_start_on_london_mondays() -> None:
    # Sunday 29 November 2026, 23:59 UTC, is still Sunday in London (GMT).
    assert service.week_starts(datetime(2026, 11, 29, 23, 59, tzinfo=UTC), 2) == [
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]
    # Sunday 18 October 2026, 23:30 UTC, is Monday 00:30 in London (BST).
    assert service.week_starts(datetime(2026, 10, 18, 23, 30, tzinfo=UTC), 1) == [
        date(2026, 10, 19)
    ]
    assert service.london_midnight(date(2026, 10, 19)) == datetime(2026, 10, 18, 23, tzinfo=UTC)


def test_a_week_of_acknowledgements(app: Flask, demo: dict[str, str]) -> None:
    quick, middling, slow = (delivered(app, at=MONDAY_10) for _ in range(3))
    acknowledge(app, quick, at=MONDAY_10 + 10 * MINUTE)
    acknowledge(app, middling, at=MONDAY_10 + 20 * MINUTE)
    acknowledge(app, slow, at=MONDAY_10 + 90 * MINUTE)  # its deadline was 10:30
    delivered(app, at=MONDAY_10 + 60 * MINUTE)  # never acknowledged: due 11:30
    weeks = timeliness(
        app, role="team_manager", team="northvale-east-fst", now=MONDAY_10 + 6 * 60 * MINUTE
    )
    assert [week.starts for week in weeks] == [
        date(2026, 10, 12) + timedelta(weeks=n) for n in range(8)
    ]
    this_week = weeks[-1]
    assert (this_week.received, this_week.acknowledged, this_week.overdue) == (4, 3, 2)
    assert (this_week.median_minutes, this_week.p90_minutes) == (20.0, 90.0)
    assert (this_week.median_working_minutes, this_week.p90_working_minutes) == (20.0, 90.0)
    assert all(week.received == 0 and week.median_minutes is None for week in weeks[:-1])


def test_working_time_leaves_out_the_night(app: Flask, demo: dict[str, str]) -> None:
    friday_1630 = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    handover_id = delivered(app, at=friday_1630)
    acknowledge(app, handover_id, at=datetime(2026, 11, 30, 9, 15, tzinfo=UTC))  # Monday 09:15
    week = timeliness(app, role="team_manager", team="northvale-east-fst", now=MONDAY_10)[-2]
    assert week.starts == date(2026, 11, 23)
    assert week.median_minutes == 60 * 64 + 45  # Friday 16:30 to Monday 09:15, elapsed
    assert week.median_working_minutes == 45  # 30 on Friday, 15 on Monday
    assert week.overdue == 1


def test_deliveries_fall_in_their_london_week(app: Flask, demo: dict[str, str]) -> None:
    for at in (
        datetime(2026, 10, 18, 22, 59, tzinfo=UTC),  # Sunday 23:59 BST: week of 12 October
        datetime(2026, 10, 18, 23, 0, tzinfo=UTC),  # Monday 00:00 BST: week of 19 October
        datetime(2026, 11, 29, 23, 59, tzinfo=UTC),  # Sunday 23:59 GMT: week of 23 November
        datetime(2026, 11, 30, 0, 0, tzinfo=UTC),  # Monday 00:00 GMT: week of 30 November
    ):
        delivered(app, at=at)
    weeks = timeliness(app, role="team_manager", team="northvale-east-fst", now=MONDAY_10)
    received = {week.starts: week.received for week in weeks if week.received}
    assert received == {
        date(2026, 10, 12): 1,
        date(2026, 10, 19): 1,
        date(2026, 11, 23): 1,
        date(2026, 11, 30): 1,
    }


def test_returned_before_its_deadline_is_not_overdue(app: Flask, demo: dict[str, str]) -> None:
    early, late = delivered(app, at=MONDAY_10), delivered(app, at=MONDAY_10)
    return_(app, early, at=MONDAY_10 + 5 * MINUTE)
    return_(app, late, at=MONDAY_10 + 45 * MINUTE)
    week = timeliness(
        app, role="team_manager", team="northvale-east-fst", now=MONDAY_10 + 120 * MINUTE
    )[-1]
    assert (week.received, week.acknowledged, week.overdue) == (2, 0, 1)
    assert week.median_minutes is None


def test_other_teams_are_not_counted(app: Flask, demo: dict[str, str]) -> None:
    delivered(app, at=MONDAY_10, team="southmoor-fst")
    weeks = timeliness(app, role="admin", team="northvale-east-fst", now=MONDAY_10 + MINUTE)
    assert sum(week.received for week in weeks) == 0
    weeks = timeliness(app, role="admin", team="southmoor-fst", now=MONDAY_10 + MINUTE)
    assert weeks[-1].received == 1


@pytest.mark.parametrize(
    ("role", "teams"),
    [
        ("team_manager", ["northvale-east-fst"]),
        ("edt_manager", ["eastbury-fst", "northvale-east-fst", "northvale-mash", "southmoor-fst"]),
        ("admin", ["eastbury-fst", "northvale-east-fst", "northvale-mash", "southmoor-fst"]),
        ("social_worker", []),
        ("police_officer", []),
        ("auditor", []),
    ],
)
def test_whose_timeliness_each_role_sees(
    app: Flask, demo: dict[str, str], role: str, teams: list[str]
) -> None:
    with app.app_context(), transaction() as session:
        found = service.timeliness_teams(session, user=person(session, role))
        assert [team.code for team in found] == teams


def test_overview_lists_escalated_then_overdue_then_returned(
    app: Flask, demo: dict[str, str]
) -> None:
    escalated = delivered(app, at=MONDAY_10)  # level 1 due 10:30, level 2 due 11:00
    assert tick(app, MONDAY_10 + 31 * MINUTE).escalated == 1
    overdue = delivered(app, at=MONDAY_10 + 40 * MINUTE)  # due 11:10, no tick since
    in_time = delivered(app, at=MONDAY_10 + 60 * MINUTE)
    acknowledge(app, in_time, at=MONDAY_10 + 70 * MINUTE)
    waiting = delivered(app, at=MONDAY_10 + 60 * MINUTE)  # due 11:30
    returned = delivered(app, at=MONDAY_10)
    return_(app, returned, at=MONDAY_10 + 5 * MINUTE)
    elsewhere = delivered(app, at=MONDAY_10, team="southmoor-fst")
    now = MONDAY_10 + 80 * MINUTE

    found = overview(app, role="team_manager", now=now)
    assert [item.id for item in found.overdue] == [escalated, overdue]
    first, second = found.overdue
    assert (first.escalation_level, first.since) == (1, MONDAY_10 + 31 * MINUTE)
    assert (second.escalation_level, second.since) == (0, None)
    assert first.team_name == "Northvale East Family Safeguarding Team"
    assert [(item.id, item.since) for item in found.returned] == [
        (returned, MONDAY_10 + 5 * MINUTE)
    ]
    assert waiting not in {item.id for item in found.overdue}

    edt = overview(app, role="edt_manager", now=now)
    assert {item.id for item in edt.overdue} == {escalated, overdue, elsewhere}
    assert [item.id for item in edt.returned] == [returned]


@pytest.mark.parametrize(
    "role", ["social_worker", "police_officer", "admin", "auditor", "edt_worker"]
)
def test_only_managers_manage(app: Flask, demo: dict[str, str], role: str) -> None:
    delivered(app, at=MONDAY_10)
    with app.app_context(), transaction() as session:
        user = person(session, role)
        assert not service.can_manage(user)
        found = service.overview(session, user=user, now=MONDAY_10 + 120 * MINUTE)
        assert found.overdue == [] and found.returned == []
