"""The database: declarative base, engine and per-request sessions.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` and a busy timeout, and
every transaction starts with ``BEGIN IMMEDIATE`` so that two writers queue for the lock instead
of failing half-way with "database is locked"; only ``reading`` blocks, which never write, read
without it. PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from handover.prepared import Prepared

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned aware; naive values are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every model; constraint names follow NAMING_CONVENTION."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


TOP_LEVEL_MODEL_MODULES = ("handover.audit", "handover.idempotency")


def load_models() -> None:
    """Import every module that defines tables, so Base.metadata knows the whole schema.

    That is each domain package's ``models.py`` plus the top-level modules listed above.
    """
    import importlib
    import importlib.util
    import pkgutil

    import handover

    for module in TOP_LEVEL_MODEL_MODULES:
        importlib.import_module(module)
    for info in pkgutil.iter_modules(handover.__path__):
        if info.ispkg and importlib.util.find_spec(f"handover.{info.name}.models"):
            importlib.import_module(f"handover.{info.name}.models")


def new_id() -> str:
    """Return a new UUID as text: ids are made in Python, never by the database.

    Version 7 (RFC 9562): the millisecond it was made, then 74 random bits. New rows then go at
    the end of every index on an id instead of at random places in it, so that a transaction
    writes fewer index pages, and pages are filled instead of split in half. The time it shows
    is no secret: the record's own ``created_at`` says the same, and no id is a credential.
    """
    milliseconds = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10)) & _RANDOM_BITS
    return str(uuid.UUID(int=milliseconds << 80 | _VERSION_AND_VARIANT | random))


# Of the 80 bits after the time: all random but the version's four and the variant's two.
_RANDOM_BITS = ((1 << 80) - 1) & ~(0xF << 76) & ~(0b11 << 62)
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62


_DEFERRED = "handover.db.deferred_inserts"


@contextmanager
def deferred_inserts(session: Session) -> Iterator[None]:
    """Rows given to ``insert_later`` in this block are written as it ends, one statement each.

    For a tick's batch: a statement (on PostgreSQL a round trip) or an ORM object per row cost
    more than the work the row records. If the block raises, none of its rows is written.
    """
    if session.info.get(_DEFERRED) is not None:  # an outer block writes them
        yield
        return
    pending: dict[sa.Insert, list[dict[str, Any]]] = {}
    session.info[_DEFERRED] = pending
    try:
        yield
    finally:
        session.info.pop(_DEFERRED, None)
    for statement, rows in pending.items():
        insert_rows(session, statement, rows)


_COPYABLE: dict[sa.Insert, sa.Table] = {}
_PREPARED: dict[sa.Insert, Prepared] = {}


def bulk_insert(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table`` of whole rows, which ``insert_rows`` may send as a COPY."""
    statement = sa.insert(table)
    _COPYABLE[statement] = table
    return statement


def insert_rows(
    executor: Session | sa.Connection, statement: sa.Insert, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` for every row at once: one executemany, on PostgreSQL maybe one COPY.

    On SQLite it runs on the driver (``prepared``). PostgreSQL runs each row of an executemany
    as a statement of its own; a COPY streams them. It is used for statements made by
    ``bulk_insert`` whose rows give every column that has a default (COPY applies none of
    SQLAlchemy's), with each value through its column's type.
    """
    table = _COPYABLE.get(statement)
    if isinstance(executor, Session):
        # Below the ORM (a Core statement through Session.execute costs half as much again):
        # what the rows may refer to is flushed first, as Session.execute would.
        executor.flush()
        executor = executor.connection()
    if executor.dialect.name == "sqlite":
        prepared = _PREPARED.get(statement) or _PREPARED.setdefault(statement, Prepared(statement))
        prepared.run(executor, rows)
        return
    keys = list(rows[0]) if rows else []
    raw = executor.connection.driver_connection
    if (
        table is None
        or executor.dialect.name != "postgresql"
        or raw is None
        or len(rows) < 2
        or {c.key for c in table.columns if c.default is not None} - set(keys)
    ):
        executor.execute(statement, rows)
        return
    _copy(raw, executor.dialect, table, keys, rows)


def _copy(
    raw: Any, dialect: Dialect, table: sa.Table, keys: list[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """COPY the rows into the table through psycopg, each value through its column's type."""
    columns = [table.c[key] for key in keys]
    processors = [column.type.bind_processor(dialect) for column in columns]
    names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
    command = f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(command) as copy:
        for row in rows:
            copy.write_row(
                [
                    row[key] if process is None else process(row[key])
                    for key, process in zip(keys, processors, strict=True)
                ]
            )


def insert_later(session: Session, statement: sa.Insert, row: dict[str, Any]) -> None:
    """Execute ``statement`` for ``row`` now, or as the enclosing ``deferred_inserts`` ends."""
    pending: dict[sa.Insert, list[dict[str, Any]]] | None = session.info.get(_DEFERRED)
    if pending is None:
        insert_rows(session, statement, [row])
    else:
        pending.setdefault(statement, []).append(row)


def default_sqlite_url(instance_path: str) -> str:
    """The embedded database under the instance folder."""
    return f"sqlite:///{instance_path}/handover.db"


def make_engine(url: str) -> Engine:
    """Create an engine with the settings this service relies on for ``url``'s database."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "isolation_level": None}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # hide_parameters: bound values (ciphertext, ids) never appear in exception messages or logs.
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


WAL_CHECKPOINT_PAGES = 10_000


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoint every 10,000 WAL pages (about 40 MB), not SQLite's 1,000: a page written
        # again and again (an index's last leaf, the audit head) is copied back once a round,
        # and a morning's deliveries spent a quarter of their time checkpointing at 1,000.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        # ``reading``: no BEGIN at all. Each statement then reads in a transaction of its own,
        # as under PostgreSQL's READ COMMITTED, and neither waits for nor holds the write lock.
        if not connection.get_execution_options().get(_READING):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask) -> None:
    """Create the engine and session factory for ``app`` and close sessions after each request."""
    url = app.config.get("DATABASE_URL") or default_sqlite_url(app.instance_path)
    if url.startswith("sqlite") and app.config.get("MULTI_HOST"):
        raise RuntimeError("SQLite cannot serve a multi-host deployment: set DATABASE_URL")
    load_models()
    engine = make_engine(url)
    app.extensions["handover.db"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["handover.engine"] = engine
    app.teardown_appcontext(_close_session)
    # Whether a session's transaction holds a connection (``reading`` joins it then): an attach
    # alone (add, merge) begins a session transaction without one.
    if not event.contains(Session, "after_begin", _connected):
        event.listen(Session, "after_begin", _connected)
        event.listen(Session, "after_transaction_end", _ended)


def engine() -> Engine:
    """The current app's engine."""
    result: Engine = current_app.extensions["handover.engine"]
    return result


def session_factory() -> sessionmaker[Session]:
    """The current app's session factory."""
    factory: sessionmaker[Session] = current_app.extensions["handover.db"]
    return factory


def get_session() -> Session:
    """The session of the current request or CLI command, opened on first use."""
    if "db_session" not in g:
        g.db_session = session_factory()()
    session: Session = g.db_session
    return session


_READING = "handover_reading"
_CONNECTED = "handover.db.connected"


def _connected(session: Session, _transaction: Any, _connection: sa.Connection) -> None:
    session.info[_CONNECTED] = True


def _ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTED, None)


@contextmanager
def reading(session: Session) -> Iterator[sa.Connection]:
    """A connection for plain reads that, on SQLite, leave the write lock to writers.

    While ``session`` holds no connection, the block reads on a pooled connection of its own:
    on PostgreSQL in a transaction that ends with the block, on SQLite with no ``BEGIN``, so that
    it neither waits for nor holds the write lock. Either way each statement sees what was
    committed when it started (READ COMMITTED). The session is not involved, so nothing it holds
    expires and no session transaction is set up and torn down (that cost more than the reads).
    Once the session's transaction has a connection (it may have written), the reads join it.
    Nothing in the block may write.
    """
    if session.info.get(_CONNECTED):
        yield session.connection()
        return
    bind = session.get_bind()
    assert isinstance(bind, Engine), "a session bound to an engine"
    with bind.connect().execution_options(**{_READING: True}) as connection:
        with connection.begin():  # ends with the block: it wrote nothing
            yield connection


@contextmanager
def transaction() -> Iterator[Session]:
    """A fresh session whose work commits on success and rolls back on error (jobs, CLI)."""
    with session_factory()() as session, session.begin():
        yield session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
