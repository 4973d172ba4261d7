"""Several `flask scheduler run` processes tick one database while one of them is SIGKILLed again
and again; afterwards the database, the mail server and the webhook receiver must show exactly
what a clean run shows.

Every ticker runs the production command with a fixed clock ``T``. Each round releases new work in
one transaction of the test's own: handovers due for transfer, and handovers delivered two hours
before ``T`` whose two escalation levels are due. The victim ticks often and takes everything due
in one batch; its transactions are traced (``tests.reliability.traced``). Rounds take turns to kill
it inside a delivery or escalation batch (at a random moment between its lock on the claimed
handovers and its commit: the batch writes its rows together as it ends, so the kills land before,
among and after those writes, all uncommitted), at a random moment, or while it is talking to the
mail server or the webhook receiver (between a notification's committed claim and its recorded
outcome). When the other tickers take a wave first, or the victim commits before the aimed
moment, another wave is released for the aim.

Two control handovers run the same course in the test process with nobody killed, and every other
handover must end exactly like its control: the same events at the same instants, jobs, outbox
rows and audit entries. Every notification is received at least once, under its one key.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.delivery import scheduled
from handover.delivery.models import ScheduledJob
from handover.directory import service as directory
from handover.notifications import webhooks
from handover.notifications.models import OutboxMessage
from handover.records import service as records
from handover.records.models import Handover, HandoverEvent
from handover.timeutil import isoformat
from tests.conftest import DEMO_USERS
from tests.delivery.conftest import MONDAY_10, submit_at, tick
from tests.reliability.conftest import (
    FLASK,
    SCALE,
    TEAM,
    Proc,
    Processes,
    Receivers,
    audit_verify,
    drafts,
    established,
    holds_socket,
    report,
    scaled,
    wait_until,
)

DELIVERED_E = MONDAY_10  # escalation work: delivered here, so both levels are due by T
SUBMITTED_T = MONDAY_10 + timedelta(hours=1)  # transfer work: due here
T = MONDAY_10 + timedelta(hours=2)  # every ticker's clock
ROUNDS = scaled(6)
PER_KIND = 3  # handovers of each kind released per round
HEALTHY_TICKERS = 2
AIM_SECONDS = 1.5  # how long an aimed kill waits for the victim to be where it aims
AIM_TRIES = 6  # waves released for one aimed kill, while other tickers take the waves first
READY_SECONDS = 60.0
QUIET_SECONDS = 60.0 * SCALE


# The statements that claim due jobs, and that lock the claimed jobs' handovers for the batch.
CLAIM = "SELECT scheduled_job.id, scheduled_job.kind"
HOLD = "SELECT handover.id, handover.reference, handover.status"


@dataclass
class Transaction:
    """One transaction of the victim's trace; ``end`` is None if it never reached its commit."""

    start: float
    end: float | None
    statements: list[str]

    def writes_delivery(self) -> bool:
        """It claimed due jobs and locked their handovers to deliver or escalate them.

        A tick's batch writes its events, audit entries and other rows together as it ends, so
        it is a delivery from the moment it holds the handovers (a claim that found no work
        locks none): a kill from then until its commit must leave nothing of it behind.
        """
        return any(s.startswith(CLAIM) for s in self.statements) and any(
            s.startswith(HOLD) for s in self.statements
        )

    def last_statement(self) -> str:
        """What it had just run: the statement's verb and table."""
        return " ".join(self.statements[-1].split()[:3]) if self.statements else "nothing"

    def claims_notification(self) -> bool:
        """It leased an outbox row for sending."""
        return any(s.startswith("SELECT outbox_message.id") for s in self.statements) and any(
            s.startswith("UPDATE outbox_message") for s in self.statements
        )


def transactions(text: str) -> list[Transaction]:
    """Parse a trace (see ``tests.reliability.traced``)."""
    found: list[Transaction] = []
    current: Transaction | None = None
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        try:
            if tag == "B":
                current = Transaction(float(rest), None, [])
                found.append(current)
            elif tag == "S" and current is not None:
                current.statements.append(rest)
            elif tag in ("C", "R") and current is not None:
                current.end, current = float(rest), None
        except ValueError:
            continue  # a line the kill cut short
    return found


IN_DELIVERY = "inside a delivery or escalation"
HOLDING_CLAIM = "sending a claimed notification"
RANDOM = "at a random moment"
MODES = (IN_DELIVERY, RANDOM, HOLDING_CLAIM)  # where the kills of successive rounds aim


def place(found: Sequence[Transaction]) -> str:
    """Where a process whose trace ends with ``found`` is."""
    if not found:
        return "between transactions"
    last = found[-1]
    if last.end is None:
        text = " ".join(last.statements)
        if last.writes_delivery():
            return IN_DELIVERY
        if "scheduled_job" in text:
            return "inside a claim of due jobs"
        return "inside an outbox transaction" if "outbox_message" in text else "inside another"
    return HOLDING_CLAIM if last.claims_notification() else "between transactions"


def _read(trace: Path, since: int = 0) -> list[Transaction]:
    return transactions(trace.read_bytes()[since:].decode(errors="replace"))


@dataclass
class Landing:
    """Where a SIGKILL found the victim, and the statement it had just run there."""

    mode: str
    place: str
    after: str


def _aim(victim: Victim, mode: str, since: int, receivers: Receivers) -> bool:
    """Wait a little for the victim to be where ``mode`` aims: inside an uncommitted delivery or
    escalation (from its trace), or connected to a receiver, sending a notification it claimed."""
    deadline = time.monotonic() + AIM_SECONDS
    while time.monotonic() < deadline:
        if mode == IN_DELIVERY:
            if place(_read(victim.trace, since)) == IN_DELIVERY:
                return True
        else:
            sending = established(remote_port=receivers.smtp_port)
            sending |= established(remote_port=receivers.webhook_port)
            if holds_socket(victim.pid, sending):
                return True
        time.sleep(0.002)
    return False


class Victim:
    """The ticker that is killed: the production command under the transaction trace."""

    def __init__(self, processes: Processes, env: dict[str, str], folder: Path) -> None:
        self.processes, self.env, self.folder = processes, env, folder
        self.lives = 0
        self.proc: Proc | None = None
        self.trace = folder / "trace-0.txt"

    def start(self) -> None:
        self.lives += 1
        self.trace = self.folder / f"trace-{self.lives}.txt"
        command = [
            *(sys.executable, "-m", "tests.reliability.traced", str(self.trace)),
            *("flask", "--app", "handover", "scheduler", "run", "--interval", "0.1"),
            *("--now", isoformat(T)),
        ]
        self.proc = self.processes.start(f"victim-{self.lives}", command, self.env)

    def ready(self) -> bool:
        """It has committed a transaction of its own: it is ticking."""
        assert self.proc is not None
        if not self.proc.alive():
            raise AssertionError(f"the victim exited by itself:\n{self.proc.output()}")
        return self.trace.exists() and any(
            t.end is not None for t in transactions(self.trace.read_text())
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, *, mode: str) -> Landing:
        assert self.proc is not None
        self.proc.kill()
        found = _read(self.trace)
        return Landing(mode, place(found), found[-1].last_statement() if found else "nothing")


def _release(app: Flask, *, transfers: Sequence[str], escalations: Sequence[str]) -> None:
    """In one transaction: submit transfer work due before T, and deliver escalation work."""
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        assert user is not None
        for ids, at in ((transfers, SUBMITTED_T), (escalations, DELIVERED_E)):
            for handover_id in ids:
                handover = session.get(Handover, handover_id)
                assert handover is not None
                records.submit(session, user=user, handover=handover, now=at)
        counts = scheduled.run_due(session, now=DELIVERED_E, limit=len(escalations) + 1)
        assert counts.delivered == len(escalations), counts


def _outstanding(app: Flask) -> int:
    """Work due at T that no ticker has done yet (a job in backoff or a row leased is not due)."""
    with app.app_context(), transaction() as session:
        jobs = session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(
                ScheduledJob.state == "pending",
                ScheduledJob.due_at <= T,
                sa.or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until <= T),
            )
        )
        mail = session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= T)
        )
        return int(jobs or 0) + int(mail or 0)


def _shape(app: Flask, handover_id: str) -> dict[str, Any]:
    """Everything durable about one handover, with its id taken out of keys."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        events = session.execute(
            sa.select(HandoverEvent.kind, HandoverEvent.at)
            .where(HandoverEvent.handover_id == handover_id)
            .order_by(HandoverEvent.seq)
        ).all()
        jobs = session.scalars(
            sa.select(ScheduledJob).where(ScheduledJob.handover_id == handover_id)
        )
        rows = session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.handover_id == handover_id)
        )
        audit = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.object_id == handover_id)
        )
        return {
            "status": handover.status,
            "delivered_at": handover.delivered_at,
            "escalation_level": handover.escalation_level,
            "ladder": handover.escalation_ladder,
            # Drafts were created at real times; everything after happened at fixed instants.
            "events": [(kind, None if kind == "created" else at) for kind, at in events],
            "jobs": sorted(
                (j.dedup_key.replace(handover_id, "<id>"), j.state, j.due_at, j.attempts)
                for j in jobs
            ),
            "outbox": sorted(
                (r.kind, r.channel, r.target, r.dedup_key.replace(handover_id, "<id>"), r.state)
                for r in rows
            ),
            "audit": sorted(audit),
        }


def _write_durations(folder: Path) -> list[int]:
    """How long the victim's committed delivery and escalation transactions took (ms)."""
    found = [t for trace in folder.glob("trace-*.txt") for t in transactions(trace.read_text())]
    return sorted(
        round((t.end - t.start) * 1000) for t in found if t.end is not None and t.writes_delivery()
    )


def _final_tick(env: dict[str, str], at: datetime) -> dict[str, int]:
    """`flask scheduler tick --now AT`; returns the counts it printed."""
    result = subprocess.run(
        [FLASK, "--app", "handover", "scheduler", "tick", "--now", isoformat(at)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("tick at "))
    pairs = (item.rsplit(" ", 1) for item in line.split(": ", 1)[1].split(", "))
    return {name: int(value) for name, value in pairs}


def _controls(app: Flask) -> tuple[str, str]:
    """One handover of each kind run through the same course with nobody killed."""
    control_e, control_t = drafts(app, 2)
    submit_at(app, control_e, DELIVERED_E)
    assert tick(app, DELIVERED_E).delivered == 1
    submit_at(app, control_t, SUBMITTED_T)
    counts = tick(app, T)
    assert (counts.delivered, counts.escalated) == (1, 2), counts
    return control_e, control_t


def _set_webhook(app: Flask, url: str) -> None:
    with app.app_context(), transaction() as session:
        webhooks.set_team_webhook(
            session, team_code=TEAM, url=url, secret=webhooks.new_secret(), now=MONDAY_10
        )


@dataclass
class Released:
    """The handovers released so far, by the work each gave the tickers."""

    transfers: list[str] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)

    def wave(self, app: Flask) -> None:
        """Release PER_KIND handovers of each kind at once."""
        ids = drafts(app, 2 * PER_KIND)
        self.transfers += ids[:PER_KIND]
        self.escalations += ids[PER_KIND:]
        _release(app, transfers=ids[:PER_KIND], escalations=ids[PER_KIND:])


def _start_tickers(processes: Processes, env: dict[str, str]) -> list[Proc]:
    """The tickers nobody kills: small batches, a slower interval, the production command."""
    command = [FLASK, "--app", "handover", "scheduler", "run", "--interval", "0.3"]
    return [
        processes.start(
            f"ticker-{n}",
            [*command, "--now", isoformat(T)],
            {**env, "HANDOVER_SCHEDULER_BATCH_SIZE": "2"},
        )
        for n in range(HEALTHY_TICKERS)
    ]


def _kill_rounds(
    app: Flask, victim: Victim, receivers: Receivers, rng: random.Random
) -> tuple[Released, list[Landing]]:
    """Release work and kill the victim, ROUNDS times; it is restarted after each kill."""
    released, landings = Released(), []
    for n in range(ROUNDS):
        mode = MODES[n % len(MODES)]
        for _ in range(1 if mode == RANDOM else AIM_TRIES):
            since = victim.trace.stat().st_size
            released.wave(app)
            if mode == RANDOM:
                time.sleep(rng.uniform(0, 0.4))
            elif _aim(victim, mode, since, receivers):  # else others took the wave: again
                if mode != IN_DELIVERY or _still_inside(victim, since, rng):
                    break
        landings.append(victim.kill(mode=mode))
        victim.start()
        wait_until(victim.ready, seconds=READY_SECONDS, what="the restarted victim's first tick")
    return released, landings


def _still_inside(victim: Victim, since: int, rng: random.Random) -> bool:
    """Wait a random part of the shortest delivery the victim committed yet, so that kills land
    anywhere from its hold on the handovers to just before its commit; then say whether it is
    still inside (if it committed meanwhile, the caller aims at the next wave)."""
    taken = _write_durations(victim.folder)
    time.sleep(rng.uniform(0, taken[0] / 1000 * 0.8 if taken else 0.005))
    return place(_read(victim.trace, since)) == IN_DELIVERY


def _left_sending(app: Flask) -> int:
    """Outbox rows claimed by a sender that never recorded what became of them."""
    with app.app_context(), transaction() as session:
        found = session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state == "sending")
        )
        return int(found or 0)


def test_tickers_killed_mid_transaction_deliver_and_notify_exactly_once(
    app: Flask,
    demo: dict[str, str],
    process_env: dict[str, str],
    receivers: Receivers,
    processes: Processes,
    tmp_path: Path,
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    _set_webhook(app, receivers.webhook_url)
    control_e, control_t = _controls(app)
    healthy = _start_tickers(processes, process_env)
    victim = Victim(processes, {**process_env, "HANDOVER_SCHEDULER_BATCH_SIZE": "500"}, tmp_path)
    victim.start()
    wait_until(victim.ready, seconds=READY_SECONDS, what="the victim's first tick")
    released, landings = _kill_rounds(app, victim, receivers, random.Random(seed))

    wait_until(
        lambda: _outstanding(app) == 0, seconds=QUIET_SECONDS, what="the tickers", every=0.25
    )
    for proc in [*healthy, victim.proc]:
        assert proc is not None
        proc.stop()
    # A final clean tick at T finds nothing left behind; a later one (past every lease) sends what
    # a killed sender had claimed but not recorded.
    assert _final_tick(process_env, T)["claimed"] == 0
    left_sending = _left_sending(app)
    lease = timedelta(seconds=int(app.config["OUTBOX_LEASE_SECONDS"]))
    assert _final_tick(process_env, T + lease + timedelta(minutes=2))["claimed"] == 0
    assert _left_sending(app) == 0
    report(
        "tickers",
        {
            "seed": seed,
            "database": app.extensions["handover.engine"].dialect.name,
            "handovers": len(released.transfers) + len(released.escalations),
            "kills": Counter(f"{k.mode} -> {k.place}" for k in landings),
            "killed_in_delivery_after": Counter(
                k.after for k in landings if k.place == IN_DELIVERY
            ),
            "left_sending_by_kills": left_sending,
            "victim_write_transaction_ms": _write_durations(tmp_path),
        },
    )
    assert [p.name for p in healthy if "scheduler tick failed" in p.output()] == []
    # Kills did land inside uncommitted deliveries and escalations, and between a notification's
    # committed claim and its outcome.
    assert {IN_DELIVERY, HOLDING_CLAIM} <= {k.place for k in landings}, landings
    assert left_sending > 0
    _assert_exactly_like_controls(app, control_e, control_t, released)
    report("tickers", {"received": _assert_every_notification_received(app, receivers)})
    verified = audit_verify(process_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit chain OK" in verified.stdout


def _assert_exactly_like_controls(
    app: Flask, control_e: str, control_t: str, released: Released
) -> None:
    """Every handover ends as its control did; the controls ended as the design says."""
    expected_e, expected_t = _shape(app, control_e), _shape(app, control_t)
    kinds_e = [kind for kind, _ in expected_e["events"]]
    assert (kinds_e.count("delivered"), kinds_e.count("escalated")) == (1, 2)
    assert (expected_e["status"], expected_e["escalation_level"]) == ("delivered", 2)
    assert [state for _, state, _, _ in expected_e["jobs"]] == ["done", "done", "done"]
    assert [kind for kind, _ in expected_t["events"]].count("delivered") == 1
    assert [state for _, state, _, _ in expected_t["jobs"]] == ["pending", "pending", "done"]
    for handover_id in released.escalations:
        assert _shape(app, handover_id) == expected_e, handover_id
    for handover_id in released.transfers:
        assert _shape(app, handover_id) == expected_t, handover_id
    with app.app_context(), transaction() as session:
        duplicated = session.execute(
            sa.select(OutboxMessage.dedup_key)
            .group_by(OutboxMessage.dedup_key)
            .having(sa.func.count() > 1)
        ).all()
        assert duplicated == []


def _assert_every_notification_received(app: Flask, receivers: Receivers) -> dict[str, int]:
    """Every outbox row sent and received at least once, under its one idempotency key."""
    with app.app_context(), transaction() as session:
        rows = session.execute(
            sa.select(
                OutboxMessage.channel,
                OutboxMessage.idempotency_key,
                OutboxMessage.target,
                OutboxMessage.state,
            )
        ).all()
    assert rows and {state for _, _, _, state in rows} == {"sent"}
    mails, hooks = receivers.mail_ids(), receivers.hook_ids()
    addressed = {key: target for channel, key, target, _ in rows if channel == "email"}
    assert set(mails) == set(addressed)  # every email arrived; none the outbox does not hold
    assert set(hooks) == {key for channel, key, _, _ in rows if channel == "webhook"}
    # A copy received twice is the same message under the same key (at least once, never twice
    # as two different notifications).
    for key, copies in mails.items():
        assert {to for to, _ in copies} == {addressed[key]} and len(set(copies)) == 1, key
    for key, bodies in hooks.items():
        assert len(set(bodies)) == 1 and json.loads(bodies[0])["id"] == key, key
    return {
        "emails": len(mails),
        "webhooks": len(hooks),
        "received_twice": sum(len(c) - 1 for c in [*mails.values(), *hooks.values()]),
    }
