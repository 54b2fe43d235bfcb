"""A database opened only to be looked at (`kindbot doctor`), and its URL as an operator
sees it. Nothing here creates, migrates or writes: SQLite is opened read-only, so the
doctor is safe before a first start and beside a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.db import describe_unreachable, open_readonly, read_key_check
from storage.models import OutboxReply
from storage.schema import revisions as schema_revisions


def shown_url(url: str) -> str | None:
    """The URL with its password hidden; None if it is not a database URL at all."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return None


def sqlite_files(url: str) -> list[Path]:
    """A SQLite database's file and its -wal and -shm beside it; none for PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    base = Path(parsed.database)
    return [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]


async def _has_table(conn: AsyncConnection, name: str) -> bool:
    return await conn.run_sync(lambda c: inspect(c).has_table(name))


@dataclass(frozen=True)
class ReadonlyDatabase:
    """An engine that only reads (`storage.db.open_readonly`), with the questions the
    doctor asks of it."""

    url: str = field(repr=False)
    engine: AsyncEngine = field(repr=False)

    @classmethod
    async def open(cls, url: str) -> ReadonlyDatabase | None:
        """None if the database is not made yet (a SQLite file not there); one that cannot
        be reached raises `storage.db.DatabaseProblem`, as at start."""
        engine = await open_readonly(url)
        return None if engine is None else cls(url, engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def unreachable(self, exc: BaseException) -> str:
        """One line for a failure after the database was reached: which, why, what to check."""
        return describe_unreachable(make_url(self.url), exc)

    async def schema_revisions(self) -> tuple[set[str], set[str]]:
        """(the database's Alembic revisions, the code's heads)."""
        return await schema_revisions(self.engine)

    async def key_check(self) -> str | None:
        """The stored key check token (None: nothing encrypted yet, or no tables yet)."""
        return await read_key_check(self.engine)

    async def has_table(self, name: str) -> bool:
        async with self.engine.connect() as conn:
            return await _has_table(conn, name)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for another module's reads; never committed, so nothing it might
        write stays."""
        async with AsyncSession(self.engine) as session:
            yield session

    async def outbox_backlog(self) -> tuple[int, datetime | None] | None:
        """How many replies wait in the outbox and since when (None: no outbox table yet);
        only their number and age, never what they say."""
        async with self.engine.connect() as conn:
            if not await _has_table(conn, OutboxReply.__tablename__):
                return None
            query = select(func.count(), func.min(OutboxReply.created_at)).select_from(OutboxReply)
            count, oldest = (await conn.execute(query)).one()
        return count, oldest
