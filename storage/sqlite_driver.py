"""aiosqlite for SQLAlchemy with one thread trip per statement instead of four.

aiosqlite runs every sqlite3 call on its own thread; SQLAlchemy's adapter makes a separate
trip for cursor(), execute(), fetchall() and close(). Each trip costs a queue hand-off and an
event-loop wake-up (~30-40 µs of CPU measured), which is most of what a kindbot step spends
on SQLite. This cursor runs the whole statement — cursor, execute, fetch, close — as one
function on aiosqlite's thread and keeps the results in memory, as the stock cursor already
does. Nothing runs on the event loop's thread, so a busy database never blocks the loop.

It relies on SQLAlchemy 2.1's asyncio connector internals; `dbapi()` returns None when they
are not there (another SQLAlchemy version), and the stock driver is used instead.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

Row = tuple[Any, ...]
Result = tuple[Any, int, int, list[Row]]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any) -> Result:
    """On aiosqlite's thread: one statement, start to finish."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid or 0, rows
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, operation: str, seq: Sequence[Any]) -> Result:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq)
        return None, cursor.rowcount, cursor.lastrowid or 0, []
    finally:
        cursor.close()


def dbapi() -> Any | None:
    """The DBAPI module to pass as `create_async_engine(..., module=...)`, or None."""
    try:
        import aiosqlite
        from sqlalchemy.dialects.sqlite.aiosqlite import (
            AsyncAdapt_aiosqlite_connection,
            AsyncAdapt_aiosqlite_cursor,
            AsyncAdapt_aiosqlite_dbapi,
        )
        from sqlalchemy.util.concurrency import await_
    except ImportError:
        return None
    if not hasattr(AsyncAdapt_aiosqlite_connection, "_cursor_cls"):
        return None

    class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
        """A client-side cursor whose statement makes a single trip to the thread."""

        __slots__ = ("_description", "_lastrowid", "_rowcount")

        def __init__(self, adapt_connection: Any) -> None:
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = None  # type: ignore[assignment]  # no sqlite3 cursor is kept
            self._soft_closed_memoized: Any = {}
            self._rows: collections.deque[Row] = collections.deque()
            self._description: Any = None
            self._rowcount = -1
            self._lastrowid = 0

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> int:
            return self._lastrowid

        async def _trip(self, fn: Any, operation: str, parameters: Any) -> None:
            async with self._adapt_connection._execute_mutex:
                result = await self._connection._execute(
                    fn, self._connection._conn, operation, parameters
                )
            self._description, self._rowcount, self._lastrowid, rows = result
            self._rows = collections.deque(rows)

        def execute(self, operation: Any, parameters: Any = None) -> None:
            try:
                await_(self._trip(_run, operation, parameters))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
            try:
                await_(self._trip(_run_many, operation, seq_of_parameters))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        async def _async_soft_close(self) -> None:
            """Nothing to close: the sqlite3 cursor was closed on the thread."""

        def close(self) -> None:
            self._rows.clear()

    class OneTripConnection(AsyncAdapt_aiosqlite_connection):
        __slots__ = ()
        _cursor_cls = OneTripCursor

    class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
        def connect(self, *arg: Any, **kw: Any) -> Any:
            stock = super().connect(*arg, **kw)
            return OneTripConnection(self, stock._connection)

    return OneTripDBAPI(aiosqlite, sqlite3)
