"""SQLite runs with the settings that keep it safe under concurrent writers; ids are UUIDv7."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import make_transient_to_detached

from handover import create_app
from handover.audit import AuditEvent
from handover.db import (
    bulk_insert,
    engine,
    insert_rows,
    new_id,
    reading,
    session_factory,
    transaction,
)


def test_sqlite_pragmas_and_immediate_transactions(app: Flask) -> None:
    with app.app_context():
        if engine().dialect.name != "sqlite":
            pytest.skip("SQLite settings")
        with engine().connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in (
                    "journal_mode", "synchronous", "busy_timeout", "foreign_keys",
                    "wal_autocheckpoint",
                )
            }  # fmt: skip
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 2,
            "busy_timeout": 30000,
            "foreign_keys": 1,
            "wal_autocheckpoint": 10_000,
        }
        with transaction() as session:
            # BEGIN IMMEDIATE takes the write lock at once.
            raw = session.connection().connection.dbapi_connection
            assert raw is not None and raw.in_transaction


def test_two_writers_queue_instead_of_failing(app: Flask) -> None:
    with app.app_context():
        if engine().dialect.name != "sqlite":
            pytest.skip("SQLite settings")
        with transaction() as session:
            session.execute(sa.text("CREATE TABLE probe (x int)"))
    holding, errors = threading.Event(), []

    def write(value: int, hold: bool) -> None:
        try:
            with app.app_context(), transaction() as session:
                session.execute(sa.text("INSERT INTO probe VALUES (:x)"), {"x": value})
                if hold:
                    holding.set()
                    time.sleep(0.5)  # keep the write lock while the other writer arrives
        except Exception as error:  # reported to the test thread
            errors.append(error)

    first = threading.Thread(target=write, args=(1, True))
    first.start()
    holding.wait(5)
    write(2, False)
    first.join()
    assert errors == []
    with app.app_context(), transaction() as session:
        assert session.execute(sa.text("SELECT x FROM probe ORDER BY x")).scalars().all() == [1, 2]


@pytest.mark.parametrize("attached", [False, True], ids=["fresh", "after-an-attach"])
def test_reads_in_reading_neither_wait_for_nor_take_the_write_lock(
    app: Flask, attached: bool
) -> None:
    # An attach (add, merge) begins a session transaction that holds no connection yet: the
    # reads still go apart (sign-in attaches the caller before the create reads the directory).
    with app.app_context():
        if engine().dialect.name != "sqlite":
            pytest.skip("SQLite's write lock")
        with transaction() as session:
            session.execute(sa.text("CREATE TABLE probe (x int)"))
    holding, release, errors = threading.Event(), threading.Event(), []

    def write() -> None:
        try:
            with app.app_context(), transaction() as session:
                session.execute(sa.text("INSERT INTO probe VALUES (1)"))
                holding.set()
                release.wait(60)  # the write lock is held until the reader has read
        except Exception as error:  # reported to the test thread
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    holding.wait(5)
    with app.app_context(), session_factory()() as session:
        if attached:
            audit = AuditEvent(seq=1, at=datetime.now(UTC), action="probe", prev_mac="", mac="")
            make_transient_to_detached(audit)
            session.add(audit)
        with reading(session) as connection:
            seen = connection.execute(sa.text("SELECT count(*) FROM probe")).scalar_one()
        # Read while the writer still held the lock (a queued reader would see its row).
        still_held = not release.is_set() and writer.is_alive()
        assert session.in_transaction() == attached  # the reads left the session as they found it
    release.set()
    writer.join()
    assert (seen, still_held, errors) == (0, True, [])


def test_reading_inside_a_transaction_joins_it(app: Flask) -> None:
    with app.app_context(), transaction() as session:
        # Temporary: a table left behind in the shared PostgreSQL database fails `db check`.
        session.execute(sa.text("CREATE TEMPORARY TABLE probe (x int)"))
        session.execute(sa.text("INSERT INTO probe VALUES (1)"))
        with reading(session) as connection:
            seen = connection.execute(sa.text("SELECT count(*) FROM probe")).scalar_one()
        assert (seen, session.in_transaction()) == (1, True)


LONDON = ZoneInfo("Europe/London")


def _entries(at: datetime, count: int) -> list[dict[str, object]]:
    return [
        {
            "seq": n,
            "at": at + timedelta(minutes=n),
            "actor_id": None if n % 2 else f"user-{n}",
            "action": "probe",
            "object_type": None,
            "object_id": None,
            "details": '{"a":"\\\t\\n,|"}',  # what a COPY stream escapes
            "prev_mac": "0" * 64,
            "mac": f"{n:064d}",
        }
        for n in range(1, count + 1)
    ]


def test_rows_inserted_at_once_read_back_as_given(app: Flask) -> None:
    # On PostgreSQL these rows go by COPY; elsewhere by one executemany.
    statement = bulk_insert(cast(sa.Table, AuditEvent.__table__))
    rows = _entries(datetime(2026, 7, 1, 3, 10, tzinfo=LONDON), 3)  # BST: UTC+1
    with app.app_context():
        with transaction() as session:
            insert_rows(session, statement, rows)
        with transaction() as session:
            stored = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
            got = [{column: getattr(event, column) for column in rows[0]} for event in stored]
    assert got == rows  # the same instants, stored and read back in UTC
    assert [event["at"].tzinfo for event in got] == [UTC] * 3


def test_rows_inserted_at_once_still_refuse_a_naive_time(app: Flask) -> None:
    statement = bulk_insert(cast(sa.Table, AuditEvent.__table__))
    rows = _entries(datetime(2026, 7, 1, 3, 10), 3)
    with app.app_context():
        with pytest.raises((ValueError, sa.exc.StatementError), match="naive datetime refused"):
            with transaction() as session:
                insert_rows(session, statement, rows)
        with transaction() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


def test_sqlite_is_refused_for_a_multi_host_deployment(tmp_path: object) -> None:
    with pytest.raises(RuntimeError, match="multi-host"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "", "MULTI_HOST": True})


def test_ids_are_uuid7_in_the_order_they_were_made() -> None:
    made = [uuid.UUID(new_id()) for _ in range(2000)]
    assert {(u.version, u.variant) for u in made} == {(7, uuid.RFC_4122)}
    assert len({u.int for u in made}) == len(made)
    milliseconds = [u.int >> 80 for u in made]  # the leading 48 bits: when it was made
    assert milliseconds == sorted(milliseconds)
    assert abs(milliseconds[-1] / 1000 - time.time()) < 5
    # The 74 bits after the time are random: each varies.
    random_bits = [u.int & ((1 << 76) - 1) for u in made]
    assert all(any(v >> bit & 1 for v in random_bits) for bit in (0, 30, 61, 64, 75))
