"""Sweep: 10,000 due handovers delivered by the scheduler's tick, on SQLite and on PostgreSQL.

10,000 synthetic handovers filed over a weekend are scheduled for Monday morning, each for its
team's working-day start (09:00 London, 08:30 for the MASH). Every day team has team managers and
a service manager, as in production, so every delivery freezes a two-level escalation ladder.
Then ``scheduler.tick`` runs as of 09:01 until every one is delivered: each delivery writes its
event, audit entry, outbox rows and escalation jobs in batches of 200, one transaction each, and
the tick queues the teams' start-of-day digests. Sending is not timed: it happens after commit,
and with no mail server listening each tick makes one failed attempt
(``OUTBOX_SEND_SECONDS = 0``). The figure is the wall time of the ticks. Target <= 5 s.

Beside it, the floor: the same rows touched (the handover and its job) in the same number of
transactions, with no work in them, on the same database; and the CPU time of the ticking
process, which on a shared machine says how much of the wall time was this work.
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import common, synth
from handover import audit, crypto, scheduler
from handover.db import transaction
from handover.delivery.models import ScheduledJob
from handover.notifications.models import OutboxMessage
from handover.records.models import Handover, HandoverEvent

HANDOVERS = 10_000
TARGET = 5.0
BATCH = scheduler.DEFAULT_BATCH_SIZE
# Monday 30 November 2026 (GMT, so London and UTC agree): the day teams' working day starts.
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
NOW = MONDAY + timedelta(minutes=1)
DUE = {team: MONDAY for teams in synth.TEAMS.values() for team in teams} | {
    "northvale-mash": MONDAY - timedelta(minutes=30)
}
MANAGERS = {
    "northvale-mash": "mash",
    "southmoor-fst": "southmoor",
    "eastbury-fst": "eastbury",
    "northvale-east-fst": "northvale-east",
}


def _directory() -> dict[str, Any]:
    """The demo directory with two team managers per day team and every service manager set."""
    data = common.demo_directory()
    for team in data["teams"]:
        if team["code"] == "southmoor-fst":
            team["escalation"] = {"service_manager": "head.of.service@southmoor.example"}
    data["users"] += [
        {
            "email": f"manager{n}.{name}@bench.example",
            "name": f"Manager {n} {name}",
            "role": "team_manager",
            "team": code,
        }
        for code, name in MANAGERS.items()
        for n in (1, 2)
    ]
    return data


def _scheduled(record: Any, at: datetime, rng: Any) -> synth.Filing:
    return synth.Filing(status="scheduled", created_at=at, due_at=DUE[record["allocated_team"]])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _prepare(url: str, folder: Path) -> Flask:
    keyring = crypto.generate_keyring()
    app = common.make_app(
        url, folder, keyring, MAIL_HOST="127.0.0.1", MAIL_PORT=_closed_port(), OUTBOX_SEND_SECONDS=0
    )
    # Each tick's one send attempt fails by design (nothing listens): not worth a warning line.
    logging.getLogger("handover.notifications.outbox").setLevel(logging.ERROR)
    common.load_directory(app, _directory())
    synth.populate(
        app,
        keyring=keyring,
        count=HANDOVERS,
        seed=11,
        start=MONDAY - timedelta(days=2, hours=15, minutes=30),  # Friday 17:30
        end=MONDAY - timedelta(hours=1, minutes=30),  # Monday 07:30
        filing=_scheduled,
    )
    return app


def floor(app: Flask) -> float:
    """Touch each handover and its job, unchanged, in batches of BATCH transactions: seconds."""
    with app.app_context(), transaction() as session:
        pairs = session.execute(
            sa.select(ScheduledJob.id, ScheduledJob.handover_id).order_by(
                ScheduledJob.due_at, ScheduledJob.id
            )
        ).all()
    started = time.perf_counter()
    with app.app_context():
        for start in range(0, len(pairs), BATCH):
            jobs = [job for job, _ in pairs[start : start + BATCH]]
            handovers = [handover for _, handover in pairs[start : start + BATCH]]
            with transaction() as session:
                session.execute(
                    sa.update(ScheduledJob)
                    .where(ScheduledJob.id.in_(jobs))
                    .values(attempts=ScheduledJob.attempts)
                )
                session.execute(
                    sa.update(Handover)
                    .where(Handover.id.in_(handovers))
                    .values(updated_at=Handover.updated_at)
                )
    return time.perf_counter() - started


def sweep(app: Flask) -> dict[str, Any]:
    """Tick until every handover is delivered; returns the time and what the ticks did."""
    delivered, ticks = 0, 0
    with app.app_context():
        started, cpu = time.perf_counter(), time.process_time()
        while delivered < HANDOVERS:
            counts = scheduler.tick(now=NOW)
            ticks += 1
            delivered += counts.delivered
            if counts.delivered == 0:
                raise RuntimeError(f"a tick delivered nothing: {counts.describe()}")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    found = _check(app)
    return {"seconds": seconds, "cpu_seconds": cpu, "ticks": ticks, "delivered": delivered, **found}


def _check(app: Flask) -> dict[str, Any]:
    """What a user or operator would see afterwards: all delivered, once, and the log intact."""
    with app.app_context(), transaction() as session:

        def count(query: Any) -> int:
            return int(session.scalar(query) or 0)

        found = {
            "delivered": count(sa.select(sa.func.count()).where(Handover.status == "delivered")),
            "delivered_events": count(
                sa.select(sa.func.count()).where(HandoverEvent.kind == "delivered")
            ),
            "escalation_jobs": count(
                sa.select(sa.func.count()).where(
                    ScheduledJob.kind == "escalate", ScheduledJob.state == "pending"
                )
            ),
            "outbox_rows": count(sa.select(sa.func.count()).select_from(OutboxMessage)),
            "unreachable_events": count(
                sa.select(sa.func.count()).where(HandoverEvent.kind == "escalation_unreachable")
            ),
        }
        verified = audit.verify(session, keyring=crypto.current_keyring())
    expected = (HANDOVERS, HANDOVERS, 2 * HANDOVERS)
    got = (found["delivered"], found["delivered_events"], found["escalation_jobs"])
    if got != expected or found["unreachable_events"] or not verified.ok:
        raise RuntimeError(f"sweep incomplete: {found}, audit {verified}")
    found["audit_entries"] = verified.checked
    return found


def run(kind: str, server_url: str | None) -> dict[str, Any]:
    """Set up, measure the floor, then the sweep, on a fresh database of ``kind``."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        common.fresh_database(kind, Path(tmp), server_url) as url,
    ):
        app = _prepare(url, Path(tmp))
        bare = floor(app)
        result = sweep(app)
        app.extensions["handover.engine"].dispose()
    result["floor_seconds"] = bare
    result["per_second"] = HANDOVERS / result["seconds"]
    return result


def _report(kind: str, result: dict[str, Any]) -> None:
    print(
        f"sweep {kind}: {result['delivered']:,} delivered in {result['ticks']} tick(s), "
        f"{result['seconds']:.2f} s = {result['per_second']:,.0f} handovers/s, "
        f"{result['cpu_seconds']:.2f} s of it CPU in the ticking process "
        f"({result['audit_entries']:,} audit entries, {result['outbox_rows']:,} outbox rows, "
        f"{result['escalation_jobs']:,} escalation jobs); floor (same rows, same "
        f"{HANDOVERS // BATCH} transactions, no work): {result['floor_seconds']:.2f} s",
        flush=True,
    )


def main() -> int:
    """SQLite, then PostgreSQL when a server answers; the summary lines last."""
    sqlite = run("sqlite", None)
    _report("sqlite", sqlite)
    results: dict[str, Any] = {"sqlite": sqlite}
    server = common.postgres_server_url()
    if server is not None:
        results["postgres"] = postgres = run("postgres", server)
        results["postgres_version"] = common.postgres_version(server)
        _report("postgres", postgres)
    common.save_result("sweep", results)
    print(common.summary("sweep-sqlite", "seconds", sqlite["seconds"], "<=", TARGET, 1))
    if server is None:
        print(
            "bench sweep-postgres skipped: no PostgreSQL answered on 127.0.0.1:54329 "
            "(start it with `bash .ci/postgres.sh`)"
        )
    else:
        print(common.summary("sweep-postgres", "seconds", postgres["seconds"], "<=", TARGET, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
