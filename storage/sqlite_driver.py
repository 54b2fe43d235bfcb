"""aiosqlite for SQLAlchemy: statements on the event loop's thread unless they must wait.

aiosqlite runs every sqlite3 call on its own thread; SQLAlchemy's adapter makes a separate
trip for cursor(), execute(), fetchall() and close(). A trip costs a queue hand-off, an
event-loop wake-up and the GIL handed back and forth between the two threads — tens of µs,
and over 100 µs under load — while a kindbot statement on a local SQLite file runs in a few
µs. So the whole statement (cursor, execute, fetch, close) runs as one function, first on
the loop's thread (`ON_LOOP`), keeping the results in memory as the stock cursor does.

What must never happen on the loop is waiting. The connections' busy timeout is 0, so a
statement that would wait for a lock held by another connection (of this process, whose
holder may need the loop to go on, or of another process) fails at once with SQLITE_BUSY
instead of blocking the loop; it is then run again on aiosqlite's thread with the patient
timeout (`BUSY_TIMEOUT_MS`), in one trip, as before. COMMIT and ROLLBACK run on the loop too
(in WAL mode with synchronous=NORMAL a commit appends to the WAL without syncing). What does
sync the disk is a checkpoint (copying the WAL into the database file), which SQLite would
run inside some commit: these connections turn that off (`wal_autocheckpoint=0`) and every
`CHECKPOINT_EVERY`-th commit instead goes to aiosqlite's thread with a passive checkpoint.
A long statement (a large export) does hold the loop for its run time; kindbot's are short.

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
Statement = Any  # _run or _run_many
BUSY_TIMEOUT_MS = 10_000
ON_LOOP = True
# SQLite's own auto-checkpoint runs every 1000 WAL pages; a step writes a few pages.
CHECKPOINT_EVERY = 200
_BUSY, _LOCKED = 5, 6  # SQLite primary result codes (extended codes keep them in the low byte)


def is_busy(error: BaseException) -> bool:
    """A lock held by another connection (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF
        in (
            _BUSY,
            _LOCKED,
        )
    )


def _patiently(fn: Statement, conn: sqlite3.Connection, operation: str, parameters: Any) -> Result:
    """On aiosqlite's thread: `fn`, waiting up to BUSY_TIMEOUT_MS for locks."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        result: Result = fn(conn, operation, parameters)
        return result
    finally:
        conn.execute("PRAGMA busy_timeout=0")


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


def _commit_and_checkpoint(conn: sqlite3.Connection) -> None:
    """On aiosqlite's thread: commit, then copy what the WAL holds into the database file."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _rollback(conn: sqlite3.Connection) -> None:
    conn.rollback()


def uses_loop(dbapi_connection: Any) -> bool:
    """True if this connection's statements try the event loop's thread first."""
    return ON_LOOP and getattr(dbapi_connection, "one_trip", False)


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

        async def _trip(self, fn: Statement, operation: str, parameters: Any) -> None:
            connection: Any = self._adapt_connection  # a OneTripConnection
            result = await connection.trip(fn, operation, parameters)
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
        __slots__ = ("commits",)
        commits: int  # commits made on this connection (see CHECKPOINT_EVERY)
        _cursor_cls = OneTripCursor
        one_trip = True  # see uses_loop()

        async def trip(self, fn: Statement, operation: str, parameters: Any) -> Result:
            """One statement start to finish: on the loop, or patiently on the thread if busy."""
            async with self._execute_mutex:
                conn = self._connection._conn
                result: Result
                if ON_LOOP:
                    try:
                        result = fn(conn, operation, parameters)
                        return result
                    except sqlite3.OperationalError as error:
                        if not is_busy(error):
                            raise
                result = await self._connection._execute(
                    _patiently, fn, conn, operation, parameters
                )
                return result

        async def run(self, operation: str, parameters: Any) -> list[Row]:
            """A statement outside SQLAlchemy (storage/direct.py): its rows, as tuples."""
            return (await self.trip(_run, operation, parameters))[3]

        def _commit_here(self) -> bool:
            """COMMIT on the loop, unless busy or due for a checkpoint (False: use the thread)."""
            self.commits += 1
            if ON_LOOP and self.commits % CHECKPOINT_EVERY:
                try:
                    self._connection._conn.commit()
                    return True
                except sqlite3.OperationalError as error:
                    if not is_busy(error):
                        raise
            return False

        def _rollback_here(self) -> bool:
            if ON_LOOP:
                try:
                    self._connection._conn.rollback()
                    return True
                except sqlite3.OperationalError as error:
                    if not is_busy(error):
                        raise
            return False

        def commit(self) -> None:
            """COMMIT on the loop; on the thread if busy, or for a periodic checkpoint."""
            if not self._connection._connection:
                return  # closed: as the stock adapter
            try:
                if not self._commit_here():
                    await_(
                        self._connection._execute(_commit_and_checkpoint, self._connection._conn)
                    )
            except Exception as error:
                self._handle_exception(error)

        def rollback(self) -> None:
            if not self._connection._connection:
                return  # closed: as the stock adapter
            try:
                if not self._rollback_here():
                    await_(self._connection._execute(_rollback, self._connection._conn))
            except Exception as error:
                self._handle_exception(error)

        async def commit_direct(self) -> None:
            """`commit` for statements made with `run` (no SQLAlchemy, no greenlet)."""
            if not self._commit_here():
                await self._connection._execute(_commit_and_checkpoint, self._connection._conn)

        async def rollback_direct(self) -> None:
            if not self._rollback_here():
                await self._connection._execute(_rollback, self._connection._conn)

        @property
        def in_transaction(self) -> bool:
            return bool(self._connection._conn.in_transaction)

    class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
        def connect(self, *arg: Any, **kw: Any) -> Any:
            stock = super().connect(*arg, **kw)
            connection = OneTripConnection(self, stock._connection)
            connection.commits = 0
            return connection

    return OneTripDBAPI(aiosqlite, sqlite3)
