"""The one place that knows what time it is, and how UTC and London relate."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are a programming error."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp with an offset (``Z`` allowed) into aware UTC, or ValueError."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    try:
        return ensure_utc(parsed)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise ValueError("timestamp out of range") from None


def isoformat(value: datetime) -> str:
    """Render an aware datetime as UTC ISO 8601 with a ``Z`` suffix."""
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def to_london(value: datetime) -> datetime:
    """Convert an aware datetime to Europe/London wall-clock time, for display and calendars."""
    try:
        return ensure_utc(value).astimezone(LONDON)
    except OverflowError:  # 0001-01-01T00:00Z is in year 0 in London: a bad value, not a crash
        raise ValueError("timestamp out of range in Europe/London") from None
