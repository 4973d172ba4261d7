"""Liveness and readiness for load balancers and orchestrators.

/healthz says the process answers. /readyz says this process can do its job: the database
answers, the keyring is loaded and the database's migrations are the code's heads. Answers name
checks and their outcome only: never a connection string, a key id or an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.engine import Engine

from handover import crypto, db
from handover.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

_HEADS = "handover.ops.heads"
STATEMENT_TIMEOUT_MS = 2000
Revisions = set[str]


def _script_revisions(app: Flask) -> tuple[frozenset[str], frozenset[str]]:
    """The migration scripts' heads and every revision they know, read once per process."""
    if _HEADS not in app.extensions:
        config = Config()
        config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
        script = ScriptDirectory.from_config(config)
        known = frozenset(rev.revision for rev in script.walk_revisions())
        app.extensions[_HEADS] = (frozenset(script.get_heads()), known)
    result: tuple[frozenset[str], frozenset[str]] = app.extensions[_HEADS]
    return result


def _catalogue_query(engine: Engine) -> str:
    if engine.dialect.name == "postgresql":
        return "SELECT to_regclass('alembic_version') IS NOT NULL"
    return (
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    )


def read_revisions(engine: Engine) -> Revisions:
    """The revisions recorded in alembic_version (empty if it has none), through a raw connection.

    A raw connection runs no ``BEGIN IMMEDIATE``: a probe must not queue for SQLite's write lock.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        cursor.execute(_catalogue_query(engine))
        row = cursor.fetchone()
        if not (row and row[0]):
            return set()
        cursor.execute("SELECT version_num FROM alembic_version")
        return {str(found[0]) for found in cursor.fetchall()}
    finally:
        connection.close()  # back to the pool, which rolls back: SET LOCAL ends with it


def _migration_state(found: Revisions, heads: frozenset[str], known: frozenset[str]) -> str:
    if found == heads:
        return "ok"
    if found - known:
        return "unknown_revision"  # the database is newer than this code
    return "behind"


def _keys_state() -> str:
    try:
        crypto.current_keyring()
    except crypto.CryptoError:
        return "missing"
    return "ok"


def _attempt(name: str, check: Callable[[], Any]) -> tuple[bool, Any]:
    """Run a check; any failure means not ready, logged by type only (messages hold URLs)."""
    try:
        return True, check()
    except Exception as error:
        logger.warning("readiness: %s check failed (%s)", name, type(error).__name__)
        return False, None


def readiness() -> dict[str, str]:
    """Each check's outcome: "ok", or a word saying what is wrong."""
    checks = {"keys": _keys_state()}
    reached, found = _attempt("database", lambda: read_revisions(db.engine()))
    checks["database"] = "ok" if reached else "unreachable"
    if not reached:
        checks["migrations"] = "unknown"
        return checks
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    heads, known = _script_revisions(app)
    checks["migrations"] = _migration_state(found, heads, known)
    return checks


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up and answering."""
    return jsonify(status="ok"), 200, {"Cache-Control": "no-store"}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when every check passes; else 503 naming the checks that failed."""
    checks = readiness()
    failed = sorted(name for name, state in checks.items() if state not in ("ok", "unknown"))
    body = {"status": "not_ready" if failed else "ready", "failed": failed, "checks": checks}
    return jsonify(body), 503 if failed else 200, {"Cache-Control": "no-store"}
