"""Working calendars: when a handover falls due, and how working minutes are counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handover.directory.calendar import WorkingCalendar, bank_holidays
from handover.timeutil import parse_iso

DEFAULT = WorkingCalendar()
EVERY_DAY = frozenset(range(7))


def utc(text: str) -> datetime:
    """Parse an ISO timestamp (``Z`` or an offset) into aware UTC."""
    return parse_iso(text)


# --- due_at: the contract examples and bank holidays ------------------------------------------


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        # Friday after hours; clocks went forward on Sunday 29 March.
        ("2026-03-27T17:30:00Z", "2026-03-30T08:00:00Z"),
        # Friday after hours; clocks went back on Sunday 25 October.
        ("2026-10-23T17:30:00Z", "2026-10-26T09:00:00Z"),
        # Christmas Eve: Christmas Friday, Boxing Day substitute Monday 28th.
        ("2026-12-24T17:30:00Z", "2026-12-29T09:00:00Z"),
        # Maundy Thursday 18:00 BST: Good Friday and Easter Monday are skipped.
        ("2026-04-02T18:00:00+01:00", "2026-04-07T08:00:00Z"),
        # Early May, spring and summer bank holiday Mondays.
        ("2026-05-01T18:00:00+01:00", "2026-05-05T08:00:00Z"),
        ("2026-05-22T18:00:00+01:00", "2026-05-26T08:00:00Z"),
        ("2026-08-28T18:00:00+01:00", "2026-09-01T08:00:00Z"),
        # New Year's Eve: New Year's Day is a Friday in 2027.
        ("2026-12-31T17:30:00Z", "2027-01-04T09:00:00Z"),
        # 2027: Christmas and Boxing Day fall at the weekend, substitutes Mon 27 and Tue 28.
        ("2027-12-24T17:30:00Z", "2027-12-29T09:00:00Z"),
    ],
)
def test_due_at_after_hours_is_next_working_day_start(submitted: str, due: str) -> None:
    assert DEFAULT.due_at(utc(submitted)) == utc(due)


def test_bank_holidays_are_england_and_wales_and_cached() -> None:
    days = bank_holidays(2026)
    assert {date(2026, 4, 3), date(2026, 4, 6), date(2026, 12, 28)} <= days
    assert date(2026, 3, 17) not in days  # St Patrick's Day is Northern Ireland only
    assert bank_holidays(2026) is days


def test_due_at_inside_hours_is_now() -> None:
    now = utc("2026-06-10T11:23:45.5Z")
    assert DEFAULT.due_at(now) == now
    assert DEFAULT.due_at(now).tzinfo is UTC


def test_due_at_returns_utc_for_offset_input() -> None:
    now = datetime(2026, 6, 10, 12, 0, tzinfo=ZoneInfo("Europe/London"))
    assert DEFAULT.due_at(now) == now
    assert DEFAULT.due_at(now).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-06-10T08:00:00Z", "2026-06-10T08:00:00Z"),  # 09:00 BST exactly: inside
        ("2026-06-10T07:59:00Z", "2026-06-10T08:00:00Z"),  # just before the start
        ("2026-06-10T05:00:00Z", "2026-06-10T08:00:00Z"),  # early morning
        ("2026-06-10T16:00:00Z", "2026-06-11T08:00:00Z"),  # 17:00 BST exactly: after hours
        ("2026-06-06T12:00:00Z", "2026-06-08T08:00:00Z"),  # Saturday
    ],
)
def test_due_at_at_the_edges_of_the_day(now: str, due: str) -> None:
    assert DEFAULT.due_at(utc(now)) == utc(due)


def test_closure_days_are_skipped() -> None:
    calendar = WorkingCalendar(closure_days=frozenset({date(2026, 6, 15), date(2026, 6, 16)}))
    assert calendar.due_at(utc("2026-06-12T17:30:00Z")) == utc("2026-06-17T08:00:00Z")
    assert not calendar.is_working_time(utc("2026-06-15T10:00:00Z"))


def test_saturday_working_team() -> None:
    calendar = WorkingCalendar(weekdays=frozenset({0, 1, 2, 3, 4, 5}))
    assert calendar.due_at(utc("2026-06-12T17:30:00Z")) == utc("2026-06-13T08:00:00Z")
    assert calendar.due_at(utc("2026-06-13T12:00:00Z")) == utc("2026-06-13T12:00:00Z")


def test_saturday_bank_holiday_is_not_worked() -> None:
    calendar = WorkingCalendar(weekdays=frozenset({0, 1, 2, 3, 4, 5}))
    # Boxing Day 2026 is a Saturday; the holidays package lists it as well as the substitute.
    assert calendar.due_at(utc("2026-12-24T17:30:00Z")) == utc("2026-12-29T09:00:00Z")


def test_custom_hours() -> None:
    calendar = WorkingCalendar(day_start=time(8, 30), day_end=time(16, 30))
    assert calendar.due_at(utc("2026-01-14T16:29:00Z")) == utc("2026-01-14T16:29:00Z")
    assert calendar.due_at(utc("2026-01-14T16:30:00Z")) == utc("2026-01-15T08:30:00Z")
    assert calendar.due_at(utc("2026-07-14T06:00:00Z")) == utc("2026-07-14T07:30:00Z")


# --- next_working_start ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "start"),
    [
        ("2026-01-14T08:59:00Z", "2026-01-14T09:00:00Z"),  # before today's start
        ("2026-01-14T09:00:00Z", "2026-01-15T09:00:00Z"),  # at the start: strictly after
        ("2026-01-14T12:00:00Z", "2026-01-15T09:00:00Z"),  # inside hours
        ("2026-01-16T12:00:00Z", "2026-01-19T09:00:00Z"),  # Friday
    ],
)
def test_next_working_start(at: str, start: str) -> None:
    assert DEFAULT.next_working_start(utc(at)) == utc(start)


def test_no_working_weekday_raises_instead_of_looping() -> None:
    calendar = WorkingCalendar(weekdays=frozenset())
    with pytest.raises(ValueError):
        calendar.due_at(utc("2026-01-14T12:00:00Z"))


def test_search_is_capped_when_every_working_day_is_closed() -> None:
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(52 * 4))
    calendar = WorkingCalendar(weekdays=frozenset({0}), closure_days=mondays)
    with pytest.raises(ValueError):
        calendar.next_working_start(utc("2026-01-01T12:00:00Z"))


def test_invalid_hours_are_rejected() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(day_start=time(17), day_end=time(9))
    with pytest.raises(ValueError):
        WorkingCalendar(weekdays=frozenset({7}))


CALLS: list[Callable[[datetime], object]] = [
    DEFAULT.is_working_time,
    DEFAULT.next_working_start,
    DEFAULT.due_at,
    lambda at: DEFAULT.add_working_minutes(at, 5),
    lambda at: DEFAULT.working_minutes_between(at, utc("2026-01-01T00:00:00Z")),
    lambda at: DEFAULT.working_minutes_between(utc("2026-01-01T00:00:00Z"), at),
    DEFAULT.end_of_working_day,
    lambda at: DEFAULT.at_local_time_next_working_day(at, time(10)),
]


@pytest.mark.parametrize("call", CALLS)
def test_naive_datetimes_are_rejected(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError):
        call(datetime(2026, 1, 14, 12, 0))


# --- clock changes with hours inside the changing hour ----------------------------------------


def test_start_inside_spring_forward_gap_begins_when_clocks_jump() -> None:
    calendar = WorkingCalendar(weekdays=EVERY_DAY, day_start=time(1, 30), day_end=time(9))
    # 01:30 does not exist on 29 March 2026: working time begins at 01:00Z (02:00 BST).
    assert calendar.next_working_start(utc("2026-03-29T00:00:00Z")) == utc("2026-03-29T01:00:00Z")
    assert not calendar.is_working_time(utc("2026-03-29T00:59:00Z"))
    assert calendar.is_working_time(utc("2026-03-29T01:00:00Z"))


def test_start_inside_repeated_autumn_hour_is_first_occurrence() -> None:
    calendar = WorkingCalendar(weekdays=EVERY_DAY, day_start=time(1, 30), day_end=time(9))
    # 01:30 happens at 00:30Z (BST) and again at 01:30Z (GMT); the first one starts the day.
    assert calendar.next_working_start(utc("2026-10-25T00:00:00Z")) == utc("2026-10-25T00:30:00Z")
    # 01:00-01:29 GMT reads before 01:30 on the wall clock, so it is outside hours.
    assert not calendar.is_working_time(utc("2026-10-25T01:10:00Z"))
    assert calendar.end_of_working_day(utc("2026-10-25T00:45:00Z")) == utc("2026-10-25T09:00:00Z")


@pytest.mark.parametrize(
    ("day", "minutes"),
    [("2026-03-29", 120), ("2026-10-25", 240), ("2026-06-14", 180)],
)
def test_night_hours_count_real_elapsed_minutes(day: str, minutes: int) -> None:
    calendar = WorkingCalendar(weekdays=EVERY_DAY, day_start=time(0), day_end=time(3))
    midnight = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo("Europe/London"))
    assert calendar.working_minutes_between(midnight, midnight + timedelta(hours=6)) == minutes


# --- add_working_minutes and working_minutes_between ------------------------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "end"),
    [
        # Friday 16:50 BST + 30 → Monday 09:20 GMT, across the October clock change.
        ("2026-10-23T16:50:00+01:00", 30, "2026-10-26T09:20:00Z"),
        # Friday 16:50 GMT + 30 → Monday 09:20 BST, across the March clock change.
        ("2026-03-27T16:50:00Z", 30, "2026-03-30T08:20:00Z"),
        ("2026-01-14T09:00:00Z", 480, "2026-01-14T17:00:00Z"),  # a full day ends at 17:00
        ("2026-01-14T09:00:00Z", 481, "2026-01-15T09:01:00Z"),
        ("2026-01-14T12:00:00Z", 120, "2026-01-14T14:00:00Z"),  # priority: 2 working hours
        ("2026-01-14T20:00:00Z", 0, "2026-01-15T09:00:00Z"),  # zero outside hours: next start
        ("2026-01-14T12:34:56Z", 0, "2026-01-14T12:34:56Z"),  # zero inside hours: now
    ],
)
def test_add_working_minutes(start: str, minutes: int, end: str) -> None:
    assert DEFAULT.add_working_minutes(utc(start), minutes) == utc(end)


def test_add_working_minutes_rejects_negative() -> None:
    with pytest.raises(ValueError):
        DEFAULT.add_working_minutes(utc("2026-01-14T12:00:00Z"), -1)


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        ("2026-10-23T16:50:00+01:00", "2026-10-26T09:20:00Z", 30),
        ("2026-01-14T00:00:00Z", "2026-01-21T00:00:00Z", 5 * 480),
        ("2026-12-24T00:00:00Z", "2026-12-30T00:00:00Z", 2 * 480),
        ("2026-01-14T12:00:30Z", "2026-01-14T12:02:00Z", 1),  # whole minutes only
        ("2026-01-14T13:00:00Z", "2026-01-14T12:00:00Z", 0),  # end before start
    ],
)
def test_working_minutes_between(start: str, end: str, minutes: int) -> None:
    assert DEFAULT.working_minutes_between(utc(start), utc(end)) == minutes


@settings(max_examples=100, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=5000),
)
def test_working_minutes_between_inverts_add_working_minutes(start: datetime, minutes: int) -> None:
    end = DEFAULT.add_working_minutes(start, minutes)
    assert DEFAULT.working_minutes_between(start, end) == minutes
    assert end >= start


# --- end_of_working_day and next-day escalation ------------------------------------------------


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-06-10T10:00:00Z", "2026-06-10T16:00:00Z"),  # inside hours, BST
        ("2026-06-10T06:00:00Z", "2026-06-10T16:00:00Z"),  # before the start: today
        ("2026-01-16T18:00:00Z", "2026-01-19T17:00:00Z"),  # Friday evening: Monday
        ("2026-10-23T17:30:00Z", "2026-10-26T17:00:00Z"),  # across the clock change
    ],
)
def test_end_of_working_day(at: str, end: str) -> None:
    assert DEFAULT.end_of_working_day(utc(at)) == utc(end)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-14T12:00:00Z", "2026-01-15T10:00:00Z"),
        ("2026-01-14T06:00:00Z", "2026-01-15T10:00:00Z"),  # the next day, not today
        ("2026-03-27T12:00:00Z", "2026-03-30T09:00:00Z"),  # Monday 10:00 BST
        ("2026-12-24T12:00:00Z", "2026-12-29T10:00:00Z"),
        ("2026-06-10T23:30:00Z", "2026-06-12T09:00:00Z"),  # 00:30 BST on Thursday 11th
    ],
)
def test_at_local_time_next_working_day(at: str, expected: str) -> None:
    assert DEFAULT.at_local_time_next_working_day(utc(at), time(10)) == utc(expected)


# --- property test against a minute-by-minute oracle -------------------------------------------

ORACLE_TZ = ZoneInfo("Europe/London")
ORACLE_HOLIDAYS = holidays.country_holidays("GB", subdiv="ENG", years=range(2024, 2031))
ORACLE_LIMIT = timedelta(days=45)
MINUTE = timedelta(minutes=1)
ANCHORS = [
    date(2025, 3, 30),
    date(2025, 10, 26),
    date(2025, 12, 25),
    date(2026, 3, 29),
    date(2026, 4, 3),
    date(2026, 10, 25),
    date(2026, 12, 25),
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2027, 12, 25),
    date(2028, 3, 26),
    date(2028, 10, 29),
    date(2028, 12, 25),
]


def oracle_is_working(calendar: WorkingCalendar, at: datetime) -> bool:
    """Decide working time independently: London wall clock, weekday, holidays, closures."""
    local = at.astimezone(ORACLE_TZ)
    day = local.date()
    return (
        day.weekday() in calendar.weekdays
        and day not in calendar.closure_days
        and day not in ORACLE_HOLIDAYS
        and calendar.day_start <= local.time() < calendar.day_end
    )


@dataclass
class OracleAnswers:
    """What stepping minute by minute from an instant found."""

    due: datetime | None = None
    next_start: datetime | None = None
    after_minutes: datetime | None = None
    scanned_to: datetime | None = None
    minutes_counted: int = 0


def run_oracle(calendar: WorkingCalendar, start: datetime, minutes: int) -> OracleAnswers:
    """Step through UTC minute by minute from ``start`` until every answer is known."""
    answers, at = OracleAnswers(), start
    was_working = oracle_is_working(calendar, start - MINUTE)
    remaining = minutes
    while at < start + ORACLE_LIMIT:
        working = oracle_is_working(calendar, at)
        if working and answers.due is None:
            answers.due = at
        if working and remaining == 0 and answers.after_minutes is None:
            answers.after_minutes = at
        if working and not was_working and at > start and answers.next_start is None:
            answers.next_start = at
        answers.minutes_counted += working
        if working and remaining > 0:
            remaining -= 1
            if remaining == 0:
                answers.after_minutes = at + MINUTE
        at, was_working = at + MINUTE, working
        if answers.next_start is not None and answers.after_minutes is not None:
            break
    answers.scanned_to = at
    return answers


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Whole-minute UTC instants in 2025-2028, often near clock changes and Christmas."""
    if draw(st.booleans()):
        anchor = datetime.combine(draw(st.sampled_from(ANCHORS)), time(), tzinfo=UTC)
        return anchor + MINUTE * draw(st.integers(-8 * 1440, 8 * 1440))
    moment = draw(
        st.datetimes(
            min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
        )
    )
    return moment.replace(second=0, microsecond=0)


@st.composite
def calendars(draw: st.DrawFn, near: datetime) -> WorkingCalendar:
    """Random weekdays, half-hourly hours (including the clock-change hour) and closures."""
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, 46))
    end = draw(st.integers(start + 1, 47))
    offsets = draw(st.frozensets(st.integers(-1, 10), max_size=4))
    return WorkingCalendar(
        weekdays=weekdays,
        day_start=time(start // 2, 30 * (start % 2)),
        day_end=time(end // 2, 30 * (end % 2)),
        closure_days=frozenset(near.date() + timedelta(days=n) for n in offsets),
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data(), minutes=st.integers(0, 300))
def test_calendar_matches_minute_by_minute_oracle(data: st.DataObject, minutes: int) -> None:
    start = data.draw(instants())
    calendar = data.draw(calendars(start))
    answers = run_oracle(calendar, start, minutes)
    assume(answers.next_start is not None and answers.after_minutes is not None)
    assert calendar.is_working_time(start) == oracle_is_working(calendar, start)
    assert calendar.due_at(start) == answers.due
    assert calendar.next_working_start(start) == answers.next_start
    assert calendar.add_working_minutes(start, minutes) == answers.after_minutes
    assert answers.scanned_to is not None
    counted = calendar.working_minutes_between(start, answers.scanned_to)
    assert counted == answers.minutes_counted
