"""A team's working calendar: weekdays, hours, bank holidays and closure days, in London time.

Rules are applied to Europe/London wall-clock time and every instant returned is aware UTC.
A working period is the set of instants whose London wall time falls on a working day and in
``[day_start, day_end)``; it is derived from the real UTC offsets, so clock changes resolve like
this (they only matter for hours configured between 01:00 and 02:00):

- a configured time inside the spring-forward gap starts at the moment the clocks jump (the first
  instant the wall clock reads that time or later), e.g. 01:30 on 29 March 2026 is 01:00Z;
- a configured time inside the repeated autumn hour means its first occurrence, and wall-clock
  times repeated by the fall-back count as working time both times they occur.

Durations are counted over real elapsed time between those UTC instants, never by wall-clock
arithmetic on a London datetime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from handover.timeutil import LONDON, ensure_utc, to_london

# How far ahead to look for a working day before deciding the calendar has none.
SEARCH_DAYS = 3 * 366

Period = tuple[datetime, datetime]


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    """Return the England & Wales bank holidays of ``year``."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def _offset(instant: datetime) -> timedelta:
    """Return London's UTC offset at ``instant``."""
    offset = instant.astimezone(LONDON).utcoffset()
    assert offset is not None  # zoneinfo always knows its offset
    return offset


def _transition(lo: datetime, hi: datetime) -> datetime:
    """Return the first instant in ``(lo, hi]`` with ``hi``'s offset, given they differ."""
    before = _offset(lo)
    low, high = 0, int((hi - lo).total_seconds())
    while high - low > 1:  # offsets change on whole seconds
        mid = (low + high) // 2
        if _offset(lo + timedelta(seconds=mid)) == before:
            low = mid
        else:
            high = mid
    return lo + timedelta(seconds=high)


def _offset_segments(day: date) -> list[tuple[datetime, datetime, timedelta]]:
    """Split a window around London ``day`` into UTC spans of constant offset."""
    lo = datetime.combine(day - timedelta(days=1), time(), tzinfo=UTC)
    hi = datetime.combine(day + timedelta(days=2), time(), tzinfo=UTC)
    first, last = _offset(lo), _offset(hi)
    if first == last:
        return [(lo, hi, first)]
    switch = _transition(lo, hi)
    return [(lo, switch, first), (switch, hi, last)]


@lru_cache(maxsize=8192)
def _wall_periods(day: date, start: time, end: time | None) -> tuple[Period, ...]:
    """Return the UTC spans whose London wall time is on ``day`` in ``[start, end)``.

    ``end=None`` means the end of the day. Usually one span; none if the whole range falls in a
    spring-forward gap; two if the autumn fall-back repeats part of it non-contiguously.
    """
    wall_start = datetime.combine(day, start)
    if end is None:
        wall_end = datetime.combine(day + timedelta(days=1), time())
    else:
        wall_end = datetime.combine(day, end)
    periods: list[Period] = []
    for seg_start, seg_end, offset in _offset_segments(day):
        begin = max(seg_start, (wall_start - offset).replace(tzinfo=UTC))
        finish = min(seg_end, (wall_end - offset).replace(tzinfo=UTC))
        if begin >= finish:
            continue
        if periods and periods[-1][1] == begin:
            begin = periods.pop()[0]
        periods.append((begin, finish))
    return tuple(periods)


def _london_day(at: datetime) -> date:
    """Return the London calendar date of an aware datetime."""
    return to_london(at).date()


@dataclass(frozen=True)
class WorkingCalendar:
    """When a team works: weekdays (Monday=0), hours in London time and closure days."""

    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    closure_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        """Reject hours and weekdays that cannot describe a working day."""
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("working hours are London wall-clock times without tzinfo")
        if not self.day_start < self.day_end:
            raise ValueError("day_start must be before day_end")
        if not set(self.weekdays) <= set(range(7)):
            raise ValueError("weekdays must be integers 0 (Monday) to 6 (Sunday)")

    def is_working_day(self, day: date) -> bool:
        """Say whether ``day`` is a working weekday, not a bank holiday and not a closure day."""
        return (
            day.weekday() in self.weekdays
            and day not in self.closure_days
            and day not in bank_holidays(day.year)
        )

    def is_working_time(self, at: datetime) -> bool:
        """Say whether the aware instant ``at`` falls inside working hours."""
        local = to_london(at)
        return self.is_working_day(local.date()) and (self.day_start <= local.time() < self.day_end)

    def _periods(self, day: date) -> tuple[Period, ...]:
        """Return the UTC working periods of London ``day`` (empty if not a working day)."""
        if not self.is_working_day(day):
            return ()
        return _wall_periods(day, self.day_start, self.day_end)

    def _periods_from(self, at: datetime) -> Iterator[Period]:
        """Yield working periods ending after ``at``, in order, for at most ``SEARCH_DAYS``."""
        first = _london_day(at)
        for offset in range(SEARCH_DAYS):
            for period in self._periods(first + timedelta(days=offset)):
                if period[1] > at:
                    yield period
        raise ValueError("no working time within the search horizon; check the calendar")

    def next_working_start(self, at: datetime) -> datetime:
        """Return the first start of working time strictly after ``at``, in UTC."""
        instant = ensure_utc(at)
        return next(begin for begin, _ in self._periods_from(instant) if begin > instant)

    def due_at(self, now: datetime) -> datetime:
        """Return ``now`` in UTC if inside working hours, else the next working-day start."""
        instant = ensure_utc(now)
        if self.is_working_time(instant):
            return instant
        return self.next_working_start(instant)

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        """Return the UTC instant once ``minutes`` working minutes have elapsed from ``start``."""
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        instant = ensure_utc(start)
        remaining = timedelta(minutes=minutes)
        for begin, finish in self._periods_from(instant):
            begin = max(begin, instant)
            if remaining <= finish - begin:
                return begin + remaining
            remaining -= finish - begin
        raise AssertionError("unreachable: _periods_from raises when exhausted")

    def working_minutes_between(self, start: datetime, end: datetime) -> int:
        """Return the whole working minutes in ``[start, end)``; zero if ``end`` is not later."""
        lo, hi = ensure_utc(start), ensure_utc(end)
        total = timedelta()
        day, last = _london_day(lo), _london_day(hi)
        while day <= last:
            for begin, finish in self._periods(day):
                total += max(timedelta(), min(finish, hi) - max(begin, lo))
            day += timedelta(days=1)
        return total // timedelta(minutes=1)

    def end_of_working_day(self, at: datetime) -> datetime:
        """Return the end (UTC) of the working day containing ``at``, or of the next one."""
        instant = ensure_utc(at)
        if not self.is_working_time(instant):
            instant = self.next_working_start(instant)
        return self._periods(_london_day(instant))[-1][1]

    def at_local_time_next_working_day(self, at: datetime, local: time) -> datetime:
        """Return London ``local`` time on the first working day after ``at``'s day, in UTC."""
        if local.tzinfo is not None:
            raise ValueError("local must be a London wall-clock time without tzinfo")
        day = _london_day(ensure_utc(at))
        for offset in range(1, SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate) and (
                periods := _wall_periods(candidate, local, None)
            ):
                return periods[0][0]
        raise ValueError("no working day within the search horizon; check the calendar")
