"""SQLite connections whose statements can run on the event loop, on public APIs only.

aiosqlite runs every sqlite3 call on a thread of its own, and each call is a trip there and
back: a queue hand-off, an event-loop wake-up and the GIL passed between two threads, tens
of µs and over 100 µs under load, while a kindbot statement on a local file takes a few µs.
A step (load the person, write the conversation, commit) would spend most of its database
time on those trips. So kindbot opens each SQLite connection itself (`Connections.create`,
given to SQLAlchemy as `create_async_engine(async_creator=...)`): a stdlib `sqlite3`
connection, handed to `aiosqlite.Connection` (aiosqlite's public constructor) for everything
SQLAlchemy does, and kept here so a step's own statements (storage/direct.py) can run it
directly on the loop's thread, in the same transaction.

What must never happen on the loop is waiting. Statements run there with busy timeout 0: one
that would wait for a lock held by another connection (of this process, whose holder may need
the loop to go on, or of another process) fails at once with SQLITE_BUSY and is run again on
aiosqlite's thread with the patient timeout (`BUSY_TIMEOUT_MS`), where SQLAlchemy's own
statements always run. The timeout is switched only when the side changes (`Connections.
impatient` / `patient`), not around every statement: two PRAGMAs per statement were a third
of a step's SQLite calls. SQLAlchemy's events on the engine (`patient_before`) make the
connection patient again before anything of SQLAlchemy's reaches it.

What does sync the disk is a checkpoint (copying the WAL into the database file), which
SQLite would run inside some commit: the steps' connection turns that off
(`no_autocheckpoint`) and every `CHECKPOINT_EVERY`-th commit runs a passive checkpoint on
aiosqlite's thread instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from weakref import WeakKeyDictionary, WeakSet

import aiosqlite

Row = tuple[Any, ...]
T = TypeVar("T")

# How long a statement waits for another connection's lock before failing, off the loop.
BUSY_TIMEOUT_MS = 10_000
# SQLite's own auto-checkpoint runs every 1000 WAL pages; a step writes a few pages.
CHECKPOINT_EVERY = 200
_BUSY, _LOCKED = 5, 6  # SQLite primary result codes (extended codes keep them in the low byte)


def is_busy(error: BaseException) -> bool:
    """A lock held by another connection (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF in (_BUSY, _LOCKED)
    )


class Connections:
    """The `async_creator` of a SQLite engine: aiosqlite connections over sqlite3 ones kept here.

    `args` are the dialect's own connect arguments (`Dialect.create_connect_args`), set once
    the engine exists, so a connection is opened exactly as SQLAlchemy would open it.
    """

    def __init__(self) -> None:
        self.args: tuple[Sequence[Any], Mapping[str, Any]] = ((), {})
        self._raw: WeakKeyDictionary[aiosqlite.Connection, sqlite3.Connection] = WeakKeyDictionary()
        # connections whose busy timeout is 0 now (they ran a statement on the loop last)
        self._impatient: WeakSet[aiosqlite.Connection] = WeakSet()

    async def create(self) -> aiosqlite.Connection:
        cargs, cparams = self.args
        opened: list[sqlite3.Connection] = []

        def connect() -> sqlite3.Connection:  # on aiosqlite's thread
            # used from the loop's thread too (one at a time: see storage/direct.py)
            raw: sqlite3.Connection = sqlite3.connect(
                *cargs, **{**cparams, "check_same_thread": False}
            )
            opened.append(raw)
            return raw

        connection: aiosqlite.Connection = await aiosqlite.Connection(connect, iter_chunk_size=64)
        self._raw[connection] = opened[0]
        return connection

    def on_loop(self, connection: Any) -> OnLoop | None:
        """Loop-first statements on an aiosqlite connection made here (else None)."""
        if isinstance(connection, aiosqlite.Connection) and connection in self._raw:
            return OnLoop(connection, self._raw[connection], self)
        return None

    def impatient(self, driver: aiosqlite.Connection) -> None:
        """Busy timeout 0 (on the loop's thread, before a statement there)."""
        if driver not in self._impatient:
            self._raw[driver].execute("PRAGMA busy_timeout=0")
            self._impatient.add(driver)

    def patient(self, driver: aiosqlite.Connection) -> None:
        """The patient busy timeout again, before anything runs on aiosqlite's thread.

        Called on the loop's thread while aiosqlite's thread has nothing of this
        connection's (one user at a time), so the PRAGMA cannot race a statement there."""
        if driver in self._impatient:
            self._raw[driver].execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._impatient.discard(driver)

    def patient_before(self, conn: Any, *_: Any) -> None:
        """SQLAlchemy's `before_cursor_execute`, `commit` and `rollback` events: the
        statement, COMMIT or ROLLBACK about to go to aiosqlite's thread finds the patient
        timeout (a step's ORM session shares the connection its direct statements use)."""
        driver = conn.connection.driver_connection
        if isinstance(driver, aiosqlite.Connection):
            self.patient(driver)


class OnLoop:
    """One connection's statements on the event loop's thread, or patiently off it.

    Only one caller at a time may use it (the steps' connection, under the database's
    writer lock), and never while aiosqlite's thread runs something on the same connection.
    """

    def __init__(
        self, driver: aiosqlite.Connection, raw: sqlite3.Connection, connections: Connections
    ) -> None:
        self.driver = driver
        self.raw = raw
        self.connections = connections
        self.commits = 0
        raw.execute("PRAGMA wal_autocheckpoint=0")

    def _now(self, fn: Callable[[], T]) -> T:
        """`fn` on the loop's thread, failing at once (SQLITE_BUSY) rather than waiting."""
        self.connections.impatient(self.driver)
        return fn()

    def _patient(self) -> None:
        """Before a call on aiosqlite's thread: the patient timeout."""
        self.connections.patient(self.driver)

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            rows: list[Row] = self._now(lambda: self.raw.execute(sql, params).fetchall())
            return rows
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
        self._patient()
        return [tuple(row) for row in await self.driver.execute_fetchall(sql, params)]

    async def commit(self) -> None:
        try:
            self._now(self.raw.commit)
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            self._patient()
            await self.driver.commit()
        await self.committed()

    async def committed(self) -> None:
        """After any commit on this connection (also SQLAlchemy's): every
        CHECKPOINT_EVERY-th, a passive checkpoint on aiosqlite's thread."""
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0:
            self._patient()
            await self.driver.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    async def rollback(self) -> None:
        if not self.raw.in_transaction:
            return
        try:
            self._now(self.raw.rollback)
            return
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
        self._patient()
        await self.driver.rollback()
