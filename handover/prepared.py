"""Core statements for the hot paths, run on SQLite straight through the driver.

SQLAlchemy's execution of a statement (its compiled-cache lookup, parameter and result set-up,
context and events) costs about 20 µs on the benchmark machine; SQLite runs a small statement in
two. A create runs nearly twenty, most of them while SQLite's one write lock is held, so every
other writer waits for that overhead too. A ``Prepared`` statement is still written in typed
SQLAlchemy and compiled by it (once per dialect and set of keys), and every value still goes
through its column's type both ways; only the execution is the driver's. Its errors are
SQLAlchemy's own (an ``IntegrityError`` is an ``sa.exc.IntegrityError``), with no parameters.

On PostgreSQL it runs through ``Connection.execute`` as any statement does: a round trip dwarfs
the overhead there, and the pool's disconnect handling must see every statement.

Engine events do not see what runs on SQLite's driver (nothing in the service listens to them).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
_FROM_ROW = object()  # a value the caller gives, as opposed to a literal or a column default


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled for one dialect and set of keys, with what binding it needs."""

    sql: str
    names: tuple[str, ...]  # the positional parameters, in order
    fixed: tuple[Any, ...]  # per parameter: _FROM_ROW, a literal, or a column default
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, processor) where any
    row: Callable[..., Any] | None  # the result row type (a namedtuple), for a SELECT
    results: tuple[Processor, ...]


class Prepared:
    """A Core statement that runs on SQLite's driver, compiled once (see the module's doc)."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def run(
        self, connection: sa.Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> None:
        """Execute for one set of parameters, or for each of a list (one executemany)."""
        rows = [params] if isinstance(params, Mapping) else list(params)
        if not rows:
            return
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, rows if len(rows) > 1 else rows[0])
            return
        # Outside BEGIN IMMEDIATE, SQLite would commit a write at once, unseen by the caller.
        assert connection.in_transaction(), "a prepared write runs inside a transaction"
        compiled = self._compile(connection.dialect, tuple(rows[0]))
        _on_driver(connection, compiled, [_bind(compiled, row) for row in rows], many=True)

    def all(self, connection: sa.Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement returns, each with its columns as attributes."""
        params = params or {}
        if connection.dialect.name != "sqlite":
            return list(connection.execute(self.statement, dict(params)).all())
        compiled = self._compile(connection.dialect, tuple(params))
        found = _on_driver(connection, compiled, _bind(compiled, params))
        if compiled.row is None:
            return found
        make, results = compiled.row, compiled.results
        return [
            make(*(v if p is None else p(v) for v, p in zip(row, results, strict=True)))
            for row in found
        ]

    def first(self, connection: sa.Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row the statement returns, or None."""
        rows = self.all(connection, params)
        return rows[0] if rows else None

    def scalars(
        self, connection: sa.Connection, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in self.all(connection, params)]

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        compiled = self._compiled.get((dialect.name, keys))
        if compiled is None:
            compiled = self._compiled[(dialect.name, keys)] = _compile(
                self.statement, dialect, keys
            )
        return compiled


def _compile(statement: sa.Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    table = statement.table if isinstance(statement, sa.Insert) else None
    fixed: list[Any] = []
    for name in names:
        bind = compiled.binds[name]
        if name in keys:
            fixed.append(_FROM_ROW)
        elif table is not None and name in table.c and table.c[name].default is not None:
            fixed.append(table.c[name].default)
        elif bind.callable is None and not bind.required:
            fixed.append(bind.value)
        else:
            raise sa.exc.ArgumentError(f"A value is required for bind parameter {name!r}")
    columns = list(getattr(statement, "selected_columns", ()))
    return _Compiled(
        sql=compiled.string,
        names=names,
        fixed=tuple(fixed),
        processors=tuple(
            (position, process)
            for position, name in enumerate(names)
            if (process := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        ),
        row=namedtuple("Row", [c.key for c in columns], rename=True) if columns else None,
        results=tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ),
    )


def _bind(compiled: _Compiled, row: Mapping[str, Any]) -> list[Any]:
    """The row's values in the statement's order, each through its type (as SQLAlchemy would)."""
    try:
        values = [
            row[name] if fixed is _FROM_ROW else _default(fixed)
            for name, fixed in zip(compiled.names, compiled.fixed, strict=True)
        ]
        for index, process in compiled.processors:
            values[index] = process(values[index])
    except (KeyError, TypeError, ValueError) as error:
        raise sa.exc.StatementError(
            f"({type(error).__name__}) {error}", compiled.sql, None, error, hide_parameters=True
        ) from error
    return values


def _default(fixed: Any) -> Any:
    """A literal as it is; a column's default as SQLAlchemy evaluates it for an INSERT.

    A callable default gets no execution context (ours take none: ``new_id``).
    """
    if isinstance(fixed, sa.ColumnDefault):
        return fixed.arg(None) if fixed.is_callable else fixed.arg
    return fixed


def _on_driver(
    connection: sa.Connection, compiled: _Compiled, values: list[Any], *, many: bool = False
) -> list[Any]:
    """Run on the driver's connection: one row's values (returns its rows), or a list of them.

    The driver's errors are raised as SQLAlchemy's, with the statement but no parameters.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        if many:
            driver.executemany(compiled.sql, values)
            return []
        return driver.execute(compiled.sql, values).fetchall()  # type: ignore[no-any-return]
    except connection.dialect.loaded_dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(
            compiled.sql,
            None,
            error,
            connection.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=connection.dialect,
        ) from error
