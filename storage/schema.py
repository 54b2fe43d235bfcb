"""Which schema revision a database is at, and bringing it to the code's, on purpose.

`kindbot migrate` applies migrations; every other command (`run`, `chat`, ...) only reads the
revision, so several workers starting at once never race on a migration, and a deploy that
needs one says so instead of changing the database behind the operator's back. One case is
the exception: a database with no kindbot tables at all is created at start, so a fresh
machine still needs only `kindbot run` (under a PostgreSQL advisory lock, so workers starting
together create it once).

`HEAD` is the newest revision in storage/migrations, written here so that a start on a
current database never imports Alembic (11.5 MiB of a worker's memory);
tests/storage/test_migrations.py checks it against Alembic's own heads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0007"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key for migrations (0x6B62 "kb"; the outbox's owners use key 1 0x6B62
# with their own ids, so migrations use a key 1 of their own).
_MIGRATION_LOCK = (0x6B6D, 0)

Upgrade = Literal["always", "if-new"]


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this code needs; the message says what to do."""


def _revision(connection: Connection) -> str | None:
    """The database's revision; None when it has no kindbot tables at all ("" if it has
    tables but no revision: not a database kindbot made)."""
    names = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in names:
        return "" if "users" in names else None
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return ",".join(sorted(found)) if found else None


async def revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_revision)


async def ensure(engine: AsyncEngine, upgrade: Upgrade) -> None:
    """Migrate (`always`), or check the schema is current and create it if there is none.

    Neither touches a database whose revision this code does not know (a newer kindbot's)
    or one with tables but no revision (not kindbot's)."""
    found = await revision(engine)
    if found == HEAD:
        return
    if found is not None and (upgrade == "if-new" or not _older(found)):
        raise SchemaNotCurrent(_not_current(found))
    async with engine.begin() as conn:
        await _lock(conn)
        if await conn.run_sync(_revision) == HEAD:
            return  # another worker got there while this one waited for the lock
        await conn.run_sync(_upgrade)


def _older(found: str) -> bool:
    return found.isdigit() and len(found) == len(HEAD) and found < HEAD


def _not_current(found: str) -> str:
    if not found:
        return (
            "the database has tables but no kindbot schema revision: "
            "point DATABASE_URL at kindbot's own database"
        )
    if _older(found):
        return (
            f"the database schema is at revision {found} and this kindbot needs {HEAD}: "
            "back it up, then run `kindbot migrate`"
        )
    return (
        f"the database schema is at revision {found}, which this kindbot does not know "
        f"(it needs {HEAD}): it was written by a newer kindbot; run that version"
    )


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        key1, key2 = _MIGRATION_LOCK
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k1, :k2)"), {"k1": key1, "k2": key2})


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for storage/migrations (Alembic imported only when needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def revisions(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """(the database's Alembic revisions, the code's heads), read without migrating."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        found = await conn.run_sync(current)
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    return found, heads
