"""Create: throughput of ``POST /api/v1/handovers`` over a bare Flask + SQLAlchemy baseline.

Both apps run under gunicorn with the service's ``gunicorn.conf.py`` (same workers, sync, on
127.0.0.1) on their own SQLite file with the service's settings (``handover.db.make_engine``). The
same client (Python ``requests`` sessions, keep-alive, ``THREADS`` threads) sends the reference
fixture ``ROUNDS`` times ``REQUESTS`` to each, alternating which goes first, and every answer must
be a 201. The figure is the service's requests per second over the baseline's. Target >= 0.5.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench import baseline_app, common
from handover import crypto
from handover.config import PROJECT_ROOT

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "reference-handover.json"
THREADS = 8
REQUESTS = 1200
WARMUP = 100
ROUNDS = 3
TARGET = 0.5
START_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _clean_env() -> dict[str, str]:
    """This environment without settings that would point either app elsewhere.

    GUNICORN_WORKERS and GUNICORN_TIMEOUT stay: both servers get the same.
    """
    prefixes = ("HANDOVER_", "PROMETHEUS_", "BENCH_", "GUNICORN_BIND", "GUNICORN_ACCESS_LOG")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


class Server:
    """One gunicorn, started as production starts it, answering on a loopback port."""

    def __init__(self, name: str, app_uri: str | None, env: dict[str, str], log: Path) -> None:
        self.name, self.port = name, _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1/handovers"
        command = [str(Path(sys.executable).parent / "gunicorn")]
        if app_uri:
            command.append(app_uri)
        self.log = log
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**_clean_env(), **env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait(self, headers: dict[str, str], body: bytes) -> None:
        """Until a create answers 201 (every worker has booted by the end of the warm-up)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.post(self.url, data=body, headers=headers, timeout=10).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, as an operator would; wait for the workers to finish."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def load(url: str, headers: dict[str, str], body: bytes, count: int) -> float:
    """Send ``count`` creates from ``THREADS`` threads; returns the seconds; all must be 201."""
    failures: list[str] = []
    per_thread = [count // THREADS + (1 if i < count % THREADS else 0) for i in range(THREADS)]
    barrier = threading.Barrier(THREADS + 1)

    def work(n: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(n):
                response = session.post(url, data=body, headers=headers, timeout=60)
                if response.status_code != 201:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=work, args=(n,)) for n in per_thread]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return seconds


def _start(folder: Path) -> tuple[Server, Server, str]:
    """The service (demo directory, a token for the EDT worker) and the baseline, serving."""
    keyring = crypto.generate_keyring()
    url = f"sqlite:///{folder}/handover.db"
    app = common.make_app(url, folder, keyring)
    common.load_directory(app)
    token = common.issue_token(app, common.EDT_WORKER)
    app.extensions["handover.engine"].dispose()
    baseline_url = f"sqlite:///{folder}/baseline.db"
    baseline_app.create_schema(baseline_url)
    service = Server(
        "handover",
        None,  # gunicorn.conf.py's own wsgi_app: wsgi:app
        {
            "HANDOVER_DATABASE_URL": url,
            "HANDOVER_INSTANCE_PATH": str(folder),
            "HANDOVER_KEYRING": keyring.to_json(),
        },
        folder / "handover-gunicorn.log",
    )
    baseline = Server(
        "baseline",
        "bench.baseline_app:create_app()",
        {"BENCH_BASELINE_DATABASE_URL": baseline_url},
        folder / "baseline-gunicorn.log",
    )
    return service, baseline, token


def run() -> dict[str, Any]:
    """Alternate rounds between the two servers; returns the rates."""
    body = FIXTURE.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        service, baseline, token = _start(Path(tmp))
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        try:
            for server in (baseline, service):
                server.wait(headers, body)
                load(server.url, headers, body, WARMUP)
            seconds: dict[str, float] = {"baseline": 0.0, "handover": 0.0}
            rounds = []
            for number in range(ROUNDS):
                order = (baseline, service) if number % 2 == 0 else (service, baseline)
                taken = {s.name: load(s.url, headers, body, REQUESTS) for s in order}
                rounds.append({name: REQUESTS / s for name, s in taken.items()})
                for name, value in taken.items():
                    seconds[name] += value
                print(
                    f"create round {number + 1}: baseline {rounds[-1]['baseline']:.0f} req/s, "
                    f"handover {rounds[-1]['handover']:.0f} req/s",
                    flush=True,
                )
        finally:
            service.stop()
            baseline.stop()
    rates = {name: ROUNDS * REQUESTS / value for name, value in seconds.items()}
    return {
        "rounds": rounds,
        "baseline_per_second": rates["baseline"],
        "handover_per_second": rates["handover"],
        "ratio": rates["handover"] / rates["baseline"],
    }


def main() -> int:
    """Print both rates side by side; the summary line last."""
    # Stopped with SIGTERM (make bench interrupted): unwind, so that both gunicorns stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workers = os.environ.get("GUNICORN_WORKERS") or str(2 * (os.cpu_count() or 1))
    print(
        f"create: gunicorn.conf.py ({workers} sync workers) on 127.0.0.1, SQLite each; "
        f"{THREADS} client threads; {ROUNDS} rounds of {REQUESTS} POSTs of the "
        f"{FIXTURE.stat().st_size:,}-byte reference record per app",
        flush=True,
    )
    result = run()
    common.save_result("create", result)
    print(
        f"create baseline (bare Flask + SQLAlchemy): {result['baseline_per_second']:.0f} req/s; "
        f"handover: {result['handover_per_second']:.0f} req/s; ratio {result['ratio']:.2f}"
    )
    print(common.summary("create", "ratio", result["ratio"], ">=", TARGET, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
