"""The start-of-day digest: once per team per working day, counts and references only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from handover.db import transaction
from handover.notifications import service
from handover.records.models import Handover
from tests.conftest import Api
from tests.notifications.conftest import Mailbox, outbox, send_due, submitted
from tests.test_plaintext import secrets as content_strings

MONDAY_MORNING = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TUESDAY_START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # December: London is UTC


def digests(app: Flask, now: datetime) -> int:
    with app.app_context(), transaction() as session:
        return service.send_digests(session, now=now)


def deliver(app: Flask, handover_id: str, *, at: datetime, ack_due_at: datetime) -> None:
    """Stand in for the transfer: mark a handover delivered to its team."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        handover.status, handover.due_at, handover.delivered_at = "delivered", at, at
        handover.ack_due_at = ack_due_at


def test_one_digest_per_team_per_working_day(app: Flask, demo: dict[str, str]) -> None:
    assert digests(app, TUESDAY_START - timedelta(minutes=31)) == 0  # 08:29: nobody has started
    assert digests(app, TUESDAY_START - timedelta(minutes=15)) == 1  # the MASH starts at 08:30
    assert digests(app, TUESDAY_START + timedelta(seconds=30)) == 3  # the other three day teams
    assert digests(app, TUESDAY_START + timedelta(hours=7)) == 0  # same day: already sent
    assert digests(app, TUESDAY_START + timedelta(hours=9)) == 0  # 18:00: after hours
    assert digests(app, datetime(2026, 12, 5, 10, 0, tzinfo=UTC)) == 0  # Saturday
    assert digests(app, TUESDAY_START + timedelta(days=1)) == 4  # Wednesday
    rows = outbox(app, kind="digest")
    assert len(rows) == 8 and {r.channel for r in rows} == {"email"}
    east = [r.target for r in rows if r.team_code == "northvale-east-fst"]
    assert east == ["east-fst@northvale.example"] * 2


def test_digest_lists_overnight_arrivals_and_overdue_by_reference_and_link(
    app: Flask, api: Api, smtp: Mailbox
) -> None:
    arrived, overdue, old = (submitted(app, api) for _ in range(3))
    deliver(app, arrived.id, at=TUESDAY_START, ack_due_at=TUESDAY_START + timedelta(minutes=30))
    deliver(app, overdue.id, at=MONDAY_MORNING, ack_due_at=MONDAY_MORNING + timedelta(minutes=30))
    deliver(app, old.id, at=MONDAY_MORNING, ack_due_at=MONDAY_MORNING + timedelta(days=3))
    now = TUESDAY_START + timedelta(seconds=30)
    assert digests(app, now) == 4
    assert send_due(app, now) == 4
    [mail] = [m for m in smtp.mails if m.rcpt_tos == ["east-fst@northvale.example"]]
    assert mail.message["Subject"] == (
        "Handover start-of-day digest for northvale-east-fst, 2026-12-01: 1 arrived, 1 overdue"
    )
    body = mail.message.get_content()
    arrived_part, overdue_part = body.split("Overdue: ")
    link = "http://127.0.0.1:5000/handovers/"
    assert "Arrived overnight: 1" in arrived_part
    assert f"{arrived.reference}  {link}{arrived.id}" in arrived_part
    assert (
        overdue_part.splitlines()[0] == "1"
        and f"{overdue.reference}  {link}{overdue.id}" in overdue_part
    )
    assert old.reference not in body
    assert "http://127.0.0.1:5000/teams/northvale-east-fst/inbox" in body
    text = mail.raw.decode("utf-8", errors="replace")
    assert [s for s in content_strings() if s in text] == []
    quiet = [m for m in smtp.mails if m.rcpt_tos == ["fst@southmoor.example"]]
    assert "Arrived overnight: 0" in quiet[0].message.get_content()
