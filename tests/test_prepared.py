"""Prepared statements give what SQLAlchemy's own execution gives, on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.db import UTCDateTime, engine
from handover.prepared import Prepared

_numbers = itertools.count(1)
_metadata = sa.MetaData()
_probe = sa.Table(
    "prepared_probe",
    _metadata,
    sa.Column("id", sa.String(20), primary_key=True, default=lambda: f"made-{next(_numbers)}"),
    sa.Column("at", UTCDateTime),
    sa.Column("flag", sa.Boolean),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("count", sa.Integer, default=7),
    sa.Column("kind", sa.String(20)),
)
INSERT = Prepared(sa.insert(_probe))
SELECT = Prepared(
    sa.select(_probe.c.id, _probe.c.at, _probe.c.flag, _probe.c.blob, _probe.c.count)
    .where(_probe.c.kind == sa.bindparam("kind"))
    .order_by(_probe.c.id)
)
BUMP = Prepared(sa.update(_probe).where(_probe.c.kind == "fixed").values(count=sa.bindparam("to")))
MOMENT = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night the clocks change


@pytest.fixture
def connection(app: Flask) -> Iterator[sa.Connection]:
    """A transaction on the app's database with the probe table, rolled back at the end."""
    with app.app_context(), engine().connect() as connection:
        transaction = connection.begin()
        _metadata.create_all(connection)
        yield connection
        transaction.rollback()


def test_values_go_through_their_types_both_ways(connection: sa.Connection) -> None:
    INSERT.run(
        connection,
        [
            {"at": MOMENT, "flag": True, "blob": b"\x00\xff", "kind": "a"},
            {"at": MOMENT + timedelta(hours=1), "flag": False, "blob": None, "kind": "a"},
        ],
    )
    rows = SELECT.all(connection, {"kind": "a"})
    expected = connection.execute(
        sa.select(_probe.c.id, _probe.c.at, _probe.c.flag, _probe.c.blob, _probe.c.count)
        .where(_probe.c.kind == "a")
        .order_by(_probe.c.id)
    ).all()
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    first = rows[0]
    assert first.at == MOMENT and first.at.tzinfo is not None  # aware UTC, as stored
    assert (first.flag, first.blob, first.count) == (True, b"\x00\xff", 7)  # 7: the default
    assert first.id.startswith("made-")  # the column's callable default
    assert rows[1]._asdict()["flag"] is False
    assert SELECT.first(connection, {"kind": "none"}) is None
    assert SELECT.scalars(connection, {"kind": "a"}) == [row.id for row in rows]


def test_literals_in_the_statement_are_bound(connection: sa.Connection) -> None:
    INSERT.run(connection, [{"id": "x", "kind": "fixed"}, {"id": "y", "kind": "other"}])
    BUMP.run(connection, {"to": 3})
    counts = dict(connection.execute(sa.select(_probe.c.id, _probe.c.count)).all())
    assert counts == {"x": 3, "y": 7}


def test_a_naive_datetime_is_refused(connection: sa.Connection) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime refused"):
        INSERT.run(connection, {"id": "x", "at": datetime(2026, 1, 1), "kind": "a"})


def test_errors_are_sqlalchemys_and_show_no_parameters(connection: sa.Connection) -> None:
    INSERT.run(connection, {"id": "x", "kind": "a"})
    with pytest.raises(sa.exc.IntegrityError) as raised:
        INSERT.run(connection, {"id": "x", "kind": "secret-value"})
    assert "secret-value" not in str(raised.value)


def test_a_parameter_not_given_is_named(connection: sa.Connection) -> None:
    with pytest.raises(sa.exc.SQLAlchemyError, match="bind parameter 'kind'"):
        SELECT.all(connection, {})
