"""A step's own statements, run on SQLite's connection without SQLAlchemy's execution layer.

Most events need three statements: load the person (one join), write their conversation
back, commit; starting or finishing a dialog adds an entry's INSERT or UPDATE and the
user's changed fields. Through SQLAlchemy's execution (compiled-cache lookup, execution
context, result objects, a greenlet per call; for entries also the ORM's identity map and
unit of work) and aiosqlite's thread trips those cost many times what SQLite takes to run
them: a plain step's SELECT, UPDATE and COMMIT took ~600 µs through SQLAlchemy's async Core
against ~30 µs with sqlite3 alone on the 2-core benchmark machine. So on SQLite a step runs
these statements on the sqlite3 connection under its SQLAlchemy connection
(storage/sqlite.py: on the loop's thread unless they would wait for a lock), in the same
transaction: anything else the step does (an ORM session for a feature's own rows) still
goes through SQLAlchemy on that connection, and `Step.commit` ends both together.

Nothing is hand-written: each statement is a Core statement built once in `storage.repo`,
compiled here once by SQLAlchemy for this dialect, and values go through the columns' own
type processors (dates, JSON) both ways, so rows read and written are exactly those
SQLAlchemy would read and write (tests run both paths, and PostgreSQL runs the same
statements through SQLAlchemy: asyncpg's transactions belong to SQLAlchemy's adapter there).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from storage.sqlite import OnLoop

Processor = Callable[[Any], Any] | None
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """A statement compiled for the dialect: its SQL, its parameters in order, converters."""

    sql: str
    binds: tuple[str, ...]
    to_db: tuple[Processor, ...]
    from_db: tuple[Processor, ...]

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> Plan:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        binds = tuple(compiled.positiontup or ())
        return cls(
            sql=str(compiled),
            binds=binds,
            to_db=tuple(
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in binds
            ),
            from_db=tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None)
                for c in statement.exported_columns
            ),
        )


class Direct:
    """Prebuilt statements on the sqlite3 connection under a SQLAlchemy connection."""

    def __init__(self, dialect: Dialect, connection: OnLoop) -> None:
        self.dialect = dialect
        self.connection = connection
        self._plans: dict[Executable, Plan] = {}

    async def execute(self, statement: Executable, values: dict[str, Any]) -> list[Row]:
        """Run `statement` (bound by its bindparam names); its rows, values converted.

        `statement` must be built once and reused (its plan is kept per object)."""
        plan = self._plans.get(statement)
        if plan is None:
            plan = self._plans[statement] = Plan.of(statement, self.dialect)
        params = [
            values[name] if convert is None else convert(values[name])
            for name, convert in zip(plan.binds, plan.to_db, strict=True)
        ]
        rows = await self._run(plan.sql, params)
        if not rows:
            return rows
        return [
            tuple(
                v if convert is None or v is None else convert(v)
                for v, convert in zip(row, plan.from_db, strict=True)
            )
            for row in rows
        ]

    async def commit(self) -> None:
        try:
            await self.connection.commit()
        except sqlite3.Error as exc:
            raise _wrapped("COMMIT", exc) from exc

    async def committed(self) -> None:
        """SQLAlchemy committed on this connection (see storage/sqlite.py: checkpoints)."""
        await self.connection.committed()

    async def rollback(self) -> None:
        await self.connection.rollback()

    async def _run(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            return await self.connection.fetchall(sql, params)
        except sqlite3.Error as exc:
            raise _wrapped(sql, exc) from exc


def _wrapped(sql: str, exc: sqlite3.Error) -> StatementError:
    """The error SQLAlchemy would have raised (so callers' retry rules apply unchanged)."""
    return DBAPIError.instance(sql, None, exc, sqlite3.Error)
