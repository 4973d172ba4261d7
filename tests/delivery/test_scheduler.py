"""Ticking: in-process, `scheduler run` and several `scheduler tick` processes at once; bad jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from handover import audit, create_app, crypto
from handover.audit import AuditEvent
from handover.db import transaction
from handover.delivery import scheduled
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.records.models import Handover
from handover.timeutil import isoformat
from handover.timeutil import now as real_now
from tests.conftest import Api
from tests.delivery.conftest import (
    MONDAY_10,
    create,
    event_kinds,
    handover_row,
    jobs,
    outbox,
    record_for,
    submit_at,
    tick,
)

FLASK = str(Path(sys.executable).with_name("flask"))
WAIT_SECONDS = 60


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds; fail after WAIT_SECONDS (a hang, not a slow run)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def due_in_the_past(app: Flask, api: Api) -> str:
    """A handover submitted in working hours a week ago: due by the real clock, not delivered."""
    with app.app_context(), transaction() as session:
        team = directory.get_team(session, "southmoor-fst")
        assert team is not None
        at = directory.calendar_for(team).next_working_start(real_now() - timedelta(days=8))
    handover_id = create(api, record_for("southmoor-fst"))
    submit_at(app, handover_id, at)
    return handover_id


@pytest.fixture
def process_env(app: Flask, database_url: str, keyring: crypto.Keyring) -> dict[str, str]:
    """The environment a separate `flask --app handover` process needs for this test's database."""
    return {
        **os.environ,
        "HANDOVER_DATABASE_URL": database_url,
        "HANDOVER_KEYRING": keyring.to_json(),
        "HANDOVER_INSTANCE_PATH": app.instance_path,
        "HANDOVER_MAIL_PORT": str(app.config["MAIL_PORT"]),
        "HANDOVER_MAIL_TIMEOUT_SECONDS": "2",
    }


def test_tests_and_commands_do_not_tick_unless_asked(app: Flask) -> None:
    assert "handover.scheduler" not in app.extensions


@pytest.fixture
def ticking_app(database_url: str, tmp_path: Path, keyring: crypto.Keyring) -> Iterator[Flask]:
    """A second app on the test's database that ticks in-process every 0.2 s."""
    ticking = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "TESTING": True,
            "SCHEDULER_IN_PROCESS": True,
            "SCHEDULER_INTERVAL_SECONDS": 0.2,
            "MAIL_PORT": 9,
            "MAIL_TIMEOUT_SECONDS": 2,
        }
    )
    yield ticking
    ticking.extensions["handover.scheduler"].shutdown(wait=True)
    ticking.extensions["handover.engine"].dispose()


def test_the_app_ticks_in_process_when_configured(app: Flask, api: Api, ticking_app: Flask) -> None:
    job = ticking_app.extensions["handover.scheduler"].get_job("handover-tick")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    assert job.trigger.interval == timedelta(seconds=0.2)
    handover_id = due_in_the_past(app, api)
    wait_until(lambda: handover_row(app, handover_id).status == "delivered")
    assert event_kinds(app, handover_id).count("delivered") == 1


def test_scheduler_run_ticks_until_stopped(
    app: Flask, api: Api, process_env: dict[str, str]
) -> None:
    handover_id = due_in_the_past(app, api)
    process = subprocess.Popen(
        [FLASK, "--app", "handover", "scheduler", "run", "--interval", "0.2"],
        env=process_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: handover_row(app, handover_id).status == "delivered")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=WAIT_SECONDS)
    assert "ticking every 0.2 s" in output
    assert event_kinds(app, handover_id).count("delivered") == 1


def test_many_processes_ticking_at_once_deliver_each_handover_once(
    app: Flask, api: Api, process_env: dict[str, str]
) -> None:
    ids = [create(api, record_for("southmoor-fst")) for _ in range(12)]
    for handover_id in ids:
        submit_at(app, handover_id, MONDAY_10)
    command = [FLASK, "--app", "handover", "scheduler", "tick", "--now", isoformat(MONDAY_10)]
    env = {**process_env, "HANDOVER_SCHEDULER_BATCH_SIZE": "3"}
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=WAIT_SECONDS)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    reported = sum(_counts(out)["delivered"] for out in outputs)
    assert reported == len(ids)
    for handover_id in ids:
        assert event_kinds(app, handover_id).count("delivered") == 1
        assert jobs(app, handover_id)["transfer:<id>"] == "done"
        notices = [k for k, _, _ in outbox(app, handover_id) if k == "delivered"]
        assert notices == ["delivered"]


def test_a_failing_job_is_retried_with_backoff_without_holding_up_the_rest(
    app: Flask, api: Api
) -> None:
    broken, fine = (
        create(api, record_for("southmoor-fst")),
        create(api, record_for("southmoor-fst")),
    )
    for handover_id in (broken, fine):
        submit_at(app, handover_id, MONDAY_10)
    with app.app_context(), transaction() as session:  # unreadable: its warnings cannot be sealed
        session.execute(sa.update(Handover).where(Handover.id == broken).values(wrapped_dek=None))

    counts = tick(app, MONDAY_10)
    assert (counts.delivered, counts.failed) == (1, 1)
    assert handover_row(app, fine).status == "delivered"
    assert handover_row(app, broken).status == "scheduled"
    assert event_kinds(app, broken) == ["created", "submitted"]  # rolled back whole
    assert tick(app, MONDAY_10 + timedelta(seconds=59)).claimed == 0  # backing off

    at = MONDAY_10
    for attempt in range(2, scheduled.MAX_ATTEMPTS + 1):
        at += min(scheduled.BACKOFF * 2 ** (attempt - 2), scheduled.MAX_BACKOFF)
        assert tick(app, at).failed == 1, attempt
    job = _transfer_job(app, broken)
    assert (job.state, job.attempts, job.last_error) == ("failed", 8, "CryptoError")
    assert {target for kind, _, target in outbox(app, broken) if kind == "alert"} == {
        "admin@tri-borough.example",
        "marcus.bell@tri-borough.example",
    }
    assert tick(app, at + timedelta(days=1)).claimed == 0


def _counts(output: str) -> dict[str, int]:
    """The counts of the `tick at …:` line a tick prints."""
    line = next(line for line in output.splitlines() if line.startswith("tick at "))
    pairs = (item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split(", "))
    return {name: int(value) for name, value in pairs}


def _transfer_job(app: Flask, handover_id: str) -> ScheduledJob:
    with app.app_context(), transaction() as session:
        return session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.handover_id == handover_id, ScheduledJob.kind == "transfer"
            )
        ).one()


def test_tick_reports_what_it_did(app: Flask, api: Api) -> None:
    handover_id = create(api, record_for())
    submit_at(app, handover_id, MONDAY_10)
    result = app.test_cli_runner().invoke(
        args=["scheduler", "tick", "--now", "2026-11-30T10:00:00+00:00"]
    )
    assert result.exit_code == 0
    assert "tick at 2026-11-30T10:00:00Z: claimed 1, delivered 1," in result.output
    assert _counts(result.output)["delivered"] == 1
    assert handover_row(app, handover_id).delivered_at == datetime.fromisoformat(
        "2026-11-30T10:00:00+00:00"
    )


def test_one_batch_of_mixed_work_ends_each_handover_as_if_it_were_alone(
    app: Flask, api: Api
) -> None:
    escalating = create(api, record_for("northvale-east-fst"))
    submit_at(app, escalating, MONDAY_10)
    assert tick(app, MONDAY_10).delivered == 1
    unreachable, plain = create(api, record_for("southmoor-fst")), create(api, record_for())
    at = MONDAY_10 + timedelta(hours=1)  # both levels of the first are due, and both transfers
    for handover_id in (unreachable, plain):
        assert submit_at(app, handover_id, at) == at

    counts = tick(app, at)
    assert (counts.claimed, counts.delivered, counts.escalated, counts.failed) == (4, 2, 2, 0)
    assert event_kinds(app, escalating)[-3:] == ["delivered", "escalated", "escalated"]
    assert handover_row(app, escalating).escalation_level == 2
    assert event_kinds(app, plain)[-1] == "delivered"
    assert event_kinds(app, unreachable)[-3:] == [
        "delivered",
        "escalation_unreachable",
        "escalation_unreachable",
    ]
    events = api.get(f"/handovers/{unreachable}/events", as_="edt_manager").get_json()["events"]
    assert [e["detail"] for e in events if e["kind"] == "escalation_unreachable"] == [
        "Escalation level 1 (team_manager) has nobody to notify at southmoor-fst.",
        "Escalation level 2 (service_manager) has nobody to notify at southmoor-fst.",
    ]
    escalated = api.get(f"/handovers/{escalating}/events", as_="edt_manager").get_json()["events"]
    assert [e["detail"] for e in escalated if e["kind"] == "escalated"] == [
        "Level 1: not acknowledged by 2026-11-30T10:30:00Z; notifying team_manager.",
        "Level 2: not acknowledged by 2026-11-30T10:30:00Z; notifying service_manager.",
    ]
    for handover_id in (unreachable, plain):
        assert jobs(app, handover_id) == {
            "transfer:<id>": "done",
            "escalate:<id>:1": "pending",
            "escalate:<id>:2": "pending",
        }
    assert [k for k, _, _ in outbox(app, plain)] == ["delivered"]
    with app.app_context(), transaction() as session:
        audited = session.execute(
            sa.select(AuditEvent.object_id, AuditEvent.action).where(
                AuditEvent.action.in_(["handover.delivered", "handover.escalated"])
            )
        ).all()
        assert sorted(audited) == sorted(
            [(escalating, "handover.delivered"), (escalating, "handover.escalated")]
            + [(escalating, "handover.escalated")]
            + [(h, "handover.delivered") for h in (unreachable, plain)]
        )
        assert audit.verify(session, keyring=crypto.current_keyring()).ok


def test_a_batch_run_inside_a_callers_transaction_leaves_its_objects_current(
    app: Flask, api: Api
) -> None:
    handover_id = create(api, record_for())
    submit_at(app, handover_id, MONDAY_10)
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None and handover.status == "scheduled"
        assert scheduled.run_due(session, now=MONDAY_10, limit=10).delivered == 1
        assert (handover.status, handover.delivered_at) == ("delivered", MONDAY_10)
