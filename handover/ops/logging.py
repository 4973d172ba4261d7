"""Structured logs: one JSON object per line (or readable text), each with its request's id.

A line carries a fixed list of fields, all of them ids, codes or numbers: the request id, method,
path without its query string, endpoint, status, duration and the user's id. Nothing passed in
``extra=`` outside that list is written. Exceptions appear as their types and stack frames, never
their messages, which could hold a value. Nothing here runs at import: create_app calls configure().
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request
from flask.logging import default_handler

FORMATS = ("json", "text")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REQUEST_ID_HEADER = "X-Request-Id"
# The only fields a line carries besides time, level, logger and message.
CONTEXT_FIELDS = ("request_id", "method", "path", "endpoint", "status", "duration_ms", "user_id")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_CHAIN_SEPARATOR = "\n\nThe above exception led to the following:\n\n"


def log_format(config: Mapping[str, Any]) -> str:
    """LOG_FORMAT, or by default "json" in production and "text" elsewhere; refuse anything else."""
    value = config.get("LOG_FORMAT") or ("json" if config.get("ENV") == "production" else "text")
    if value not in FORMATS:
        raise RuntimeError('LOG_FORMAT must be "json" or "text"')
    return str(value)


def log_level(config: Mapping[str, Any]) -> str:
    """LOG_LEVEL (default INFO), upper-cased; refuse a name logging does not know."""
    value = str(config.get("LOG_LEVEL") or "INFO").upper()
    if value not in LEVELS:
        raise RuntimeError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}")
    return value


def request_id() -> str:
    """The current request's id: the client's well-formed X-Request-Id, else a new one."""
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    value: str = g.request_id
    return value


def user_id() -> str | None:
    """The signed-in user's id, read from the identity map so that logging never queries."""
    user = g.get("user")
    state = sa.inspect(user, raiseerr=False) if user is not None else None
    identity = state.identity if state is not None else None
    return str(identity[0]) if identity else None


def format_exception(error: BaseException) -> str:
    """A traceback naming each exception's type but not its message, which could hold a value."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.StackSummary.extract(traceback.walk_tb(current.__traceback__))
        kind = type(current)
        parts.append(
            "Traceback (most recent call last):\n"
            + "".join(frames.format())
            + f"{kind.__module__}.{kind.__qualname__}"
        )
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    return _CHAIN_SEPARATOR.join(reversed(parts))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields of a line: from the request being served, then from ``extra=``."""
    fields: dict[str, Any] = {}
    if has_request_context():
        fields.update(
            request_id=g.get("request_id"),
            method=request.method,
            path=request.path,
            user_id=user_id(),
        )
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return {name: value for name, value in fields.items() if value is not None}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception_fields(record: logging.LogRecord) -> dict[str, str]:
    fields = {}
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        fields["exc_type"] = f"{type(error).__module__}.{type(error).__qualname__}"
        fields["traceback"] = format_exception(error)
    if record.stack_info:
        fields["stack"] = record.stack_info
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single line of JSON."""
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        entry.update(_exception_fields(record))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for development, with the same fields and the same safe tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as ``time LEVEL logger message key=value ...``."""
        context = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        line = f"{line} [{context}]" if context else line
        extra = _exception_fields(record)
        if "traceback" in extra:
            line = f"{line}\n{extra['traceback']}"
        if "stack" in extra:
            line = f"{line}\n{extra['stack']}"
        return line


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the process's standard error, looked up at each line.

    ``sys.__stderr__`` rather than ``sys.stderr``: a tool that swaps ``sys.stderr`` to capture a
    command's own output (click's CliRunner) must not collect the process's log lines with it.
    """

    @property
    def stream(self) -> TextIO:
        """The process's standard error."""
        return sys.__stderr__ or sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignore StreamHandler's own assignment: the stream is always the current stderr."""


class _WithoutWerkzeugRequestLines(logging.Filter):
    """Drop the development server's request line: it carries the query string, ours does not."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every werkzeug line but the per-request one."""
        return record.msg != '"%s" %s %s'


def make_formatter(name: str) -> logging.Formatter:
    """The formatter for a LOG_FORMAT value."""
    return JsonFormatter() if name == "json" else TextFormatter()


def configure(app: Flask) -> None:
    """Send every log line through one handler on the root logger, formatted as configured."""
    formatter = make_formatter(log_format(app.config))
    level = log_level(app.config)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    app.logger.removeHandler(default_handler)  # lines reach the root handler instead
    # APScheduler logs two INFO lines per tick per process; our tick logs what it did instead.
    logging.getLogger("apscheduler").setLevel(level if level == "DEBUG" else "WARNING")
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _WithoutWerkzeugRequestLines) for f in werkzeug.filters):
        werkzeug.addFilter(_WithoutWerkzeugRequestLines())


ACCESS_LOGGER = logging.getLogger("handover.access")
QUIET_ENDPOINTS = frozenset({"ops.healthz", "ops.readyz", "metrics.scrape"})


def log_request(*, status: int, endpoint: str, duration_ms: float) -> None:
    """Write the access line of the request being answered (probes and scrapes at DEBUG)."""
    quiet = endpoint in QUIET_ENDPOINTS and status < 400
    ACCESS_LOGGER.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={"status": status, "endpoint": endpoint, "duration_ms": duration_ms},
    )
