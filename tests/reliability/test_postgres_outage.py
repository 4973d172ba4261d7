"""PostgreSQL goes away under write load and comes back: nothing acknowledged is lost.

The test runs a PostgreSQL server of its own (initdb into a temporary folder, a free port on
127.0.0.1, as the postgres user when run as root, fsync on), never the shared test server. gunicorn
serves the application on it while EDT clients file handovers; the server is stopped with
``pg_ctl stop -m immediate`` (a crash: no shutdown checkpoint) and started again. Then:

- every write that was answered 2xx is in the database;
- /readyz said 503 naming ``database`` during the outage, and 200 again after it;
- the same gunicorn workers, never restarted, write again: the pool reconnects by itself.

Every wait is bounded; the server, gunicorn and the clients are stopped in teardown.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from handover import create_app, crypto, migrate
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.records.models import Handover
from handover.timeutil import now
from tests.conftest import DEMO_USERS, PG_URL
from tests.delivery.conftest import record_for
from tests.notifications.conftest import free_port
from tests.reliability.conftest import Processes, children, wait_until

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: HANDOVER_TEST_DATABASE_URL")

CLIENTS = 4
REQUEST_SECONDS = 10  # each client request's timeout
WAIT_SECONDS = 60  # each wait for a state of the system


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    return Path(found[-1])


def _as_postgres(command: Sequence[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else list(command)


@dataclass
class Server:
    """A PostgreSQL server of the test's own."""

    data: Path
    port: int
    bin: Path = field(default_factory=_pg_bin)

    @property
    def url(self) -> str:
        """Its postgres database; connect_timeout as the README advises."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?connect_timeout=2"

    def ctl(self, *args: str) -> None:
        """Run pg_ctl on the data folder (bounded)."""
        command = _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=WAIT_SECONDS)

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.data} -c max_connections=60"
        )
        self.ctl("-l", str(self.data / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def crash(self) -> None:
        """Stop it at once, as a crash would: no shutdown checkpoint."""
        self.ctl("-w", "stop", "-m", "immediate")


@pytest.fixture
def server() -> Iterator[Server]:
    """initdb into a folder of its own (owned by postgres when root); stopped and removed after."""
    data = Path(tempfile.mkdtemp(prefix="handover-outage-pg-"))
    if os.getuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    found = Server(data=data, port=free_port())
    initdb = [str(found.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(
        _as_postgres([*initdb, "--no-sync", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    found.start()
    try:
        yield found
    finally:
        subprocess.run(
            _as_postgres([str(found.bin / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate"]),
            capture_output=True,
            timeout=WAIT_SECONDS,
        )
        shutil.rmtree(data, ignore_errors=True)


def _prepare(url: str, keyring: crypto.Keyring, folder: Path) -> str:
    """Migrate, load the demo directory; an API token for the EDT worker."""
    app = create_app({"DATABASE_URL": url, "KEYRING": keyring.to_json(), "INSTANCE_PATH": folder})
    data = tomllib.loads((PROJECT_ROOT / "config" / "directory.example.toml").read_text())
    with app.app_context():
        migrate.upgrade()
        with transaction() as session:
            directory.load_directory(session, data, now=now())
            user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
            assert user is not None
            token = directory.issue_token(session, user=user, now=now())
    app.extensions["handover.engine"].dispose()
    return token


def _stored(url: str, ids: list[str]) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            query = sa.select(Handover.id).where(Handover.id.in_(ids))
            return set(connection.scalars(query))
    finally:
        engine.dispose()


@dataclass
class Writers:
    """EDT clients filing handovers in a loop: what the service acknowledged, what it refused."""

    base: str
    token: str
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        """File the reference record until told to stop."""
        with requests.Session() as client:
            client.headers["Authorization"] = f"Bearer {self.token}"
            while not self.stop.is_set():
                self._file(client)

    def _file(self, client: requests.Session) -> None:
        try:
            answer = client.post(
                f"{self.base}/api/v1/handovers", json=record_for(), timeout=REQUEST_SECONDS
            )
        except requests.RequestException:
            answer = None
        with self.lock:
            if answer is not None and 200 <= answer.status_code < 300:
                self.acknowledged.append(answer.json()["id"])
            else:
                self.refused += 1
        if answer is None or answer.status_code >= 500:
            time.sleep(0.05)  # the database is away: do not spin

    def count(self) -> int:
        """Writes acknowledged so far."""
        with self.lock:
            return len(self.acknowledged)


def _readiness(base: str) -> tuple[int, Any]:
    try:
        answer = requests.get(f"{base}/readyz", timeout=REQUEST_SECONDS)
    except requests.RequestException:
        return 0, None
    return answer.status_code, answer.json()


def _serve(processes: Processes, url: str, keyring: crypto.Keyring, folder: Path) -> str:
    """gunicorn with gunicorn.conf.py and two workers; its address once ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOVER_", "GUNICORN_"))}
    env.update(
        HANDOVER_DATABASE_URL=url,
        HANDOVER_KEYRING=keyring.to_json(),
        HANDOVER_INSTANCE_PATH=str(folder),
        HANDOVER_LOG_LEVEL="WARNING",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    processes.start("gunicorn", [gunicorn, "-c", "gunicorn.conf.py"], env)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _readiness(base)[0] == 200, seconds=WAIT_SECONDS, what="gunicorn ready")
    return base


def test_no_acknowledged_write_is_lost_and_the_service_reconnects(
    server: Server, processes: Processes, keyring: crypto.Keyring, tmp_path: Path
) -> None:
    token = _prepare(server.url, keyring, tmp_path)
    base = _serve(processes, server.url, keyring, tmp_path)
    workers = children(processes.started[0].pid)
    writers = Writers(base, token)
    threads = [threading.Thread(target=writers.run, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: writers.count() >= 20, seconds=WAIT_SECONDS, what="writes before")
        server.crash()
        before = writers.count()
        wait_until(lambda: _readiness(base)[0] == 503, seconds=WAIT_SECONDS, what="503 readyz")
        status, outage = _readiness(base)
        # The clients keep writing into the outage: their writes are refused, not queued.
        wait_until(lambda: writers.refused > 0, seconds=WAIT_SECONDS, what="refused writes")
        refused_during = writers.refused
        server.start()
        wait_until(lambda: _readiness(base)[0] == 200, seconds=WAIT_SECONDS, what="200 readyz")
        recovered = _readiness(base)
        wait_until(lambda: writers.count() >= before + 20, seconds=WAIT_SECONDS, what="writes")
    finally:
        writers.stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_SECONDS + 5)
    assert status == 503
    assert outage["failed"] == ["database"]
    assert outage["checks"]["database"] == "unreachable"
    assert refused_during > 0  # the outage was real: writes were refused, not queued and lost
    assert recovered[1]["status"] == "ready"
    assert set(recovered[1]["checks"].values()) == {"ok"}
    acknowledged = list(writers.acknowledged)
    print(f"outage: {len(acknowledged)} writes acknowledged, {writers.refused} refused")
    assert len(acknowledged) == len(set(acknowledged))
    missing = set(acknowledged) - _stored(server.url, acknowledged)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    # The same workers wrote before and after: their pools reconnected, nothing was restarted.
    assert children(processes.started[0].pid) == workers
