"""Email notifications end to end through a real SMTP server on loopback."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from flask import Flask

from tests.conftest import Api
from tests.notifications.conftest import (
    T0,
    Mailbox,
    enqueue,
    free_port,
    outbox,
    send_due,
    submitted,
)
from tests.test_plaintext import secrets as content_strings


def test_delivered_email_names_reference_team_and_link_and_nothing_else(
    app: Flask, api: Api, smtp: Mailbox
) -> None:
    handover = submitted(app, api)
    enqueue(
        app,
        kind="delivered",
        handover_id=handover.id,
        team_code=None,
        now=T0,
        dedup_key=f"delivered:{handover.id}",
    )
    assert send_due(app, T0) == 1

    [mail] = smtp.mails
    [row] = outbox(app)
    message = mail.message
    assert mail.rcpt_tos == ["east-fst@northvale.example"]
    assert message["Subject"] == f"Handover {handover.reference} delivered to northvale-east-fst"
    assert message["Message-ID"] == f"<{row.id}@handover>" == row.idempotency_key
    assert message["From"] == app.config["MAIL_FROM"]
    body = message.get_content()
    assert f"Reference: {handover.reference}" in body
    assert f"Status: {handover.status}" in body
    assert f"http://127.0.0.1:5000/handovers/{handover.id}" in body
    text = mail.raw.decode("utf-8", errors="replace")
    leaked = [s for s in content_strings() if s in text]
    assert leaked == []
    assert row.state == "sent" and row.attempts == 1 and row.sent_at is not None


def test_recipients_and_managers_audiences(app: Flask, demo: dict[str, str], smtp: Mailbox) -> None:
    enqueue(
        app,
        kind="escalated",
        team_code="northvale-east-fst",
        now=T0,
        audience="managers",
        dedup_key="escalate:x:1",
    )
    enqueue(
        app,
        kind="escalated",
        team_code="northvale-east-fst",
        now=T0,
        recipients=["Service.Manager@Northvale.example", "service.manager@northvale.example"],
        dedup_key="escalate:x:2",
    )
    assert send_due(app, T0) == 2
    assert sorted(m.rcpt_tos[0] for m in smtp.mails) == [
        "grace.okoro@northvale.example",
        "service.manager@northvale.example",
    ]


def test_without_a_mail_server_messages_wait_and_back_off(
    app: Flask, demo: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(MAIL_PORT=free_port(), MAIL_TIMEOUT_SECONDS=2)
    enqueue(app, kind="delivered", team_code="southmoor-fst", now=T0, dedup_key="d:1")
    with caplog.at_level(logging.WARNING):
        assert send_due(app, T0) == 0
    [row] = outbox(app)
    assert row.state == "pending" and row.attempts == 1
    assert row.last_error is not None and "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at >= T0 + timedelta(seconds=30)
    assert f"outbox {row.id} (delivered by email) attempt 1 failed" in caplog.text
    assert send_due(app, row.next_attempt_at - timedelta(seconds=1)) == 0
    assert outbox(app)[0].attempts == 1


def test_the_same_message_id_on_every_retry(
    app: Flask, demo: dict[str, str], smtp: Mailbox
) -> None:
    working_port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = free_port()
    enqueue(app, kind="returned", team_code="southmoor-fst", now=T0, dedup_key="r:1")
    assert send_due(app, T0) == 0
    [row] = outbox(app)
    app.config["MAIL_PORT"] = working_port
    assert send_due(app, row.next_attempt_at) == 1
    [mail] = smtp.mails
    assert mail.message["Message-ID"] == f"<{row.id}@handover>"
    assert outbox(app)[0].attempts == 2


def test_an_alert_from_the_delivery_engine_names_the_handover_only(
    app: Flask, api: Api, smtp: Mailbox
) -> None:
    handover = submitted(app, api)
    enqueue(
        app,
        kind="alert",
        handover_id=handover.id,
        team_code="tri-borough-edt",
        now=T0,
        recipients=["marcus.bell@tri-borough.example"],
        dedup_key=f"alert:{handover.id}:unreachable-level",
    )
    assert send_due(app, T0) == 1
    [mail] = smtp.mails
    assert mail.rcpt_tos == ["marcus.bell@tri-borough.example"]
    assert mail.message["Subject"] == (
        f"Handover service alert: handover {handover.reference} needs attention (tri-borough-edt)"
    )
    assert f"http://127.0.0.1:5000/handovers/{handover.id}" in mail.message.get_content()
    assert [s for s in content_strings() if s in mail.raw.decode()] == []


def test_a_sending_pass_stops_claiming_when_its_time_is_up(
    app: Flask, demo: dict[str, str], smtp: Mailbox
) -> None:
    app.config["OUTBOX_SEND_SECONDS"] = 0  # every pass is over after its first message
    for team in ("southmoor-fst", "eastbury-fst", "northvale-mash"):
        enqueue(app, kind="delivered", team_code=team, now=T0, dedup_key=f"d:{team}")
    assert [send_due(app, T0) for _ in range(4)] == [1, 1, 1, 0]
    assert len(smtp.mails) == 3
