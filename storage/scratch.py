"""A throwaway PostgreSQL database, for tests and benchmarks that start `kindbot run`.

A database rather than a schema: a `kindbot run` subprocess reads only DATABASE_URL, and
asyncpg takes no search_path there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_pg_database(url: str, prefix: str = "kindbot_test") -> Iterator[str]:
    """A new database on the server `url` names, dropped afterwards; yields its URL.
    Call it outside a running event loop (it runs its own)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
