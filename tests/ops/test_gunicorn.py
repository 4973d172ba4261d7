"""A real gunicorn, started as production starts it (`gunicorn wsgi:app` with gunicorn.conf.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from handover import crypto
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.timeutil import now
from tests.conftest import Api
from tests.delivery.conftest import create, event_kinds, handover_row, record_for, submit_at
from tests.ops.conftest import closed_port

START_SECONDS = 60
HEALTH_CHECKS = 6


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _wait_until_serving(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Poll /healthz until it answers; fail with gunicorn's output if it exits or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            _get(f"{base}/healthz")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within {START_SECONDS} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def gunicorn(
    tmp_path: Path, sqlite_template: Path, keyring: crypto.Keyring
) -> Iterator[dict[str, Any]]:
    """gunicorn with two workers on a free loopback port, a migrated SQLite database, JSON logs."""
    shutil.copy(sqlite_template, tmp_path / "handover.db")
    port = closed_port()
    env = {
        **os.environ,
        "HANDOVER_DATABASE_URL": f"sqlite:///{tmp_path}/handover.db",
        "HANDOVER_INSTANCE_PATH": str(tmp_path),
        "HANDOVER_KEYRING": keyring.to_json(),
        "HANDOVER_LOG_FORMAT": "json",
        "HANDOVER_LOG_LEVEL": "INFO",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "-",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, base, log)
        yield {"base": base, "log": log, "process": process}
    finally:
        _stop(process)


def test_gunicorn_serves_health_readiness_and_summed_metrics(gunicorn: dict[str, Any]) -> None:
    base = gunicorn["base"]
    for _ in range(HEALTH_CHECKS):
        status, _, body = _get(f"{base}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, headers, body = _get(f"{base}/readyz?token=should-not-be-logged")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"database": "ok", "keys": "ok", "migrations": "ok"}
    request_id = headers["X-Request-Id"]

    status, _, body = _get(f"{base}/metrics")
    assert status == 200
    text = body.decode()
    # The waiting loop's first answered probe counts too, hence "at least"; every worker's count
    # is in the sum because PROMETHEUS_MULTIPROC_DIR is set.
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("handover_http_requests_total{")
        and 'endpoint="ops.healthz"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= HEALTH_CHECKS + 1
    assert "handover_database_up 1.0" in text

    _stop(gunicorn["process"])
    output = gunicorn["log"].read_text()
    assert gunicorn["process"].returncode == 0, output  # a clean, graceful shutdown
    lines = [json.loads(row) for row in output.splitlines() if row.strip()]
    access = [row for row in lines if row["logger"] == "gunicorn.access"]
    readyz = next(row for row in access if row["path"] == "/readyz")
    assert readyz["request_id"] == request_id
    assert readyz["status"] == 200
    assert "should-not-be-logged" not in output
    assert any(row["message"].startswith("Booting worker") for row in lines)


def test_the_gunicorn_master_keeps_no_handover_code_for_its_workers() -> None:
    """Workers import the code on disk (so a reload after an upgrade runs the new version)."""
    check = (
        "import runpy, sys; runpy.run_path('gunicorn.conf.py'); "
        "print(sorted(n for n in sys.modules if n.partition('.')[0] == 'handover'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_gunicorn_worker_may_tick_and_each_due_handover_is_delivered_once(
    app: Flask, api: Api, database_url: str, tmp_path: Path, keyring: crypto.Keyring
) -> None:
    """SCHEDULER_IN_PROCESS under gunicorn: each worker ticks, claims keep delivery exactly-once."""
    ids = [create(api, record_for("southmoor-fst")) for _ in range(6)]
    with app.app_context(), transaction() as session:
        team = directory.get_team(session, "southmoor-fst")
        assert team is not None
        a_week_ago = directory.calendar_for(team).next_working_start(now() - timedelta(days=8))
    for handover_id in ids:
        submit_at(app, handover_id, a_week_ago)  # due by the real clock, not yet delivered
    port = closed_port()
    env = {
        **os.environ,
        "HANDOVER_DATABASE_URL": database_url,
        "HANDOVER_INSTANCE_PATH": str(tmp_path),
        "HANDOVER_KEYRING": keyring.to_json(),
        "HANDOVER_SCHEDULER_IN_PROCESS": "true",
        "HANDOVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "HANDOVER_SCHEDULER_BATCH_SIZE": "2",  # several ticks, and so several workers, share them
        "HANDOVER_MAIL_PORT": str(closed_port()),  # notifications wait in the outbox
        "HANDOVER_MAIL_TIMEOUT_SECONDS": "2",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "3",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + START_SECONDS
        while any(handover_row(app, hid).status != "delivered" for hid in ids):
            assert time.monotonic() < deadline, f"not all delivered:\n{log.read_text()}"
            time.sleep(0.2)
        time.sleep(1)  # the workers keep ticking: a second delivery would show up now
    finally:
        _stop(process)
    assert [event_kinds(app, hid).count("delivered") for hid in ids] == [1] * len(ids)
    assert "Traceback" not in log.read_text()
