"""Crash tests' equipment: real processes that are SIGKILLed, real receivers, and the evidence.

Every process a test starts goes through ``processes`` and is killed in teardown, even when the
test fails. Sizes fit CI; ``HANDOVER_SOAK=1`` (``make soak``) multiplies the counts by
``HANDOVER_SOAK_SCALE`` (default 10).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from handover import crypto
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.records import service as records
from handover.timeutil import now
from tests.conftest import DEMO_USERS
from tests.delivery.conftest import record_for
from tests.notifications.conftest import LOOPBACK, Mailbox, free_port

SOAK = os.environ.get("HANDOVER_SOAK", "") not in ("", "0")
SCALE = int(os.environ.get("HANDOVER_SOAK_SCALE", "10")) if SOAK else 1
FLASK = str(Path(sys.executable).with_name("flask"))
STOP_SECONDS = 30
# The receivers take this long over each notification: a sender is caught in the middle of one.
RECEIVE_SECONDS = 0.02
TEAM = "northvale-east-fst"  # has a team manager and a service manager: both levels notify


def scaled(count: int) -> int:
    """A CI-sized count, multiplied for a soak run."""
    return count * SCALE


def wait_until(
    condition: Callable[[], bool], *, seconds: float, what: str, every: float = 0.05
) -> None:
    """Poll until ``condition`` holds; fail after ``seconds`` (a hang, never a slow run)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds:g} s waiting for {what}")
        time.sleep(every)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # Field 4 is the parent's pid; the name in brackets may itself hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def established(*, local_port: int | None = None, remote_port: int | None = None) -> set[str]:
    """Socket inodes of this machine's established IPv4 TCP connections with the given ends."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(end.rsplit(":", 1)[1], 16) for end in fields[1:3])
        if fields[3] == "01" and local_port in (None, local) and remote_port in (None, remote):
            inodes.add(fields[9])
    return inodes


def holds_socket(pid: int, inodes: set[str]) -> bool:
    """Whether process ``pid`` has one of the sockets ``inodes`` open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False  # gone
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


class Processes:
    """Starts processes in their own process groups and ends every one of them at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: Sequence[str], env: dict[str, str]) -> Proc:
        """Start ``command`` from the project root; its output goes to ``<name>.log``."""
        log = self.folder / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                list(command),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return Proc(name, process, log)

    def kill_all(self) -> None:
        """SIGKILL every process group still alive (gunicorn's workers are in their master's)."""
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class Proc:
    """One started process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, at once, wherever it is."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STOP_SECONDS)

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Ask it to stop; SIGKILL if it has not within STOP_SECONDS. Returns the exit code."""
        if self.alive():
            self.popen.send_signal(sig)
            try:
                return self.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Processes started by the test; all of them killed afterwards, pass or fail."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@dataclass
class Hook:
    """One webhook POST as received."""

    webhook_id: str
    body: bytes


class SlowMailbox(Mailbox):
    """A mailbox that takes a moment over each message, as a real mail server does."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(RECEIVE_SECONDS)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Receivers:
    """A real SMTP server and a real webhook receiver on loopback, recording what arrives."""

    mailbox: Mailbox
    smtp_port: int
    webhook_url: str
    webhook_port: int = 0
    hooks: list[Hook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mail_ids(self) -> dict[str, list[tuple[str, str]]]:
        """Message-ID → (To, Subject) of every copy received."""
        seen: dict[str, list[tuple[str, str]]] = {}
        for mail in list(self.mailbox.mails):
            message = mail.message
            seen.setdefault(str(message["Message-ID"]), []).append(
                (str(message["To"]), str(message["Subject"]))
            )
        return seen

    def hook_ids(self) -> dict[str, list[bytes]]:
        """Webhook-Id → body of every copy received."""
        with self.lock:
            hooks = list(self.hooks)
        seen: dict[str, list[bytes]] = {}
        for hook in hooks:
            seen.setdefault(hook.webhook_id, []).append(hook.body)
        return seen


def _hook_handler(receivers: Receivers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(RECEIVE_SECONDS)
            with receivers.lock:
                receivers.hooks.append(Hook(self.headers.get("Webhook-Id", ""), body))
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:
                pass  # the sender was killed while we answered: it will retry

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receivers(app: Flask) -> Iterator[Receivers]:
    """SMTP and webhook receivers on loopback; the test's app sends its own mail there too."""
    mailbox, port = SlowMailbox(), free_port()
    controller = Controller(mailbox, hostname=LOOPBACK, port=port)
    controller.start()
    found = Receivers(mailbox, port, "")
    server = ThreadingHTTPServer((LOOPBACK, 0), _hook_handler(found))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.webhook_port = server.server_address[1]
    found.webhook_url = f"http://{LOOPBACK}:{found.webhook_port}/hooks/handover"
    app.config.update(MAIL_HOST=LOOPBACK, MAIL_PORT=port, MAIL_TIMEOUT_SECONDS=5)
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        controller.stop()


@pytest.fixture
def process_env(
    app: Flask, database_url: str, keyring: crypto.Keyring, receivers: Receivers
) -> dict[str, str]:
    """What a separate `flask --app handover` or gunicorn process needs for this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOVER_")}
    return {
        **env,
        "HANDOVER_DATABASE_URL": database_url,
        "HANDOVER_KEYRING": keyring.to_json(),
        "HANDOVER_INSTANCE_PATH": app.instance_path,
        "HANDOVER_MAIL_HOST": LOOPBACK,
        "HANDOVER_MAIL_PORT": str(receivers.smtp_port),
        "HANDOVER_MAIL_TIMEOUT_SECONDS": "5",
        "HANDOVER_WEBHOOK_TIMEOUT_SECONDS": "5",
        "HANDOVER_LOG_LEVEL": "WARNING",
    }


def drafts(app: Flask, count: int, *, team: str = TEAM) -> list[str]:
    """``count`` drafts of the reference record for ``team``, created in one transaction."""
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["edt_worker"])
        assert user is not None
        return [
            records.create(session, user=user, payload=record_for(team), now=now()).id
            for _ in range(count)
        ]


def audit_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`flask --app handover audit verify`, as an operator runs it."""
    return subprocess.run(
        [FLASK, "--app", "handover", "audit", "verify"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def report(name: str, facts: dict[str, Any]) -> None:
    """One line of what a crash test did (shown by `make soak`, or with -rP)."""
    print(f"{name}: {json.dumps(facts, sort_keys=True)}")
