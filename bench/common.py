"""What every benchmark shares: fresh databases, apps on them, the demo directory, summary lines.

Benchmarks run on loopback only, in temporary folders, and never touch ``instance/``. PostgreSQL
is the server ``.ci/postgres.sh`` starts on 127.0.0.1:54329, and no other: each run creates a
database of its own there and drops it afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from handover import create_app, crypto, migrate
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.timeutil import now

RESULTS = PROJECT_ROOT / "bench" / "results"
DEMO_DIRECTORY = PROJECT_ROOT / "config" / "directory.example.toml"
CI_POSTGRES_URL = "postgresql://postgres@127.0.0.1:54329/postgres"
EDT_WORKER = "erin.walsh@tri-borough.example"
SOCIAL_WORKER = "sam.patel@northvale.example"


def summary(name: str, metric: str, value: float, op: str, target: float, digits: int) -> str:
    """The one summary line of a figure, e.g. ``bench create ratio=0.63 target>=0.5 pass``."""
    passed = value >= target if op == ">=" else value <= target
    shown = f"{value:.{digits}f}" if digits else str(round(value))
    return f"bench {name} {metric}={shown} target{op}{target:g} {'pass' if passed else 'fail'}"


def save_result(name: str, data: dict[str, Any]) -> None:
    """Keep the run's numbers in bench/results/NAME.json (ignored by git)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def median_ms(seconds: list[float]) -> float:
    """The median of durations in seconds, in milliseconds."""
    return statistics.median(seconds) * 1000


def postgres_server_url() -> str | None:
    """The loopback PostgreSQL server of ``.ci/postgres.sh`` if it answers, else None."""
    url = CI_POSTGRES_URL
    engine = sa.create_engine(_psycopg(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return url
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_database(kind: str, folder: Path, server_url: str | None = None) -> Iterator[str]:
    """An empty database of ``kind`` ("sqlite" or "postgres"), dropped afterwards if PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/handover.db"
        return
    assert server_url is not None
    name = f"handover_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_psycopg(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_app(url: str, folder: Path, keyring: crypto.Keyring, **settings: Any) -> Flask:
    """The real application on ``url``, migrated; quiet logs (benchmarks time work, not logging)."""
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "DATABASE_URL": url,
            "KEYRING": keyring.to_json(),
            "LOG_LEVEL": "WARNING",
            **settings,
        }
    )
    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        migrate.upgrade("heads")
    return app


def demo_directory() -> dict[str, Any]:
    """The demo directory file, parsed (to load as it is, or changed)."""
    return tomllib.loads(DEMO_DIRECTORY.read_text())


def load_directory(app: Flask, data: dict[str, Any] | None = None) -> None:
    """Load a directory: by default the demo's."""
    data = demo_directory() if data is None else data
    with app.app_context(), transaction() as session:
        directory.load_directory(session, data, now=now())


def issue_token(app: Flask, email: str) -> str:
    """A fresh API token for the user with this email."""
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, email)
        assert user is not None, email
        return directory.issue_token(session, user=user, now=now())


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": _os_name(),
        "kernel": platform.release(),
        "disk": _disk(),
    }


def _os_name() -> str:
    """The distribution's name and version, e.g. ``Debian GNU/Linux 12 (bookworm)``."""
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return platform.system()
    names = [line.split("=", 1)[1].strip('"') for line in lines if line.startswith("PRETTY_NAME=")]
    return names[0] if names else platform.system()


def _disk() -> str:
    """The filesystem the temporary folders live on (SQLite's fsyncs land there)."""
    try:
        out = subprocess.run(
            ["df", "-T", "--output=fstype", "/tmp"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out[-1] if out else "unknown"


def postgres_version(url: str) -> str:
    """The server's version string, e.g. ``15.18``."""
    engine = sa.create_engine(_psycopg(url))
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()
