"""Operations tests: every app here logs JSON, as in production."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps built in these tests log JSON lines (autouse: set before any app is created)."""
    monkeypatch.setenv("HANDOVER_LOG_FORMAT", "json")


def closed_port() -> int:
    """A loopback TCP port on which nothing listens (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
