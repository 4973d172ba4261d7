"""Webhooks: signed POSTs to a real receiver on loopback, retries, and their settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from handover import crypto
from handover.db import transaction
from handover.directory import service as directory
from handover.errors import ValidationFailed
from handover.notifications import webhooks
from handover.notifications.models import TeamWebhook
from tests.conftest import Api
from tests.notifications.conftest import (
    T0,
    Mailbox,
    Receiver,
    enqueue,
    free_port,
    outbox,
    send_due,
    submitted,
)
from tests.test_plaintext import secrets as content_strings

TEAM = "northvale-east-fst"
SECRET = "whsec_test-secret-for-northvale-east"


def set_webhook(app: Flask, url: str, *, team: str = TEAM, secret: str = SECRET) -> None:
    with app.app_context(), transaction() as session:
        webhooks.set_team_webhook(session, team_code=team, url=url, secret=secret, now=T0)


def verified(request: Any, secret: str = SECRET) -> dict[str, Any]:
    """The body of a request whose signature verifies, as a receiver would check it."""
    header = request.headers["webhook-signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert webhooks.verify(secret, request.body, header, now=timestamp + 10)
    body: dict[str, Any] = json.loads(request.body)
    return body


def test_webhook_is_signed_and_carries_no_content(
    app: Flask, api: Api, smtp: Mailbox, make_receiver: Callable[..., Receiver]
) -> None:
    receiver = make_receiver()
    set_webhook(app, receiver.url)
    handover = submitted(app, api)
    enqueue(
        app,
        kind="delivered",
        handover_id=handover.id,
        team_code=None,
        now=T0,
        dedup_key=f"delivered:{handover.id}",
    )
    assert send_due(app, T0) == 2  # the team's email and its webhook
    [request] = receiver.requests
    [row] = outbox(app, channel="webhook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == row.id == row.idempotency_key
    assert verified(request) == {
        "id": row.id,
        "type": "delivered",
        "reference": handover.reference,
        "team": TEAM,
        "status": handover.status,
        "link": f"http://127.0.0.1:5000/handovers/{handover.id}",
        "occurred_at": "2026-12-01T10:00:00Z",
    }
    assert not webhooks.verify(
        "whsec_some-other-secret-entirely",
        request.body,
        request.headers["webhook-signature"],
        now=int(T0.timestamp()),
    )
    text = request.body.decode() + json.dumps(request.headers)
    assert [s for s in content_strings() if s in text] == []
    assert len(smtp.mails) == 1


def test_signature_verification_refuses_tampering_and_replays() -> None:
    body = b'{"id":"1"}'
    header = webhooks.signature(SECRET, body, 1_800_000_000)
    assert webhooks.verify(SECRET, body, header, now=1_800_000_000)
    assert not webhooks.verify(SECRET, b'{"id":"2"}', header, now=1_800_000_000)
    assert not webhooks.verify(SECRET, body, header, now=1_800_000_000 + 301)
    assert not webhooks.verify(SECRET, body, "v1=deadbeef", now=1_800_000_000)


def test_failing_then_timing_out_receiver_gets_it_with_one_id_and_growing_backoff(
    app: Flask, demo: dict[str, str], make_receiver: Callable[..., Receiver]
) -> None:
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 1
    receiver = make_receiver([500, 500, 500, "timeout"], sleep=1.5)
    set_webhook(app, receiver.url)
    enqueue(app, kind="delivered", team_code=TEAM, now=T0, recipients=[], dedup_key="d:1")
    now, waits, errors = T0, [], []
    for attempt in range(1, 5):
        assert send_due(app, now) == 0
        [row] = outbox(app)
        assert (row.state, row.attempts) == ("pending", attempt)
        errors.append(row.last_error)
        waits.append((row.next_attempt_at - now).total_seconds())
        assert send_due(app, row.next_attempt_at - timedelta(seconds=1)) == 0  # not yet due
        assert len(receiver.requests) == attempt
        now = row.next_attempt_at
    assert send_due(app, now) == 1
    [row] = outbox(app)
    assert (row.state, row.attempts, row.last_error) == ("sent", 5, None)
    assert errors == ["HTTP 500"] * 3 + ["no answer within 1 s"]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {row.id}
    assert all(verified(r)["id"] == row.id for r in receiver.requests)
    assert waits == sorted(waits) and len(set(waits)) == 4
    for attempt, wait in enumerate(waits, start=1):
        full = 60 * 2 ** (attempt - 1)  # OUTBOX_BACKOFF_SECONDS doubling; half of it is jitter
        assert full / 2 <= wait <= full + 5


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"webhook_url": "ftp://127.0.0.1/hook", "webhook_secret": SECRET}, "webhook_url"),
        ({"webhook_url": "http://user:pw@127.0.0.1/h", "webhook_secret": SECRET}, "webhook_url"),
        ({"webhook_url": "not a url", "webhook_secret": SECRET}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_secret"),
        ({"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "short"}, "webhook_secret"),
    ],
)
def test_directory_file_refuses_bad_webhooks_naming_the_field(
    app: Flask, demo: dict[str, str], entry: dict[str, str], field: str
) -> None:
    data = {
        "teams": [
            {
                "code": "southmoor-fst",
                "kind": "social_work",
                "local_authority": "southmoor",
                **entry,
            }
        ]
    }
    with pytest.raises(ValidationFailed) as raised:
        with app.app_context(), transaction() as session:
            directory.load_directory(session, data, now=T0)
    assert list(raised.value.fields) == [f"teams.0.{field}"]
    assert f"teams.0.{field}" in str(raised.value)
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, "southmoor-fst") is None


def test_directory_file_sets_and_removes_a_webhook_with_the_secret_encrypted(
    app: Flask, demo: dict[str, str]
) -> None:
    team = {"code": "southmoor-fst", "kind": "social_work", "local_authority": "southmoor"}
    url = "https://127.0.0.1:8443/hooks/handover"
    with app.app_context(), transaction() as session:
        directory.load_directory(
            session, {"teams": [dict(team, webhook_url=url, webhook_secret=SECRET)]}, now=T0
        )
    with app.app_context(), transaction() as session:
        row = session.get(TeamWebhook, "southmoor-fst")
        assert row is not None and row.url == url
        assert SECRET.encode() not in row.secret and b"northvale" not in row.secret
        assert webhooks.open_secret(row) == SECRET
        directory.load_directory(session, {"teams": [team]}, now=T0)  # no mention: kept
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, "southmoor-fst") is not None
        directory.load_directory(session, {"teams": [dict(team, webhook_url="")]}, now=T0)
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, "southmoor-fst") is None


def test_cli_sets_a_webhook_and_prints_its_secret_once(
    app: Flask, demo: dict[str, str], runner: Any
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/handover"
    result = runner.invoke(args=["teams", "webhook", TEAM, url])
    assert result.exit_code == 0, result.output
    printed = result.output.split("signing secret")[1].split(": ", 1)[1].strip()
    assert printed.startswith("whsec_") and len(printed) > 40
    with app.app_context(), transaction() as session:
        row = session.get(TeamWebhook, TEAM)
        assert row is not None and row.url == url
        assert webhooks.open_secret(row) == printed
    again = runner.invoke(args=["teams", "webhook", TEAM, url])
    assert printed not in again.output  # a new secret each time
    bad = runner.invoke(args=["teams", "webhook", TEAM, "gopher://127.0.0.1/x"])
    assert bad.exit_code == 1 and "webhook_url: Must be an http:// or https:// URL" in bad.output
    unknown = runner.invoke(args=["teams", "webhook", "no-such-team", url])
    assert unknown.exit_code == 1 and "No team 'no-such-team'" in unknown.output
    removed = runner.invoke(args=["teams", "webhook", TEAM, "--remove"])
    assert removed.exit_code == 0 and "removed" in removed.output
    with app.app_context(), transaction() as session:
        assert session.get(TeamWebhook, TEAM) is None


def test_webhook_secrets_rewrap_under_a_new_kek(app: Flask, demo: dict[str, str]) -> None:
    with app.app_context(), transaction() as session:
        webhooks.set_team_webhook(
            session, team_code=TEAM, url="http://127.0.0.1:9/h", secret=SECRET, now=T0
        )
        old = crypto.current_keyring()
        rotated, new_id = old.with_new_kek()
        crypto.set_keyring(app, rotated)
        assert webhooks.key_status(session) == {old.active_kek_id: 1}
        assert webhooks.rewrap_secrets(session, keyring=rotated) == 1
        assert webhooks.rewrap_secrets(session, keyring=rotated) == 0
        assert webhooks.key_status(session) == {new_id: 1}
        crypto.set_keyring(app, rotated.without_kek(old.active_kek_id))
        row = session.get(TeamWebhook, TEAM)
        assert row is not None and webhooks.open_secret(row) == SECRET
