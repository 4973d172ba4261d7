"""/metrics as Prometheus scrapes it: request counts, and the backlog read from the database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from handover import create_app, crypto
from handover.db import transaction
from handover.delivery.models import ScheduledJob
from handover.records.models import Handover
from handover.timeutil import isoformat, now
from tests.conftest import Api, reference_record
from tests.ops.conftest import closed_port

TOKEN = "metrics-token-for-tests-0123456789"


def scrape(
    client: FlaskClient, **kw: object
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, keyed by name and sorted labels."""
    response = client.get("/metrics", **kw)  # type: ignore[arg-type]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def gauge(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return samples[(name, ())]


def _scalar(app: Flask, sql: str) -> int:
    with app.app_context(), transaction() as session:
        return int(session.scalar(sa.text(sql)) or 0)


def test_requests_are_counted_by_endpoint_and_status(api: Api, client: FlaskClient) -> None:
    api.post("/handovers", as_="edt_worker", json_body={"summary": "One"})
    api.post("/handovers", as_="edt_worker", json_body={"summary": "Two"})
    api.post("/handovers", as_="edt_worker", json_body={"urgency": "whenever"})
    client.get("/api/v1/handovers/does-not-exist-1")
    client.get("/no/such/path")
    samples = scrape(client)
    count = "handover_http_requests_total"
    assert samples[(count, (("endpoint", "records_api.create_handover"), ("status", "201")))] == 2
    assert samples[(count, (("endpoint", "records_api.create_handover"), ("status", "422")))] == 1
    assert samples[(count, (("endpoint", "records_api.get_handover"), ("status", "401")))] == 1
    assert samples[(count, (("endpoint", "unmatched"), ("status", "404")))] == 1
    histogram = "handover_http_request_duration_seconds_count"
    key = (histogram, (("endpoint", "records_api.create_handover"), ("status", "201")))
    assert samples[key] == 2
    assert not any("does-not-exist" in str(labels) for _, labels in samples)


def test_database_gauges_follow_a_due_handover_through_delivery(
    app: Flask, api: Api, client: FlaskClient, runner: object
) -> None:
    empty = scrape(client)
    assert gauge(empty, "handover_database_up") == 1
    assert gauge(empty, "handover_due_undelivered") == 0
    assert gauge(empty, "handover_oldest_unacknowledged_age_seconds") == 0

    hid = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()["id"]
    assert api.post(f"/handovers/{hid}/submit", as_="edt_worker").status_code == 200
    moment = now()
    with app.app_context(), transaction() as session:  # as if submitted out of hours, now due
        overdue = moment - timedelta(hours=3)
        session.execute(sa.update(Handover).where(Handover.id == hid).values(due_at=overdue))
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.handover_id == hid, ScheduledJob.kind == "transfer")
            .values(due_at=overdue)
        )
    due = scrape(client)
    assert gauge(due, "handover_due_undelivered") == 1
    assert gauge(due, "handover_audit_head_seq") == _scalar(app, "SELECT seq FROM audit_head")
    assert gauge(due, "handover_audit_head_seq") > 0

    app.config["MAIL_PORT"] = closed_port()  # mail waits in the outbox
    delivered_at = moment - timedelta(hours=2)
    result = runner.invoke(args=["scheduler", "tick", "--now", isoformat(delivered_at)])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert _scalar(app, "SELECT count(*) FROM handover WHERE status = 'delivered'") == 1
    delivered = scrape(client)
    assert gauge(delivered, "handover_due_undelivered") == 0
    assert 7200 <= gauge(delivered, "handover_oldest_unacknowledged_age_seconds") < 7200 + 600
    pending = _scalar(app, "SELECT count(*) FROM outbox_message WHERE state = 'pending'")
    assert pending >= 1  # the team's "delivered" email, waiting for the mail server
    assert gauge(delivered, "handover_outbox_pending") == pending
    assert gauge(delivered, "handover_outbox_dead") == 0
    assert gauge(delivered, "handover_audit_head_seq") == _scalar(app, "SELECT seq FROM audit_head")

    with app.app_context(), transaction() as session:  # as after its last failed attempt
        session.execute(
            sa.text(
                "UPDATE outbox_message SET state = 'dead' "
                "WHERE id = (SELECT min(id) FROM outbox_message WHERE state = 'pending')"
            )
        )
    dead = scrape(client)
    assert gauge(dead, "handover_outbox_pending") == pending - 1
    assert gauge(dead, "handover_outbox_dead") == 1


def test_gauges_report_an_unreachable_database(tmp_path: Path, keyring: crypto.Keyring) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path}/missing/handover.db",
            "KEYRING": keyring.to_json(),
        }
    )
    samples = scrape(app.test_client())
    assert gauge(samples, "handover_database_up") == 0
    assert ("handover_due_undelivered", ()) not in samples


@pytest.mark.parametrize(
    "environ, headers",
    [
        ({"REMOTE_ADDR": "10.1.2.3"}, {}),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}),
        ({"REMOTE_ADDR": "::1"}, {"Forwarded": "for=203.0.113.9"}),
    ],
)
def test_without_a_token_only_direct_loopback_callers_may_scrape(
    client: FlaskClient, environ: dict[str, str], headers: dict[str, str]
) -> None:
    response = client.get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.get_data(as_text=True)
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_with_a_token_every_scrape_must_present_it(app: Flask, client: FlaskClient) -> None:
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1]})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    right = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"}
    answer = client.get("/metrics", environ_base=remote, headers=right)
    assert "handover_database_up 1.0" in answer.get_data(as_text=True)
