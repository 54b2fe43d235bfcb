"""The async database: engine and session factory, migrations at start, the key check.

Nothing is created at import time; `Database.open` builds everything from settings so tests
can make a fresh database (or PostgreSQL schema) each.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    InvalidRequestError,
    NoSuchModuleError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable

from storage import sqlite
from storage.crypto import Cipher, WrongKeyError
from storage.direct import Direct, Row
from storage.files import private_file
from storage.models import Meta
from storage.schema import SchemaNotCurrent, Upgrade
from storage.schema import ensure as ensure_schema

KEY_CHECK = "key_check"
KEY_CHECK_PLAINTEXT = "kindbot key check"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # off the loop (aiosqlite's thread); see storage/sqlite.py for statements on it
    cursor.execute(f"PRAGMA busy_timeout={sqlite.BUSY_TIMEOUT_MS}")
    cursor.close()


def _private_file(path: Path) -> None:
    """Create the database file (and its folders) readable by the owner only.

    SQLite gives its -wal and -shm files the database file's mode, so they follow."""
    private_file(path)


def sqlite_engine_options(connections: sqlite.Connections) -> dict[str, Any]:
    """Fewer SQLite round trips (each one is a trip to aiosqlite's thread).

    - Connections kindbot opens itself (storage/sqlite.py), so a step's own statements can
      run on the loop's thread.
    - No rollback when a connection goes back to the pool: SQLAlchemy's Session and
      Connection already roll back any transaction they leave open when closed, and the
      pool's extra rollback after every commit was one more trip per event for nothing.
    """
    return {"pool_reset_on_return": None, "async_creator": connections.create}


class Step:
    """One event's transaction: a Core connection, and an ORM session only when asked for.

    Most events need three statements (load the person, write the conversation, commit);
    an AsyncSession around them costs more than they do (session setup, ORM row loading,
    the unit of work at commit). So the engine's own statements (those, the user's changed
    fields, entries) are prebuilt Core statements run with `run` — on SQLite even without
    SQLAlchemy's execution layer (`direct`, storage/direct.py) — and `session` opens an
    AsyncSession bound to that same connection, hence the same transaction, the first time
    anything (an action, a command) needs one. Objects handed to `keep` (the detached user
    row) join that session when it opens, so changes made to them before or after are
    flushed like those of any loaded object.
    """

    def __init__(self, conn: AsyncConnection, direct: Direct | None = None) -> None:
        self.conn = conn
        self.direct = direct
        self._session: AsyncSession | None = None
        self._kept: list[Any] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            # Joins the connection's transaction: the session's flushes are part of it and
            # only `commit` below ends it ("conservative_savepoint", SQLAlchemy's default).
            self._session = AsyncSession(bind=self.conn, expire_on_commit=False)
            for obj in self._kept:
                self._session.add(obj)
        return self._session

    async def run(self, statement: Executable, values: dict[str, Any]) -> list[Row]:
        """A prebuilt Core statement (see storage.repo) in this step's transaction: its rows.

        An open session's pending writes go first, so statements land in the order made."""
        await self.flush()
        if self.direct is not None:
            return await self.direct.execute(statement, values)
        result = await self.conn.execute(statement, values)
        return [tuple(row) for row in result.all()] if result.returns_rows else []

    @property
    def session_opened(self) -> bool:
        return self._session is not None

    def keep(self, obj: Any) -> None:
        """Have `obj` join the session if one is opened (now or later)."""
        self._kept.append(obj)
        if self._session is not None and obj not in self._session:
            self._session.add(obj)

    def forget(self, obj: Any) -> None:
        """`obj`'s row is gone (deleted): never write it back."""
        if obj in self._kept:
            self._kept.remove(obj)
        if self._session is not None and obj in self._session:
            self._session.expunge(obj)

    async def flush(self) -> None:
        """Send the session's pending writes (if a session was opened) to the database."""
        if self._session is not None:
            await self._session.flush()

    async def commit(self) -> None:
        """Commit everything the step wrote, through SQLAlchemy or `direct` (one transaction:
        SQLAlchemy's COMMIT on the shared DBAPI connection covers the direct statements)."""
        await self.flush()
        if self.direct is not None and not self.conn.in_transaction():
            await self.direct.commit()
        else:
            await self.conn.commit()
            if self.direct is not None:
                await self.direct.committed()

    async def close(self) -> None:
        """End the step: whatever was not committed is rolled back."""
        if self._session is not None:
            await self._session.close()
        if self.conn.in_transaction():
            await self.conn.rollback()
        if self.direct is not None:
            await self.direct.rollback()


class Database:
    """One async engine and its sessions, plus the cipher for free text."""

    def __init__(
        self, engine: AsyncEngine, cipher: Cipher, connections: sqlite.Connections | None = None
    ) -> None:
        self.engine = engine
        self.connections = connections or sqlite.Connections()
        self.cipher = cipher
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.is_postgres = engine.dialect.name == "postgresql"
        # SQLite takes one writer at a time; steps of this process queue here rather than
        # on SQLite's lock (where each would fail busy and wait on a thread). See `step`.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._step_conn: tuple[AsyncConnection, Direct | None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        cipher: Cipher,
        *,
        schema: str | None = None,
        upgrade: Upgrade | None = "always",
        pool_size: int = 20,
    ) -> Database:
        """Connect, create the SQLite directory if needed, see to the schema, check the key.

        `upgrade`: "always" migrates (`kindbot migrate`, tests); "if-new" creates the
        schema in a database without one and otherwise only checks it is current
        (storage/schema.py); None leaves it alone. `pool_size`: PostgreSQL connections
        kept open (SQLAlchemy's default of 5, with 10 more opened and closed on every use,
        made a busy worker open a connection per step).
        A database that cannot be reached or opened, or whose schema is not current with
        "if-new", raises `DatabaseProblem` (one line, what to do); a folder or file kindbot
        may not create raises the OSError, naming it.
        """
        parsed = _parse_url(url)
        kwargs: dict[str, Any] = {}
        connections = sqlite.Connections()
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private_file(Path(parsed.database))
                _sqlite_opens(parsed, _sqlite_uri(Path(parsed.database), "rw"))
            if parsed.get_driver_name() == "aiosqlite":
                kwargs.update(sqlite_engine_options(connections))
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        engine = _create_engine(parsed, **kwargs)
        if engine.dialect.name == "sqlite":
            connections.args = engine.dialect.create_connect_args(parsed)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            for name in ("before_cursor_execute", "commit", "rollback"):
                event.listen(engine.sync_engine, name, connections.patient_before)
        db = cls(engine, cipher, connections)
        try:
            await reach(engine, parsed)
            if upgrade is not None:
                try:
                    await ensure_schema(engine, upgrade)
                except SchemaNotCurrent as exc:
                    raise DatabaseProblem(str(exc)) from None
            await db.check_key()
        except BaseException:
            await engine.dispose()
            raise
        return db

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        await ensure_schema(self.engine, "always")

    async def check_key(self) -> None:
        """Refuse to run with a key that cannot read this database (never silently)."""
        async with self.sessions() as session:
            row = await session.get(Meta, KEY_CHECK)
            if row is None:
                session.add(Meta(key=KEY_CHECK, value=self.cipher.encrypt(KEY_CHECK_PLAINTEXT)))
                try:
                    await session.commit()
                    return
                except IntegrityError:  # another worker starting at once wrote it first
                    await session.rollback()
                    row = await session.get(Meta, KEY_CHECK)
                    assert row is not None
            try:
                ok = self.cipher.decrypt(row.value) == KEY_CHECK_PLAINTEXT
            except WrongKeyError:
                ok = False
            if not ok:
                raise WrongKeyError(
                    "ENCRYPTION_KEY does not match the key this database was written with; "
                    "refusing to start (set the right key, or rotate with `kindbot rotate-key`)"
                )
            if not self.cipher.is_current(row.value):
                # New rows will be written with the newest key: make the check follow it, so
                # going back to an older key alone is refused at start, not mid-conversation.
                row.value = self.cipher.encrypt(KEY_CHECK_PLAINTEXT)
                await session.commit()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def step(self) -> AsyncIterator[Step]:
        """A `Step`; rolled back unless committed.

        On SQLite one step at a time in this process: SQLite serializes writers anyway,
        so waiting here costs nothing, whereas two steps interleaving would make the second
        meet SQLite's lock and wait for it there. Other processes on the same file still
        meet SQLite's own lock. Since steps take turns, they share one connection, kept open
        (no pool checkout per event), whose driver connection runs the step's own
        statements (storage/direct.py).
        On PostgreSQL steps run side by side (row locks keep each person's in order), each on
        a pooled connection.
        """
        if self._sqlite_writer is None:
            async with self.engine.connect() as conn:
                step = Step(conn)
                try:
                    yield step
                finally:
                    await step.close()
            return
        async with self._sqlite_writer:
            conn, direct = await self._sqlite_step_connection()
            step = Step(conn, direct)
            try:
                yield step
            finally:
                try:
                    await step.close()
                except BaseException:
                    await self._drop_step_connection()  # a connection we cannot trust
                    raise

    @asynccontextmanager
    async def single(self) -> AsyncIterator[Step]:
        """A `Step` for one write that stands alone (a reply's progress, its deletion).

        On PostgreSQL its connection autocommits (SQLAlchemy's AUTOCOMMIT isolation level):
        the statement is one round trip to the server, where a transaction's BEGIN, the
        statement and COMMIT are three; `commit` then has nothing left to send. On SQLite a
        step, whose commit is local."""
        if self._sqlite_writer is not None:
            async with self.step() as unit:
                yield unit
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            step = Step(conn)
            try:
                yield step
            finally:
                await step.close()

    async def _sqlite_step_connection(self) -> tuple[AsyncConnection, Direct | None]:
        if self._step_conn is None:
            conn = await self.engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
            on_loop = self.connections.on_loop(driver)  # None: not opened by storage/sqlite.py
            direct = None if on_loop is None else Direct(self.engine.dialect, on_loop)
            self._step_conn = (conn, direct)
        return self._step_conn

    async def _drop_step_connection(self, *, broken: bool = True) -> None:
        """Let the steps' kept connection go (a broken one is not returned to the pool)."""
        if self._step_conn is None:
            return
        conn, _ = self._step_conn
        self._step_conn = None
        try:
            if broken:
                await conn.invalidate()
        finally:
            await conn.close()

    async def close(self) -> None:
        await self._drop_step_connection(broken=False)
        await self.engine.dispose()


class DatabaseProblem(RuntimeError):
    """The database cannot be used as configured; the message is one line naming what to check."""


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseProblem(
            "DATABASE_URL is not a database URL (e.g. postgresql+asyncpg://user:pw@host/db, "
            "or leave it unset for SQLite in DATA_DIR)"
        ) from None


def _create_engine(parsed: URL, **kwargs: Any) -> AsyncEngine:
    try:
        return create_async_engine(parsed, **kwargs)
    except (NoSuchModuleError, InvalidRequestError, ImportError) as exc:
        raise DatabaseProblem(
            f"DATABASE_URL names a database or driver kindbot cannot use ({_reason(exc)}): "
            "use postgresql+asyncpg://... (or leave it unset for SQLite)"
        ) from exc


def _reason(exc: BaseException) -> str:
    """The driver's own words for a failure, on one line, without SQLAlchemy's wrapping."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def describe_unreachable(parsed: URL, exc: BaseException) -> str:
    """One line: which database could not be opened, why, and what to check."""
    if parsed.get_backend_name() == "sqlite":
        where = Path(parsed.database or "")
        return (
            f"cannot open the SQLite database {where} ({_reason(exc)}): check that it is a "
            f"database file and that {where.parent} and the file are writable by this user "
            "(DATA_DIR)"
        )
    shown = parsed.render_as_string(hide_password=True)
    return (
        f"cannot reach the database at {shown} ({_reason(exc)}): check DATABASE_URL and "
        "that the server is running and lets this user in"
    )


async def reach(engine: AsyncEngine, parsed: URL) -> None:
    """Open one connection (it stays in the pool): anything failing here is `DatabaseProblem`.

    Only the first connection is translated: an error later (in a migration, say) is a bug
    to see in full, not a setting to fix."""
    try:
        async with engine.connect() as conn:
            await conn.execute(select(1))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise DatabaseProblem(describe_unreachable(parsed, exc)) from exc


async def open_readonly(url: str, *, schema: str | None = None) -> AsyncEngine | None:
    """An engine that reads the database without creating or changing anything (the doctor's).

    SQLite is opened read-only and without kindbot's pragmas; None if its file does not exist
    (it is created on first start). Unreachable: `DatabaseProblem`, as at start.
    """
    parsed = _parse_url(url)
    target = parsed
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        readonly = _sqlite_readonly(parsed)
        if readonly is None:
            return None
        target = readonly
    elif schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = _create_engine(target, **kwargs)
    try:
        await reach(engine, parsed)
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _sqlite_readonly(parsed: URL) -> URL | None:
    """The SQLite file opened read-only (None: there is no file to read).

    Without a -wal file nobody has the database open and all of it is in the file: opened
    `immutable`, SQLite does not even make its -wal and -shm files. With one, plain read-only
    (which may add an empty -shm), so what a running kindbot has not checkpointed is seen.
    """
    path = Path(parsed.database or "")
    if not parsed.database or parsed.database == ":memory:" or not path.exists():
        return None
    flags = "ro" if path.with_name(path.name + "-wal").exists() else "ro&immutable=1"
    uri = _sqlite_uri(path, flags)
    _sqlite_opens(parsed, uri)
    return parsed.set(database=uri, query={"uri": "true"})


def _sqlite_uri(path: Path, mode: str) -> str:
    return f"file:{quote(str(path.resolve()))}?mode={mode}"


def _sqlite_opens(parsed: URL, uri: str) -> None:
    """Open the file once, here: a file SQLite cannot open fails in aiosqlite's connect on
    its thread, which then reports to an event loop that may be gone by then (a traceback
    from that thread at exit, after the one line that explains it)."""
    try:
        sqlite3.connect(uri, uri=True).close()
    except sqlite3.Error as exc:
        raise DatabaseProblem(describe_unreachable(parsed, exc)) from exc


async def read_key_check(engine: AsyncEngine) -> str | None:
    """The stored key check token (None: none yet, or no tables yet), read without writing."""
    from sqlalchemy import inspect

    async with engine.connect() as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table(Meta.__tablename__)):
            return None
    async with AsyncSession(engine) as session:
        row = await session.get(Meta, KEY_CHECK)
        return row.value if row is not None else None


def key_reads(token: str | None, keys: list[str]) -> bool:
    """Whether `keys` read the key check `token` (a database without one: any key does)."""
    if token is None:
        return True
    try:
        return Cipher(keys).decrypt(token) == KEY_CHECK_PLAINTEXT
    except WrongKeyError:
        return False
