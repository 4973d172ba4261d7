"""``make load``: gunicorn + PostgreSQL, then gunicorn + SQLite, under the locust scenario.

For each database: a fresh database, a keyring, ``db upgrade``, the demo directory and tokens
through the CLI as an operator would; gunicorn with gunicorn.conf.py on a free port of 127.0.0.1;
a scheduler ticking with ``flask scheduler tick --now`` at the handovers' due time (the runner's
clock starts at the first due_at, so a run at night still delivers); then locust headless for a
bounded time. It prints per-endpoint counts, failures and p50/p99 latency, the server's 5xx
answers and the "database is locked" errors in its log (the log hides exception messages, so an
OperationalError of any kind is counted too), and exits 1 if any of them is not zero.

PostgreSQL comes from HANDOVER_LOAD_DATABASE_URL, else the server ``.ci/postgres.sh`` starts; a
database of the run's own is created there and dropped afterwards. Settings (environment):
LOAD_SECONDS (60), LOAD_USERS (16), LOAD_WORKERS (gunicorn workers, 4), LOAD_DATABASES
("postgres sqlite").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from record import reference

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FLASK = [str(BIN / "flask"), "--app", "handover"]
LOCUSTFILE = ROOT / "bench" / "load" / "locustfile.py"
TOKENS = {
    "edt": ["erin.walsh@tri-borough.example", "marcus.bell@tri-borough.example"],
    "team": ["sam.patel@northvale.example", "grace.okoro@northvale.example"],
}
SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
USERS = int(os.environ.get("LOAD_USERS", "16"))
WORKERS = os.environ.get("LOAD_WORKERS", "4")
READY_SECONDS = 60
TICK_EVERY = 2.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Stack:
    """One database's server, its environment and its log."""

    name: str
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)

    @property
    def base(self) -> str:
        """The server's address."""
        return f"http://127.0.0.1:{self.port}"

    def flask(self, *args: str, **env: str) -> str:
        """Run a CLI command as an operator would (``env`` added); its standard output."""
        done = subprocess.run(
            [*FLASK, *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout


def _environment(folder: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOVER_", "GUNICORN_"))}
    env.update(
        HANDOVER_ENV="production",
        HANDOVER_DATABASE_URL=database_url,
        HANDOVER_INSTANCE_PATH=str(folder),
        HANDOVER_KEYRING_FILE=str(folder / "keyring.json"),
        HANDOVER_LOG_FORMAT="json",
        HANDOVER_MAIL_PORT=str(free_port()),  # nothing listens: notifications wait in the outbox
        HANDOVER_MAIL_TIMEOUT_SECONDS="2",
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
    )
    return env


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of this run's own on the load PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    server = (
        os.environ.get("HANDOVER_LOAD_DATABASE_URL")
        or subprocess.run(
            ["bash", str(ROOT / ".ci" / "postgres.sh")],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    name = f"handover_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield str(sa.make_url(server).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def prepare(stack: Stack) -> dict[str, list[str]]:
    """Keys, schema, directory and API tokens, through the CLI."""
    stack.flask("keys", "init", HANDOVER_ENV="development")  # production needs the keyring first
    stack.flask("db", "upgrade")
    stack.flask("directory", "load", str(ROOT / "config" / "directory.example.toml"))
    return {
        kind: [stack.flask("users", "token", email).strip() for email in emails]
        for kind, emails in TOKENS.items()
    }


def _get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _post(url: str, token: str, body: Any) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


@contextmanager
def gunicorn(stack: Stack) -> Iterator[Path]:
    """gunicorn with gunicorn.conf.py on the stack's port, until the block ends; its log."""
    log = stack.folder / "server.log"
    env = {**stack.env, "GUNICORN_BIND": f"127.0.0.1:{stack.port}", "GUNICORN_WORKERS": WORKERS}
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while _ready(stack) != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not become ready: see {log}")
            time.sleep(0.2)
        yield log
    finally:
        _stop(server)


def _ready(stack: Stack) -> int:
    with suppress(OSError):
        return _get(f"{stack.base}/readyz", timeout=2)[0]
    return 0


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def first_due(stack: Stack, tokens: dict[str, list[str]]) -> datetime:
    """File and submit one reference handover; its due_at starts the scheduler's clock."""
    token = tokens["edt"][0]
    _, created = _post(f"{stack.base}/api/v1/handovers", token, reference())
    _, submitted = _post(f"{stack.base}/api/v1/handovers/{created['id']}/submit", token, {})
    return datetime.fromisoformat(submitted["due_at"].replace("Z", "+00:00"))


@contextmanager
def ticking(stack: Stack, due: datetime) -> Iterator[list[int]]:
    """Tick every TICK_EVERY seconds with --now on a clock that starts at ``due``; tick count."""
    stop, ticks = threading.Event(), [0]
    offset = max(due - datetime.now(UTC), timedelta(0)) + timedelta(seconds=1)

    def run() -> None:
        while not stop.wait(TICK_EVERY):
            moment = (datetime.now(UTC) + offset).isoformat().replace("+00:00", "Z")
            stack.flask("scheduler", "tick", "--now", moment)
            ticks[0] += 1

    thread = threading.Thread(target=run, name="ticker", daemon=True)
    thread.start()
    try:
        yield ticks
    finally:
        stop.set()
        thread.join(timeout=120)


def run_locust(stack: Stack, tokens: dict[str, list[str]]) -> tuple[Path, int]:
    """locust headless for SECONDS; the prefix of its final JSON stats, and its exit code.

    The JSON file holds the stats of the whole run, written after the last user stopped (the CSV
    files are snapshots every two seconds and may miss the last requests and failures).
    """
    prefix = stack.folder / "locust"
    env = {**stack.env, "HANDOVER_LOAD_TOKENS": json.dumps(tokens)}
    command = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(USERS),
        "--spawn-rate",
        str(max(USERS // 4, 1)),
        "--run-time",
        f"{SECONDS}s",
        "--stop-timeout",
        "10",
        "--host",
        stack.base,
        "--json-file",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, timeout=SECONDS + 120, check=False)
    return prefix, done.returncode


@dataclass
class Endpoint:
    """One endpoint's figures over the whole run, from locust's final stats."""

    name: str
    requests: int
    failures: int
    seconds: float
    response_times: dict[int, int]  # milliseconds (as locust rounds them) -> requests

    def percentile(self, fraction: float) -> int:
        """The response time (ms) under which ``fraction`` of requests were answered."""
        wanted, seen = self.requests * fraction, 0
        for milliseconds in sorted(self.response_times):
            seen += self.response_times[milliseconds]
            if seen >= wanted:
                return milliseconds
        return 0


def read_stats(prefix: Path) -> list[Endpoint]:
    """Every endpoint, then "Aggregated" over all of them, from locust's --json-file."""
    entries = json.loads(Path(f"{prefix}.json").read_text())
    endpoints = [
        Endpoint(
            name=entry["name"],
            requests=entry["num_requests"],
            failures=entry["num_failures"],
            seconds=max((entry["last_request_timestamp"] or 0) - entry["start_time"], 1.0),
            response_times={int(ms): n for ms, n in entry["response_times"].items()},
        )
        for entry in sorted(entries, key=lambda entry: entry["name"])
    ]
    merged: dict[int, int] = {}
    for endpoint in endpoints:
        for ms, n in endpoint.response_times.items():
            merged[ms] = merged.get(ms, 0) + n
    total = Endpoint(
        name="Aggregated",
        requests=sum(e.requests for e in endpoints),
        failures=sum(e.failures for e in endpoints),
        seconds=max((e.seconds for e in endpoints), default=1.0),
        response_times=merged,
    )
    return [*endpoints, total]


@dataclass
class Result:
    """What one database's run showed."""

    name: str
    endpoints: list[Endpoint]
    locust_exit: int
    server_errors: int
    locked: int
    operational: int
    ticks: int
    statuses: dict[str, int]

    @property
    def failures(self) -> int:
        """Requests locust counted as failed."""
        return self.endpoints[-1].failures

    @property
    def undelivered(self) -> int:
        """Handovers still scheduled after the final tick: delivery fell behind or failed."""
        return self.statuses.get("scheduled", 0)

    @property
    def ok(self) -> bool:
        """No failure, no 5xx, no lock error, everything submitted delivered."""
        return not (
            self.failures
            or self.locust_exit
            or self.server_errors
            or self.locked
            or self.operational
            or self.undelivered
        )


def read_log(log: Path) -> tuple[int, int, int]:
    """5xx answers, "database is locked" lines and OperationalError lines in the server log."""
    server_errors = locked = operational = 0
    for line in log.read_text(errors="replace").splitlines():
        locked += "database is locked" in line
        operational += "OperationalError" in line
        with suppress(ValueError):
            entry = json.loads(line)
            if entry.get("logger") == "handover.access" and int(entry.get("status", 0)) >= 500:
                server_errors += 1
    return server_errors, locked, operational


def statuses(stack: Stack, token: str) -> dict[str, int]:
    """Handovers by status at the end, as the EDT team sees them."""
    counts: dict[str, int] = {}
    offset = 0
    while True:
        status, body = _get(f"{stack.base}/api/v1/handovers?limit=500&offset={offset}", token)
        rows = body["handovers"] if status == 200 else []
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        if len(rows) < 500:
            return counts
        offset += 500


def run_one(name: str, database_url: str, folder: Path) -> Result:
    """Prepare, serve, tick and load one database."""
    stack = Stack(name=name, folder=folder, env=_environment(folder, database_url))
    tokens = prepare(stack)
    with gunicorn(stack) as log:
        due = first_due(stack, tokens)
        with ticking(stack, due) as ticks:
            prefix, exit_code = run_locust(stack, tokens)
        ends = max(due, datetime.now(UTC)) + timedelta(minutes=5)
        stack.flask("scheduler", "tick", "--now", _iso(ends))
        counts = statuses(stack, tokens["edt"][0])
    server_errors, locked, operational = read_log(log)
    return Result(
        name, read_stats(prefix), exit_code, server_errors, locked, operational, ticks[0], counts
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def report(result: Result) -> None:
    """Print one database's figures."""
    print(f"\n== gunicorn ({WORKERS} workers) + {result.name}: {USERS} users, {SECONDS} s ==")
    print(f"{'endpoint':36} {'requests':>9} {'failed':>7} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>7}")
    for row in result.endpoints:
        print(
            f"{row.name:36} {row.requests:>9} {row.failures:>7} {row.percentile(0.5):>7} "
            f"{row.percentile(0.99):>7} {row.requests / row.seconds:>7.1f}"
        )
    print(
        f"locust exit: {result.locust_exit}   server 5xx: {result.server_errors}   "
        f"'database is locked': {result.locked}   OperationalError: {result.operational}   "
        f"scheduler ticks: {result.ticks}"
    )
    print("handovers by status at the end: " + json.dumps(result.statuses, sort_keys=True))


def main() -> int:
    """Run every database named in LOAD_DATABASES; 1 if any showed an error."""
    results = []
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} before the run")
    for name in os.environ.get("LOAD_DATABASES", "postgres sqlite").split():
        with tempfile.TemporaryDirectory(prefix=f"handover-load-{name}-") as temp:
            folder = Path(temp)
            if name == "postgres":
                with postgres_database() as url:
                    results.append(run_one("PostgreSQL", url, folder))
            else:
                results.append(run_one("SQLite", f"sqlite:///{folder}/handover.db", folder))
            report(results[-1])
    failed = [result.name for result in results if not result.ok]
    print("\nload: " + ("errors on " + ", ".join(failed) if failed else "no errors"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
