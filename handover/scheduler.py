"""The tick: APScheduler only wakes a process up; the database holds the schedule.

Each tick runs due ``scheduled_job`` rows in batches, one transaction per batch
(``handover.delivery.scheduled``), queues the start-of-day digests, then sends the notifications
those transactions committed.
Any number of processes and hosts may tick at once: claims and unique keys keep the work exactly
once. ``flask --app handover scheduler tick [--now ISO]`` runs one tick; ``scheduler run`` ticks
forever; with ``SCHEDULER_IN_PROCESS = true`` the application ticks in a background thread
(``make run`` sets it for the development server).
"""

from __future__ import annotations

import atexit
import logging
from datetime import UTC, datetime
from typing import Any

import click
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask, current_app
from flask.cli import AppGroup

from handover import timeutil
from handover.db import transaction
from handover.delivery import scheduled
from handover.notifications import service as notifications

logger = logging.getLogger(__name__)

scheduler_cli = AppGroup("scheduler", help="Scheduled transfers and escalations.")

DEFAULT_INTERVAL_SECONDS = 15.0
DEFAULT_BATCH_SIZE = 200
MAX_BATCHES_PER_TICK = 1000
SEND_BATCH_SIZE = 100


def tick(*, now: datetime | None = None, batch_size: int | None = None) -> scheduled.TickCounts:
    """Run every job due at ``now`` (default: the real time), then send what they queued."""
    moment = timeutil.ensure_utc(now) if now is not None else timeutil.now()
    size = batch_size or int(current_app.config.get("SCHEDULER_BATCH_SIZE", DEFAULT_BATCH_SIZE))
    total = scheduled.TickCounts()
    for _ in range(MAX_BATCHES_PER_TICK):
        with transaction() as session:
            counts = scheduled.run_due(session, now=moment, limit=size)
        total.add(counts)
        if counts.claimed < size or counts.progress == 0:
            break
    with transaction() as session:  # after the transfers, so the digest includes them
        notifications.send_digests(session, now=moment)
    for _ in range(MAX_BATCHES_PER_TICK):
        if notifications.send_due(now=moment, limit=SEND_BATCH_SIZE) < SEND_BATCH_SIZE:
            break
    return total


def _tick_in(app: Flask, now: datetime | None = None) -> None:
    """One background tick; a failure is logged and the next tick tries again."""
    with app.app_context():
        try:
            counts = tick(now=now)
        except Exception as error:  # the ticking thread must survive a bad tick
            logger.error("scheduler tick failed: %s", type(error).__name__)
            return
    if counts.claimed:
        logger.info("scheduler tick: %s", counts.describe())


def _interval(app: Flask) -> float:
    return float(app.config.get("SCHEDULER_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))


def _add_tick(scheduler: BaseScheduler, app: Flask, now: datetime | None = None) -> None:
    """The one interval job: never two at once, missed runs coalesced, no misfire limit."""
    scheduler.add_job(
        _tick_in,
        "interval",
        args=[app, now],
        id="handover-tick",
        seconds=_interval(app),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )


def _scheduler_options() -> dict[str, Any]:
    return {"timezone": UTC, "jobstores": {"default": MemoryJobStore()}}


def start_background(app: Flask) -> BackgroundScheduler:
    """Tick inside this process, in a daemon thread, until it exits."""
    scheduler = BackgroundScheduler(daemon=True, **_scheduler_options())
    _add_tick(scheduler, app)
    scheduler.start()
    app.extensions["handover.scheduler"] = scheduler
    atexit.register(_stop, scheduler)
    return scheduler


def _stop(scheduler: BaseScheduler) -> None:
    if scheduler.running:
        scheduler.shutdown(wait=False)


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return timeutil.parse_iso(value)
    except ValueError:
        raise click.BadParameter(
            "an ISO 8601 instant with an offset, e.g. 2026-03-30T08:00:00Z", param_hint="--now"
        ) from None


@scheduler_cli.command("tick")
@click.option("--now", "at", default=None, help="Run as of this instant (ISO 8601, with offset).")
def tick_command(at: str | None) -> None:
    """Run one tick: deliver and escalate what is due, then send notifications."""
    moment = _parse_now(at) or timeutil.now()
    counts = tick(now=moment)
    click.echo(f"tick at {timeutil.isoformat(moment)}: {counts.describe()}")


@scheduler_cli.command("run")
@click.option("--interval", type=click.FloatRange(min=0.1), default=None, help="Seconds.")
@click.option("--now", "at", default=None, help="Every tick as of this instant (tests, replays).")
def run_command(interval: float | None, at: str | None) -> None:
    """Tick forever (the production ticking process); stop with Ctrl-C or SIGTERM."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if interval is not None:
        app.config["SCHEDULER_INTERVAL_SECONDS"] = interval
    moment = _parse_now(at)  # a fixed clock: crash tests replay one instant over and over
    scheduler = BlockingScheduler(**_scheduler_options())
    _add_tick(scheduler, app, now=moment)
    click.echo(f"ticking every {_interval(app):g} s")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


def init_app(app: Flask) -> None:
    """Register the CLI; start in-process ticking only when configured to (never at import)."""
    app.cli.add_command(scheduler_cli)
    if app.config.get("SCHEDULER_IN_PROCESS"):
        start_background(app)
