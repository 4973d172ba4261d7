"""gunicorn (gunicorn.conf.py, two workers) serves a stream of creates, submits and
acknowledgements while its workers are SIGKILLed one after another; gunicorn respawns them.

Two client threads keep both workers busy, so most kills cut a request off: the client sees the
connection reset and retries exactly as a careful client would, with the same Idempotency-Key for
a create. Afterwards every request that was answered 2xx is in the database and reads back exactly,
no retry made a duplicate, no handover is half written, and the audit chain verifies.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.db import transaction
from handover.delivery import scheduled
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.idempotency import IdempotentRequest
from handover.records import sections
from handover.records import service as records
from handover.records.models import Handover, HandoverEvent, HandoverSection, HandoverVersion
from handover.timeutil import now as real_now
from tests.conftest import DEMO_USERS, Api
from tests.delivery.conftest import read_back, record_for
from tests.notifications.conftest import LOOPBACK, free_port
from tests.reliability.conftest import (
    SCALE,
    TEAM,
    Proc,
    Processes,
    audit_verify,
    children,
    drafts,
    established,
    holds_socket,
    report,
    scaled,
    wait_until,
)

WORKERS = 2
KILLS = scaled(5)
ACK_POOL = scaled(16)  # delivered handovers waiting to be acknowledged
MAX_REQUESTS = scaled(400)  # a bound on each client thread, whatever happens
ATTEMPTS = 12  # tries of one request whose responses keep being lost
START_SECONDS = 60.0
ANSWERED_BETWEEN_KILLS = 4  # responses between two kills
AIM_SECONDS = 5.0  # how long the killer waits for a worker to be in the middle of a request
STREAM_SECONDS = 120.0 * SCALE
REQUEST_TIMEOUT = 60.0
LOST = (ConnectionError, http.client.HTTPException, TimeoutError)


def _busy_worker(master: int, port: int) -> int | None:
    """A worker holding a client's connection (in the middle of a request), once one does."""
    deadline = time.monotonic() + AIM_SECONDS
    while time.monotonic() < deadline:
        serving = established(local_port=port)
        for pid in children(master):
            if holds_socket(pid, serving):
                return pid
        time.sleep(0.003)
    return None


def _deliver_pool(app: Flask, count: int) -> list[str]:
    """Handovers submitted and delivered a week ago, waiting for their acknowledgement."""
    ids = drafts(app, count)
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        team = directory.get_team(session, TEAM)
        assert user is not None and team is not None
        at = directory.calendar_for(team).next_working_start(real_now() - timedelta(days=8))
        for handover_id in ids:
            handover = session.get(Handover, handover_id)
            assert handover is not None
            records.submit(session, user=user, handover=handover, now=at)
        assert scheduled.run_due(session, now=at, limit=count + 1).delivered == count
    return ids


@pytest.fixture
def gunicorn(
    processes: Processes, process_env: dict[str, str], tmp_path: Any
) -> Iterator[tuple[Proc, int]]:
    """gunicorn as production starts it, on a free loopback port; killed at teardown."""
    port = free_port()
    env = {
        **process_env,
        "GUNICORN_BIND": f"{LOOPBACK}:{port}",
        "GUNICORN_WORKERS": str(WORKERS),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    master = processes.start("gunicorn", [sys.executable, "-m", "gunicorn", "wsgi:app"], env)

    def serving() -> bool:
        assert master.alive(), master.output()
        try:
            return Client(port, {}).call("GET", "/healthz", None)[0] == 200
        except LOST:
            return False

    wait_until(serving, seconds=START_SECONDS, what="gunicorn to serve")
    wait_until(lambda: len(children(master.pid)) == WORKERS, seconds=START_SECONDS, what="workers")
    yield master, port
    assert master.stop(signal.SIGTERM) == 0, master.output()


@dataclass
class Client:
    """A plain HTTP client: one connection per request, as a mobile or batch client would."""

    port: int
    tokens: dict[str, str]

    def call(
        self,
        method: str,
        path: str,
        as_: str | None,
        body: Any = None,
        key: str | None = None,
    ) -> tuple[int, Any]:
        """One request; raises one of LOST when the response never arrives."""
        headers = {"Content-Type": "application/json"}
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        if key is not None:
            headers["Idempotency-Key"] = key
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=REQUEST_TIMEOUT)
        try:
            data = None if body is None else json.dumps(body)
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read()
        finally:
            connection.close()
        return response.status, json.loads(text) if text else None


@dataclass
class Outcomes:
    """What the clients saw, shared by their threads."""

    created: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key → id, record
    submitted: dict[str, Any] = field(default_factory=dict)  # id → due_at answered (None: 409)
    acknowledged: list[str] = field(default_factory=list)
    answered: int = 0  # responses received
    lost: Counter[str] = field(default_factory=Counter)  # responses lost, by request kind
    lost_after_commit: Counter[str] = field(default_factory=Counter)
    unexpected: list[tuple[str, int, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Stream:
    """One client thread: create and submit a handover, acknowledge one from the pool, repeat."""

    def __init__(
        self, app: Flask, client: Client, pool: list[str], out: Outcomes, stop: threading.Event
    ) -> None:
        self.app, self.client, self.pool, self.out, self.stop = app, client, pool, out, stop

    def run(self) -> None:
        try:
            for n in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                self.create_and_submit(n)
                with self.out.lock:
                    handover_id = self.pool.pop() if self.pool else None
                if handover_id is not None:
                    self.acknowledge(handover_id)
        except Exception as error:  # reported by the test, not lost with the thread
            with self.out.lock:
                self.out.unexpected.append(("client thread", 0, repr(error)))

    def _retrying(
        self, kind: str, send: Callable[[], tuple[int, Any]], committed: Callable[[], bool]
    ) -> tuple[int, Any]:
        """Send until a response arrives; note whether each lost one had committed first."""
        for _ in range(ATTEMPTS):
            try:
                answer = send()
            except LOST:
                with self.out.lock:
                    self.out.lost[kind] += 1
                    if committed():
                        self.out.lost_after_commit[kind] += 1
                continue
            with self.out.lock:
                self.out.answered += 1
            return answer
        raise AssertionError(f"{kind}: no response after {ATTEMPTS} attempts")

    def _check(self, kind: str, status: int, body: Any, allowed: tuple[int, ...]) -> bool:
        if status in allowed:
            return True
        with self.out.lock:
            self.out.unexpected.append((kind, status, body))
        return False

    def create_and_submit(self, n: int) -> None:
        record = record_for(TEAM)
        record["summary"] += f" (Request {n} of thread {threading.get_ident()}.)"
        key = f"reliability-{uuid.uuid4()}"
        status, body = self._retrying(
            "create",
            lambda: self.client.call("POST", "/api/v1/handovers", "edt_worker", record, key),
            lambda: self._remembered(key),
        )
        if not self._check("create", status, body, (201,)):
            return
        handover_id = body["id"]
        with self.out.lock:
            self.out.created[key] = (handover_id, record)
        lost_before = self.out.lost["submit"]
        status, body = self._retrying(
            "submit",
            lambda: self.client.call(
                "POST", f"/api/v1/handovers/{handover_id}/submit", "edt_worker"
            ),
            lambda: self._status(handover_id) == "scheduled",
        )
        # 409 only for a retry whose first attempt had gone through.
        retried = self.out.lost["submit"] > lost_before
        if self._check("submit", status, body, (200, 409) if retried else (200,)):
            with self.out.lock:
                self.out.submitted[handover_id] = body["due_at"] if status == 200 else None

    def acknowledge(self, handover_id: str) -> None:
        lost_before = self.out.lost["acknowledge"]
        status, body = self._retrying(
            "acknowledge",
            lambda: self.client.call(
                "POST", f"/api/v1/handovers/{handover_id}/acknowledge", "social_worker", read_back()
            ),
            lambda: self._status(handover_id) == "acknowledged",
        )
        retried = self.out.lost["acknowledge"] > lost_before
        if self._check("acknowledge", status, body, (200, 409) if retried else (200,)):
            with self.out.lock:
                self.out.acknowledged.append(handover_id)

    def _remembered(self, key: str) -> bool:
        with self.app.app_context(), transaction() as session:
            found = session.scalar(
                sa.select(sa.func.count())
                .select_from(IdempotentRequest)
                .where(IdempotentRequest.key == key)
            )
            return bool(found)

    def _status(self, handover_id: str) -> str:
        with self.app.app_context(), transaction() as session:
            return str(session.scalar(sa.select(Handover.status).where(Handover.id == handover_id)))


@contextmanager
def _streams(app: Flask, client: Client, pool: list[str], out: Outcomes) -> Iterator[None]:
    """Client threads, one per worker, running until the block ends; none may hang."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=Stream(app, client, pool, out, stop).run, daemon=True)
        for _ in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=STREAM_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"


def _kill_busy_workers(master: Proc, port: int, out: Outcomes, rng: random.Random) -> list[int]:
    """SIGKILL a worker in the middle of a request, KILLS times; the stream goes on between."""
    deadline = time.monotonic() + STREAM_SECONDS
    killed: list[int] = []
    while len(killed) < KILLS and time.monotonic() < deadline:
        answered = out.answered
        while out.answered < answered + ANSWERED_BETWEEN_KILLS:
            assert time.monotonic() < deadline and not out.unexpected, out.unexpected
            time.sleep(0.05)
        busy = _busy_worker(master.pid, port)
        if busy is not None:
            time.sleep(rng.uniform(0, 0.02))  # somewhere in the middle of its request
            os.kill(busy, signal.SIGKILL)
            killed.append(busy)
    return killed


def test_gunicorn_workers_killed_mid_request_lose_and_duplicate_nothing(
    app: Flask, api: Api, gunicorn: tuple[Proc, int], process_env: dict[str, str]
) -> None:
    master, port = gunicorn
    seed = int.from_bytes(os.urandom(4), "big")
    delivered = _deliver_pool(app, ACK_POOL)
    out = Outcomes()
    with _streams(app, Client(port, api.tokens), list(delivered), out):
        killed = _kill_busy_workers(master, port, out, random.Random(seed))
    respawned = set(children(master.pid))
    assert master.alive() and len(respawned) == WORKERS and not respawned & set(killed)
    assert Client(port, {}).call("GET", "/healthz", None)[0] == 200
    report(
        "gunicorn",
        {
            "seed": seed,
            "database": app.extensions["handover.engine"].dialect.name,
            "kills": len(killed),
            "created": len(out.created),
            "acknowledged": len(out.acknowledged),
            "responses_lost": dict(out.lost),
            "lost_after_commit": dict(out.lost_after_commit),
        },
    )
    assert out.unexpected == []
    assert len(killed) == KILLS
    assert sum(out.lost.values()) > 0, "no kill landed mid-request"
    _assert_whole(app, out, delivered=set(delivered), acknowledged=set(out.acknowledged))
    _assert_reads_back(api, out)
    verified = audit_verify(process_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _assert_whole(
    app: Flask, out: Outcomes, *, delivered: set[str], acknowledged: set[str]
) -> None:
    """One handover per create key, none half written, each event with its audit entry."""
    created_ids = [handover_id for handover_id, _ in out.created.values()]
    assert len(set(created_ids)) == len(created_ids)
    expected_sections = set(sections.split(record_for(TEAM)))
    with app.app_context(), transaction() as session:
        all_ids = set(session.scalars(sa.select(Handover.id)))
        assert all_ids == set(created_ids) | delivered  # nothing duplicated, nothing extra
        for handover_id in all_ids:
            stored = set(
                session.scalars(
                    sa.select(HandoverSection.section).where(
                        HandoverSection.handover_id == handover_id, HandoverSection.version == 1
                    )
                )
            )
            assert stored == expected_sections, handover_id
            assert session.get(HandoverVersion, (handover_id, 1)) is not None
            events = session.scalars(
                sa.select(HandoverEvent.kind).where(HandoverEvent.handover_id == handover_id)
            ).all()
            audit = session.scalars(
                sa.select(AuditEvent.action).where(AuditEvent.object_id == handover_id)
            ).all()
            assert sorted(audit) == sorted(f"handover.{kind}" for kind in events), handover_id
            transfers = session.scalar(
                sa.select(sa.func.count())
                .select_from(ScheduledJob)
                .where(ScheduledJob.handover_id == handover_id, ScheduledJob.kind == "transfer")
            )
            expected = ["created", "submitted"]
            if handover_id in delivered:
                expected += (
                    ["delivered", "acknowledged"] if handover_id in acknowledged else ["delivered"]
                )
            assert (sorted(events), transfers) == (sorted(expected), 1), handover_id


def _assert_reads_back(api: Api, out: Outcomes) -> None:
    """Every answered create reads back exactly as sent; every answered submit is in the record's
    state; every answered acknowledgement is there once, with its read-back."""
    for handover_id, record in out.created.values():
        body = api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
        assert body["record"] == record, handover_id
        assert body["status"] == "scheduled", handover_id
        due_at = out.submitted[handover_id]
        assert due_at is None or body["due_at"] == due_at, handover_id
    for handover_id in out.acknowledged:
        body = api.get(f"/handovers/{handover_id}", as_="social_worker").get_json()
        assert body["status"] == "acknowledged", handover_id
        assert body["acknowledged_by"]["name"] == "Sam Patel", handover_id
        acknowledged = [e for e in body["events"] if e["kind"] == "acknowledged"]
        assert [json.loads(e["detail"]) for e in acknowledged] == [read_back()], handover_id


def _abandon(port: int, token: str, record: dict[str, Any], key: str) -> None:
    """Send a create and hang up without reading the answer: the response is lost."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
    }
    connection.request("POST", "/api/v1/handovers", body=json.dumps(record), headers=headers)
    connection.close()


def test_a_create_retried_while_its_lost_original_still_runs_is_not_duplicated(
    app: Flask, api: Api, gunicorn: tuple[Proc, int]
) -> None:
    """The client hangs up before the answer and at once asks again with the same key, while the
    other worker is still creating the original: one handover per key, and the answer to the
    retry (after a 409 "in use", if it came too early) is the original's."""
    _, port = gunicorn
    client = Client(port, api.tokens)
    answers = {}
    for n in range(scaled(10)):
        key, record = f"abandoned-{uuid.uuid4()}", record_for(TEAM)
        record["summary"] += f" (Request {n}.)"
        _abandon(port, api.tokens["edt_worker"], record, key)
        for _ in range(ATTEMPTS):
            status, body = client.call("POST", "/api/v1/handovers", "edt_worker", record, key)
            if status != 409:  # 409: the original is still running
                break
            time.sleep(0.1)
        assert status == 201, body
        answers[key] = body["id"]
    with app.app_context(), transaction() as session:
        stored = session.scalars(sa.select(Handover.id)).all()
    assert sorted(stored) == sorted(answers.values())  # no duplicate, and each answer is real
