"""A step's own two statements, run on SQLite's connection without SQLAlchemy's execution layer.

Most events need three statements: load the person (one join), write their conversation
back, commit. Through SQLAlchemy's execution (compiled-cache lookup, execution context,
result objects, a greenlet per call) those three cost about twenty times what SQLite takes
to run them — ~600 µs against ~30 µs per step on the 2-core benchmark machine
(bench/engine.py), more than any other part of a Telegram update. So on SQLite with the
one-trip driver (storage/sqlite_driver.py) a step runs just these two on the DBAPI
connection under its SQLAlchemy connection, in the same transaction: anything else the step
does (an ORM session for entries, an UPDATE of changed user fields) still goes through
SQLAlchemy on that connection, and `Step.commit` ends both together.

Nothing is hand-written: the SQL is compiled once by SQLAlchemy from the same Core statements
the other path executes (`repo.person_core_query`, `repo.conversation_update`), and values go
through the columns' own type processors (dates, JSON), so rows read and written are exactly
those SQLAlchemy would read and write (tests run both paths). PostgreSQL keeps the SQLAlchemy
path: asyncpg's transactions belong to SQLAlchemy's adapter there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, SQLCompiler]:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    return str(compiled), compiled


class DirectStatements:
    """The person query and the conversation UPDATE, compiled once for a SQLite dialect."""

    def __init__(self, dialect: Dialect, person: Any, save: Any, user_columns: int) -> None:
        self.person_sql, compiled = _compiled(person, dialect)
        self.person_binds = list(compiled.positiontup or ())
        self.names = [c.name for c in person.selected_columns]
        self.results: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None)
            for c in person.selected_columns
        ]
        self.user_columns = user_columns
        self.save_sql, compiled = _compiled(save, dialect)
        self.save_binds = list(compiled.positiontup or ())
        self.save_processors: list[Processor] = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.save_binds
        ]


class Direct:
    """The statements above on one connection (the one-trip driver's DBAPI connection)."""

    def __init__(self, statements: DirectStatements, connection: Any) -> None:
        self.statements = statements
        self.connection = connection  # sqlite_driver's OneTripConnection

    async def person(
        self, channel: str, external_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The user's and the conversation's columns, by name and converted; None if absent."""
        s = self.statements
        values = {"channel": channel, "external_id": external_id}
        rows = await self._run(s.person_sql, [values[name] for name in s.person_binds])
        if not rows:
            return None
        row = [
            v if p is None or v is None else p(v) for v, p in zip(rows[0], s.results, strict=True)
        ]
        n = s.user_columns
        return dict(zip(s.names[:n], row[:n], strict=True)), dict(
            zip(s.names[n:], row[n:], strict=True)
        )

    async def save(self, values: dict[str, Any]) -> None:
        """The conversation UPDATE, bound by name (`repo.conversation_update`'s names)."""
        s = self.statements
        params = [
            values[name] if p is None else p(values[name])
            for name, p in zip(s.save_binds, s.save_processors, strict=True)
        ]
        await self._run(s.save_sql, params)

    async def commit(self) -> None:
        try:
            await self.connection.commit_direct()
        except sqlite3.Error as exc:
            raise _wrapped("COMMIT", exc) from exc

    async def rollback(self) -> None:
        if self.connection.in_transaction:
            await self.connection.rollback_direct()

    async def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = await self.connection.run(sql, params)
        except sqlite3.Error as exc:
            raise _wrapped(sql, exc) from exc
        return rows


def _wrapped(sql: str, exc: sqlite3.Error) -> StatementError:
    """The error SQLAlchemy would have raised (so callers' retry rules apply unchanged)."""
    return DBAPIError.instance(sql, None, exc, sqlite3.Error)
