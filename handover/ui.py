"""The web interface's shared parts: Jinja set-up, the menu, tags, London dates and error pages.

Every HTML page extends ``templates/base.html``, which reads what this module registers:
``navigation()`` (the service navigation for the signed-in user's role), ``tag(kind, value)``
(the text and colour of an urgency or status tag), ``field_error(errors, name)`` and
``error_list(errors)`` (GOV.UK error messages from a view's ``errors`` dict), and the filters
``london`` (an aware datetime or ISO string shown in Europe/London) and ``isoformat``. The
GOV.UK Frontend Jinja macros load as ``govuk_frontend_jinja/components/<name>/macro.html``.
templates/README.md is the guide for page authors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from jinja2 import BaseLoader, ChoiceLoader, PackageLoader, PrefixLoader
from werkzeug.exceptions import HTTPException

from handover import errors
from handover.timeutil import isoformat, to_london

logger = logging.getLogger(__name__)

EDT = frozenset({"edt_worker", "edt_manager"})
DAY_TEAM = frozenset({"social_worker", "team_manager"})
MANAGERS = frozenset({"edt_manager", "team_manager"})


@dataclass(frozen=True)
class NavItem:
    """One link of the service navigation, shown to the roles named."""

    text: str
    endpoint: str
    roles: frozenset[str]


# The service navigation, in order. Each area adds its links here; a link whose endpoint is not
# registered (its blueprint not built yet) is left out, so the menu never points at a 404.
NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Handovers", "editor.home", EDT),
    NavItem("Inbox", "delivery_ui.inbox", DAY_TEAM),
    NavItem("Handovers", "records_ui.police_list", frozenset({"police_officer"})),
    NavItem("Needing attention", "reports.overview", MANAGERS),
    NavItem("Timeliness", "reports.timeliness", MANAGERS | {"admin"}),
    NavItem("Directory", "directory_ui.home", frozenset({"admin"})),
)

# (text, GOV.UK tag colour class) for each value a page shows as a tag.
TAGS: dict[str, dict[str, tuple[str, str]]] = {
    "urgency": {
        "immediate": ("Immediate", "govuk-tag--red"),
        "priority": ("Priority", "govuk-tag--orange"),
        "routine": ("Routine", "govuk-tag--grey"),
    },
    "status": {
        "draft": ("Draft", "govuk-tag--grey"),
        "scheduled": ("Scheduled", "govuk-tag--blue"),
        "delivered": ("Delivered", "govuk-tag--purple"),
        "acknowledged": ("Acknowledged", "govuk-tag--green"),
        "returned": ("Returned", "govuk-tag--orange"),
        "closed": ("Closed", "govuk-tag--teal"),
        "withdrawn": ("Withdrawn", "govuk-tag--grey"),
        "overdue": ("Overdue", "govuk-tag--red"),
    },
}

# The HTML error pages: (title, what to do). API paths keep the JSON envelope.
ERROR_PAGES: dict[int, tuple[str, str]] = {
    400: ("There is a problem with this request", "Go back, reload the page and try again."),
    403: (
        "You cannot do this",
        "Your role does not allow it. If you think it should, ask your administrator.",
    ),
    404: (
        "Page not found",
        "If you typed the web address, check it is correct. "
        "If you followed a link, the page may have moved or you may not have access to it.",
    ),
    405: ("There is a problem with this request", "Go back, reload the page and try again."),
    413: ("What you sent is too large", "Go back and send less at a time."),
    500: (
        "Sorry, there is a problem with the service",
        "Nothing you sent has been lost if it was saved before this page. Try again later.",
    ),
}


def navigation() -> list[dict[str, Any]]:
    """The signed-in user's menu, as govukServiceNavigation items; empty when signed out."""
    from flask import url_for

    from handover.auth import sessions

    user = sessions.signed_in_user()
    if user is None:
        return []
    shown = [
        item
        for item in NAVIGATION
        if user.role in item.roles and item.endpoint in current_app.view_functions
    ]
    # One item is marked: the page's own, else the item of the page's area (a record, a form).
    on_item = any(request.endpoint == item.endpoint for item in shown)
    return [
        {
            "text": item.text,
            "href": url_for(item.endpoint),
            "current": request.endpoint == item.endpoint,
            "active": request.endpoint == item.endpoint
            if on_item
            else request.blueprint == item.endpoint.partition(".")[0],
        }
        for item in shown
    ]


def signed_in_as() -> str | None:
    """Who is signed in, shown on every page so a shared computer is never used as someone else."""
    from handover.auth import sessions
    from handover.auth.views import ROLE_LABELS

    user = sessions.signed_in_user()
    if user is None:
        return None
    return f"Signed in as {user.name} ({ROLE_LABELS.get(user.role, user.role)}, {user.team.name})"


def tag(kind: str, value: str | None) -> dict[str, str]:
    """A govukTag's parameters for an urgency or status; an unknown value shows as plain text."""
    text, classes = TAGS.get(kind, {}).get(value or "", ("", ""))
    if not text:
        text = (value or "Not set").replace("_", " ").capitalize()
    return {"text": text, "classes": classes}


def field_error(errors: Any, name: str) -> dict[str, str] | None:
    """The ``errorMessage`` parameter of a GOV.UK form macro for field ``name``, or None."""
    message = errors.get(name) if isinstance(errors, dict) else None
    return {"text": message} if message else None


def error_list(errors: Any) -> list[dict[str, str]]:
    """The error summary's items: each message links to the element whose id is its key."""
    if not isinstance(errors, dict):
        return []
    return [{"text": message, "href": f"#{name}"} for name, message in errors.items()]


def _time_of_day(moment: datetime) -> str:
    """GOV.UK style: 9am, 2:10pm, midday, midnight."""
    if moment.minute == 0 and moment.hour in (0, 12):
        return "midnight" if moment.hour == 0 else "midday"
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}{'am' if moment.hour < 12 else 'pm'}"


def london(value: datetime | date | str | None, style: str = "datetime") -> str:
    """Show a time in Europe/London: ``datetime`` (28 November 2026 at 2:10am), ``date``,
    ``time`` or ``short`` (Sat 28 Nov, 2:10am). Dates alone show as dates; None as ""."""
    if value is None or value == "":
        return ""
    value = _parse(value)
    if not isinstance(value, datetime):
        return f"{value.day} {value:%B %Y}"
    local = to_london(value)  # refuses a naive datetime: a time without a zone is a bug
    day = f"{local.day} {local:%B %Y}"
    if style == "date":
        return day
    if style == "time":
        return _time_of_day(local)
    if style == "short":
        return f"{local:%a} {local.day} {local:%b}, {_time_of_day(local)}"
    return f"{day} at {_time_of_day(local)}"


def _parse(value: datetime | date | str) -> datetime | date:
    """An ISO 8601 string (as the API's dumps hold them) as a datetime, or a date if it is one."""
    if not isinstance(value, str):
        return value
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


def _iso(value: datetime | date | str) -> str:
    """A moment as UTC ISO 8601 (a date as YYYY-MM-DD), for ``<time datetime>``."""
    parsed = _parse(value)
    return isoformat(parsed) if isinstance(parsed, datetime) else parsed.isoformat()


def error_page(error: HTTPException) -> ResponseReturnValue:
    """A GOV.UK error page for a browser; the JSON envelope under /api as errors.py gives it."""
    status = error.code or 500
    if request.path.startswith("/api/"):
        code = (error.name or "error").lower().replace(" ", "_")
        return errors.envelope(status, code, error.description or error.name)
    from handover.ops.logging import request_id

    title, advice = ERROR_PAGES.get(status, ERROR_PAGES[400 if status < 500 else 500])
    page = render_template(
        "error.html", title=title, advice=advice, status=status, reference=request_id()
    )
    return page, status


def _loader(app: Flask) -> BaseLoader:
    """Our templates first, then GOV.UK Frontend's macros under ``govuk_frontend_jinja/``."""
    own = app.jinja_loader
    govuk = PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})
    return ChoiceLoader([own, govuk] if own is not None else [govuk])


def init_app(app: Flask) -> None:
    """Set up Jinja for the pages, register the helpers and the HTML error pages."""
    app.jinja_loader = _loader(app)
    app.jinja_env.filters.update(london=london, isoformat=_iso)
    app.jinja_env.globals.update(
        navigation=navigation,
        signed_in_as=signed_in_as,
        tag=tag,
        field_error=field_error,
        error_list=error_list,
    )
    for status in ERROR_PAGES:
        app.register_error_handler(status, error_page)
    if not (Path(app.static_folder or "") / "app.css").is_file():
        logger.warning("handover/static has no app.css: run `make assets` to style the pages")
