"""The outbox: dedup, dead letters and their one alert, racing senders and fencing."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask

from handover.db import transaction
from handover.directory.models import Team
from handover.notifications import outbox as machinery
from handover.notifications import service, webhooks
from tests.notifications.conftest import (
    T0,
    Mailbox,
    Receiver,
    enqueue,
    free_port,
    outbox,
    send_due,
)

TEAM = "northvale-east-fst"
SECRET = "whsec_test-secret-for-northvale-east"


def set_webhook(app: Flask, url: str) -> None:
    with app.app_context(), transaction() as session:
        webhooks.set_team_webhook(session, team_code=TEAM, url=url, secret=SECRET, now=T0)


def test_enqueue_twice_with_one_dedup_key_writes_each_row_once(
    app: Flask, demo: dict[str, str]
) -> None:
    set_webhook(app, f"http://127.0.0.1:{free_port()}/hook")
    for _ in range(2):
        enqueue(app, kind="delivered", team_code=TEAM, now=T0, dedup_key="delivered:h1")
    with app.app_context(), transaction() as session:
        for _ in range(2):  # and twice inside one transaction
            service.enqueue(
                session,
                kind="delivered",
                handover=None,
                team_code=TEAM,
                now=T0,
                dedup_key="delivered:h1",
            )
    rows = outbox(app)
    assert sorted((r.channel, r.target) for r in rows) == [
        ("email", "east-fst@northvale.example"),
        ("webhook", TEAM),
    ]
    enqueue(app, kind="delivered", team_code=TEAM, now=T0, dedup_key="delivered:h2")
    assert len(outbox(app)) == 4


def test_dead_after_max_attempts_with_exactly_one_alert_to_the_admins(
    app: Flask,
    demo: dict[str, str],
    smtp: Mailbox,
    make_receiver: Callable[..., Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    receiver = make_receiver(default=500)
    set_webhook(app, receiver.url)
    enqueue(app, kind="delivered", team_code=TEAM, now=T0, recipients=[], dedup_key="d:1")
    now = T0
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            send_due(app, now)
            [hook] = outbox(app, channel="webhook")
            now = max(now, hook.next_attempt_at)
    assert (hook.state, hook.attempts, hook.last_error) == ("dead", 3, "HTTP 500")
    assert f"outbox {hook.id} (delivered by webhook) dead after 3 attempts" in caplog.text
    for later in (now, now + timedelta(days=1)):
        send_due(app, later)
    assert len(receiver.requests) == 3  # a dead row is never tried again
    [alert] = outbox(app, kind="alert")
    assert (alert.channel, alert.target, alert.state) == (
        "email",
        "admin@tri-borough.example",
        "sent",
    )
    [mail] = smtp.mails
    assert mail.message["Subject"] == (
        f"Handover service alert: delivered notification to {TEAM} failed"
    )
    body = mail.message.get_content()
    assert f"Notification: {hook.id} (delivered, webhook)" in body
    assert "Attempts: 3" in body and "Last error: HTTP 500" in body


def test_an_alert_that_dies_raises_no_further_alert(
    app: Flask, demo: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(OUTBOX_MAX_ATTEMPTS=2, MAIL_PORT=free_port())  # no mail server at all
    enqueue(app, kind="withdrawn", team_code="southmoor-fst", now=T0, dedup_key="w:1")
    now = T0
    with caplog.at_level(logging.ERROR):
        for _ in range(8):
            send_due(app, now)
            now += timedelta(hours=2)
    rows = outbox(app)
    assert [(r.kind, r.state, r.attempts) for r in rows] == [
        ("withdrawn", "dead", 2),
        ("alert", "dead", 2),
    ]
    assert f"alert {rows[1].id} could not be delivered (dead); no further alert" in caplog.text


def test_nowhere_to_go_alerts_the_admins_at_once(app: Flask, demo: dict[str, str]) -> None:
    with app.app_context(), transaction() as session:
        team = session.get(Team, "eastbury-fst")
        assert team is not None
        team.email = None
        assert not service.is_reachable(session, team_code="eastbury-fst")
        assert service.is_reachable(session, team_code="eastbury-fst", audience="admins")
    enqueue(app, kind="delivered", team_code="eastbury-fst", now=T0, dedup_key="d:e")
    enqueue(app, kind="delivered", team_code="eastbury-fst", now=T0, dedup_key="d:e")
    [alert] = outbox(app)
    assert (alert.kind, alert.target) == ("alert", "admin@tri-borough.example")
    assert '"reason":"unreachable"' in alert.payload


def test_racing_senders_send_each_row_once(
    app: Flask, demo: dict[str, str], make_receiver: Callable[..., Receiver]
) -> None:
    receiver = make_receiver(delay=0.01)
    set_webhook(app, receiver.url)
    for n in range(30):
        enqueue(app, kind="delivered", team_code=TEAM, now=T0, recipients=[], dedup_key=f"d:{n}")
    counts: list[int] = []

    def sender() -> None:
        counts.append(send_due(app, T0))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert sum(counts) == 30
    assert {(r.state, r.attempts, r.fence) for r in outbox(app)} == {("sent", 1, 1)}


def test_a_stale_sender_cannot_overwrite_a_newer_outcome(app: Flask, demo: dict[str, str]) -> None:
    enqueue(app, kind="delivered", team_code=TEAM, now=T0, dedup_key="d:1")
    lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    with app.app_context():
        first = machinery.claim(now=T0)
        assert first is not None and first.fence == 1
        assert machinery.claim(now=T0 + lease - timedelta(seconds=1)) is None  # still leased
        second = machinery.claim(now=T0 + lease)  # the first sender's lease has run out
        assert second is not None and (second.id, second.fence) == (first.id, 2)
        assert machinery.record(second, error=None, now=T0 + lease) is True
        assert machinery.record(first, error="HTTP 500", now=T0 + lease) is False
    [row] = outbox(app)
    assert (row.state, row.fence, row.attempts, row.last_error) == ("sent", 2, 2, None)


def test_a_sender_that_vanished_on_the_last_attempt_leaves_a_dead_row(
    app: Flask, demo: dict[str, str]
) -> None:
    app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    enqueue(app, kind="delivered", team_code=TEAM, now=T0, dedup_key="d:1")
    lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    with app.app_context():
        assert machinery.claim(now=T0) is not None  # and then the process is killed
        claimed = machinery.claim(now=T0 + lease)
    [row, alert] = outbox(app)
    assert claimed is not None and claimed.kind == "alert"
    assert (row.state, row.attempts) == ("dead", 1)
    assert row.last_error == "the sender stopped during the last attempt"
    assert alert.kind == "alert"
