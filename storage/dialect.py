"""What differs between SQLite and PostgreSQL in kindbot's SQL, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_or_ignore(
    session: AsyncSession, table: Any, values: dict[str, Any], *, unique: Sequence[str]
) -> Insert:
    """INSERT … ON CONFLICT (`unique`) DO NOTHING in the session's dialect: a row another
    worker (or an earlier attempt) already wrote is left as it is, without an error."""
    if is_postgres(session):  # imported here: a SQLite worker never loads the dialect
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(unique))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(unique))
