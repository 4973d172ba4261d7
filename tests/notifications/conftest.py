"""Real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP webhook receiver."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask

from handover.db import transaction
from handover.notifications import service
from handover.notifications.models import OutboxMessage
from handover.records.models import Handover
from tests.conftest import Api, reference_record

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday, inside working hours
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on (until someone binds it)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Mail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class Mailbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), raw, message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(app: Flask) -> Iterator[Mailbox]:
    """A real SMTP server on loopback; the app sends its mail there."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname=LOOPBACK, port=port)
    controller.start()
    app.config.update(MAIL_HOST=LOOPBACK, MAIL_PORT=port)
    yield mailbox
    controller.stop()


@dataclass
class Request:
    """One POST as the webhook receiver saw it (header names lower-cased)."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: answers each request by the next step of its script, then ``default``.

    A step is an HTTP status, or "timeout" to sleep past the client's timeout before answering.
    """

    script: list[int | str]
    default: int = 200
    delay: float = 0.0
    sleep: float = 2.0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_step(self, request: Request) -> int | str:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.default


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            step = receiver.next_step(Request(headers, body))
            time.sleep(receiver.delay)
            if step == "timeout":
                time.sleep(receiver.sleep)
                step = 200
            try:
                self.send_response(int(step))
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as it should

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    """Start webhook receivers on loopback; each is stopped (and its threads joined) after."""
    servers: list[ThreadingHTTPServer] = []

    def start(script: Sequence[int | str] = (), **options: Any) -> Receiver:
        receiver = Receiver(list(script), **options)
        server = ThreadingHTTPServer((LOOPBACK, 0), _handler(receiver))
        server.daemon_threads = False
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        receiver.url = f"http://{LOOPBACK}:{server.server_address[1]}/hooks/handover"
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def submitted(app: Flask, api: Api) -> Handover:
    """Create and submit the reference handover through the API; return its row."""
    created = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()
    response = api.post(f"/handovers/{created['id']}/submit", as_="edt_worker")
    assert response.status_code == 200, response.get_json()
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, created["id"])
        assert handover is not None
        return handover


def enqueue(app: Flask, *, handover_id: str | None = None, **options: Any) -> None:
    """Enqueue a notification in a transaction of its own, as a business transaction would."""
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id) if handover_id else None
        service.enqueue(session, handover=handover, **options)


def outbox(app: Flask, **where: Any) -> list[OutboxMessage]:
    """The outbox rows, oldest first, optionally filtered by column values."""
    with app.app_context(), transaction() as session:
        query = sa.select(OutboxMessage).filter_by(**where)
        return list(session.scalars(query.order_by(OutboxMessage.created_at, OutboxMessage.id)))


def send_due(app: Flask, now: datetime) -> int:
    """Run one sender pass in the app, as the tick does."""
    with app.app_context():
        return service.send_due(now=now)
