"""Arranging the reports' world: handovers delivered, acknowledged and escalated at chosen instants.

Time is an argument throughout: drafts are created and submitted through the records service,
delivered by ``transfer.deliver_due`` at the instant a test names (or by a real tick), and
acknowledged through the delivery service, so every report figure follows from known times.
"""

from __future__ import annotations

import html
import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from handover import scheduler, timeutil
from handover.auth import sessions
from handover.db import transaction
from handover.delivery import service as delivery
from handover.delivery import transfer
from handover.directory import service as directory
from handover.directory.models import User
from handover.records import service as records
from handover.records.models import Handover
from tests.conftest import DEMO_USERS, reference_record

# A Monday in November 2026, 10:00 London (GMT): inside every demo team's working hours.
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TEAM = "northvale-east-fst"
READ_BACK = "Four children and an unexplained injury to the baby; police are investigating."
ACTIONS = ("a1", "a2", "a3", "a4", "a5", "a6")


def quiet_mail(app: Flask) -> None:
    """Point mail at a closed loopback port: sending fails fast and rows stay in the outbox."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.config.update(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT_SECONDS=2)


def person(session: Session, role: str) -> User:
    """The demo user of ``role`` (a key of DEMO_USERS)."""
    user = directory.get_user_by_email(session, DEMO_USERS[role])
    assert user is not None
    return user


def record_for(team: str = TEAM, urgency: str = "immediate") -> dict[str, Any]:
    """The reference record for ``team`` at ``urgency``, dates moved to fit any 2026 day."""
    record = reference_record()
    record["allocated_team"], record["urgency"] = team, urgency
    record["local_authority"] = team.split("-")[0]
    baby = record["children"][0]
    baby["date_of_birth"], baby["date_of_death"] = "2025-07-24", "2025-11-28"
    return record


def submitted(app: Flask, *, at: datetime, team: str = TEAM, urgency: str = "immediate") -> str:
    """A handover created and submitted at ``at`` by the demo EDT worker; returns its id."""
    with app.app_context(), transaction() as session:
        author = person(session, "edt_worker")
        handover = records.create(session, user=author, payload=record_for(team, urgency), now=at)
        records.submit(session, user=author, handover=handover, now=at)
        return handover.id


def delivered(app: Flask, *, at: datetime, team: str = TEAM, urgency: str = "immediate") -> str:
    """A handover delivered to ``team`` at exactly ``at`` (whatever the team's hours)."""
    handover_id = submitted(app, at=at - timedelta(minutes=5), team=team, urgency=urgency)
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        transfer.deliver_due(session, handover=handover, now=at)
    return handover_id


def acknowledge(app: Flask, handover_id: str, *, at: datetime, role: str = "social_worker") -> None:
    """The day team's read-back at ``at``, accepting every action."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        delivery.acknowledge(
            session,
            user=person(session, role),
            handover=handover,
            synthesis=READ_BACK,
            responses=[{"ref": ref, "response": "accepted"} for ref in ACTIONS],
            now=at,
        )


def return_(app: Flask, handover_id: str, *, at: datetime) -> None:
    """The day team returns the handover as not theirs at ``at``."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        delivery.return_(
            session,
            user=person(session, "social_worker"),
            handover=handover,
            reason="Not our area.",
            suggested_team=None,
            now=at,
        )


def tick(app: Flask, at: datetime) -> scheduler.scheduled.TickCounts:
    """One scheduler tick as of ``at``: due transfers and escalations run."""
    with app.app_context():
        return scheduler.tick(now=at)


def handover_row(app: Flask, handover_id: str) -> Handover:
    """The handover as stored now."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        return handover


def sign_in(app: Flask, client: FlaskClient, role: str) -> str:
    """Give ``client`` a signed-in browser session as the demo ``role``; returns its CSRF token.

    The session row is made as the sign-in page makes it (hashing a password for every test would
    only slow them down: the sign-in form has its own tests).
    """
    with app.app_context(), transaction() as session:
        _row, raw = sessions.start(
            session,
            user=person(session, role),
            now=timeutil.now(),
            method="password",
            second_factor_passed=True,
        )
    secure = sessions.load_settings(app).secure
    client.set_cookie(sessions.cookie_name(sessions.SESSION_COOKIE, secure), raw)
    return sessions.derive(raw, "csrf")


def page_text(response: Any) -> str:
    """The page as a reader sees its text: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body)).strip()


def working_morning(app: Flask, team: str = TEAM) -> datetime:
    """10:00 (an hour after the start) on a recent working day of ``team``, in the past.

    Pages compute with the real clock, so what they show is arranged relative to it.
    """
    with app.app_context(), transaction() as session:
        found = directory.get_team(session, team)
        assert found is not None
        calendar = directory.calendar_for(found)
    return calendar.next_working_start(timeutil.now() - timedelta(days=7)) + timedelta(hours=1)


def table_rows(response: Any, table_id: str) -> list[list[str]]:
    """The body rows of the table with ``table_id``: each cell's text."""
    page = response.get_data(as_text=True)
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, flags=re.S)
    assert match, f"no table #{table_id}"
    body = match.group(0).split("<tbody", 1)[1]
    # On a phone a stacked table's cells say what they are; a desktop reader sees the headers.
    body = re.sub(r'<span class="app-stack-table__label">.*?</span>', "", body, flags=re.S)
    rows = re.findall(r"<tr\b.*?</tr>", body, flags=re.S)
    cells = [re.findall(r"<t[hd]\b[^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows]
    return [[_text(cell) for cell in row] for row in cells]


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def error_summary(response: Any) -> dict[str, str]:
    """The error summary's links: the element each points at, and its message."""
    page = response.get_data(as_text=True)
    match = re.search(r'class="[^"]*govuk-error-summary__list[^"]*">(.*?)</ul>', page, flags=re.S)
    if match is None:
        return {}
    links = re.findall(r'<a href="#([^"]+)">(.*?)</a>', match.group(1), flags=re.S)
    return {target: _text(message) for target, message in links}


def field_value(response: Any, element_id: str) -> str:
    """The value an input shows (what was typed, kept after a refusal)."""
    page = response.get_data(as_text=True)
    match = re.search(rf'<input[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert match, f"no input #{element_id}"
    value = re.search(r'\bvalue="([^"]*)"', match.group(0))
    return html.unescape(value.group(1)) if value else ""


def checked(response: Any, name: str) -> list[str]:
    """The values of the checked boxes (or radios) named ``name``."""
    page = response.get_data(as_text=True)
    tags = re.findall(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    return [re.search(r'value="([^"]*)"', tag).group(1) for tag in tags if " checked" in tag]  # type: ignore[union-attr]
