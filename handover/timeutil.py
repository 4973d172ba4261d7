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
    """Parse an ISO 8601 timestamp with an offset (``Z`` allowed) into aware UTC."""
    return ensure_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def isoformat(value: datetime) -> str:
    """Render an aware datetime as UTC ISO 8601 with a ``Z`` suffix."""
    return ensure_utc(value).isoformat().replace("+00:00", "Z")


def to_london(value: datetime) -> datetime:
    """Convert an aware datetime to Europe/London wall-clock time, for display and calendars."""
    return ensure_utc(value).astimezone(LONDON)
