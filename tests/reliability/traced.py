"""Run a command line with its database transactions traced to a file, so a test can tell where a
SIGKILL landed: ``python -m tests.reliability.traced TRACE_FILE flask --app handover …``.

The command runs unchanged (the same ``flask`` entry point, the same code). SQLAlchemy's engine
events append one line per step, written straight to the file with no buffer, so whatever a killed
process had done is on disk:

- ``B <monotonic seconds>`` when a transaction has run its first statement (on SQLite that
  statement is ``BEGIN IMMEDIATE``: the write lock is held);
- ``S <statement>`` for each statement: SQL text only (parameters are bound, never part of it);
  statements that ``handover.prepared`` runs on SQLite's driver pass no engine event and are
  not listed (they write events, audit entries and the like, never a claim);
- ``C <seconds>`` or ``R <seconds>`` just *before* the commit or rollback is sent.

A trace whose last transaction has no ``C`` or ``R`` was killed inside it, before it committed.
This is a test instrument: production code has no hook of any kind.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

STATEMENT_CHARS = 100


def install(path: str) -> None:
    """Trace every engine this process creates from now on to ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    @event.listens_for(Engine, "after_cursor_execute")
    def statement(
        conn: Connection, cursor: Any, text: str, params: Any, context: Any, many: bool
    ) -> None:
        if not conn.info.get("traced_open"):
            conn.info["traced_open"] = True
            write(f"B {time.monotonic():.4f}")
        write("S " + " ".join(text.split())[:STATEMENT_CHARS])

    @event.listens_for(Engine, "commit")
    def commit(conn: Connection) -> None:
        conn.info["traced_open"] = False
        write(f"C {time.monotonic():.4f}")

    @event.listens_for(Engine, "rollback")
    def rollback(conn: Connection) -> None:
        conn.info["traced_open"] = False
        write(f"R {time.monotonic():.4f}")


def main() -> None:
    """Install the trace, then run the rest of the command line as the ``flask`` command."""
    if len(sys.argv) < 3 or sys.argv[2] != "flask":
        sys.exit("usage: python -m tests.reliability.traced TRACE_FILE flask ARGS...")
    install(sys.argv[1])
    from flask.cli import main as flask_main

    sys.argv = sys.argv[2:]
    flask_main()


if __name__ == "__main__":
    main()
