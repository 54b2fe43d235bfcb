"""Everything stored about one person, found generically over every table in the metadata.

A table holds data about a person when it has a `user_id` column or any foreign key to
`users.id` (a convention every branch follows), so tables added later are exported and
erased without touching this file. Encrypted `*_enc` columns are decrypted for export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from storage.crypto import Cipher
from storage.models import User

USERS = "users"
ENC_SUFFIX = "_enc"


def person_columns(table: Table) -> list[Column[Any]]:
    """The columns of `table` that point at a person (`user_id`, or a foreign key to users)."""
    found = []
    for column in table.columns:
        if column.name == "user_id" or any(
            fk.column.table.name == USERS and fk.column.name == "id" for fk in column.foreign_keys
        ):
            found.append(column)
    return found


def person_tables() -> Iterator[tuple[Table, list[Column[Any]]]]:
    """Every table (except users) holding rows about a person, children before parents."""
    for table in reversed(SQLModel.metadata.sorted_tables):
        if table.name == USERS:
            continue
        columns = person_columns(table)
        if columns:
            yield table, columns


def exported_tables() -> Iterator[tuple[Table, list[Column[Any]]]]:
    """`person_tables` without those in transit (the outbox): what an export holds."""
    return ((t, c) for t, c in person_tables() if t.info.get("export") is not False)


def encrypted_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if c.name.endswith(ENC_SUFFIX)]


async def find_users(
    session: AsyncSession, *, external_id: str, channel: str | None = None
) -> list[User]:
    query = select(User).where(col(User.external_id) == external_id)
    if channel:
        query = query.where(col(User.channel) == channel)
    return list((await session.execute(query.order_by(col(User.channel)))).scalars())


async def is_person(session: AsyncSession, *, user_id: int, channel: str, external_id: str) -> bool:
    """Whether the users row `user_id` is still this person's: work done after their step
    (a chart, an export) finds them gone after a /forget, and SQLite may give a deleted
    row's id to the next person who arrives."""
    query = select(col(User.id)).where(
        col(User.id) == user_id,
        col(User.channel) == channel,
        col(User.external_id) == external_id,
    )
    return (await session.execute(query)).first() is not None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _decrypted(name: str, value: Any, cipher: Cipher) -> tuple[str, Any]:
    """`answers_enc` → (`answers`, its decrypted JSON object, or the decrypted text)."""
    if not name.endswith(ENC_SUFFIX) or value is None:
        return name, _plain(value)
    text = cipher.decrypt(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return name.removesuffix(ENC_SUFFIX), parsed if isinstance(parsed, dict | list) else text


def _row_dict(table: Table, row: Any, cipher: Cipher) -> dict[str, Any]:
    mapping = row._mapping
    return dict(_decrypted(c.name, mapping[c], cipher) for c in table.columns)


async def dump_person(session: AsyncSession, *, user_id: int, cipher: Cipher) -> dict[str, Any]:
    """The users row and every row about them, per table, decrypted and JSON-ready."""
    users = SQLModel.metadata.tables[USERS]
    user_row = (await session.execute(select(users).where(users.c.id == user_id))).one_or_none()
    if user_row is None:
        raise LookupError("no such user")
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, columns in sorted(exported_tables(), key=lambda t: t[0].name):
        condition = columns[0] == user_id
        for column in columns[1:]:
            condition = condition | (column == user_id)
        query = select(table).where(condition).order_by(*table.primary_key.columns)
        rows = (await session.execute(query)).all()
        tables[table.name] = [_row_dict(table, row, cipher) for row in rows]
    return {"user": _row_dict(users, user_row, cipher), "tables": tables}


async def erase_person(session: AsyncSession, *, user_id: int) -> dict[str, int]:
    """Delete every row about a person in every table, then the person; counts per table.

    Explicit deletes rather than relying on ON DELETE CASCADE alone: a table whose foreign
    key was declared without it must not keep anything either.
    """
    counts: dict[str, int] = {}
    for table, columns in person_tables():
        for column in columns:
            result = await session.execute(delete(table).where(column == user_id))
            counts[table.name] = counts.get(table.name, 0) + (result.rowcount or 0)  # type: ignore[attr-defined]
    users = SQLModel.metadata.tables[USERS]
    result = await session.execute(delete(users).where(users.c.id == user_id))
    counts[USERS] = result.rowcount or 0  # type: ignore[attr-defined]
    return counts


async def rows_about(session: AsyncSession, *, user_id: int) -> dict[str, int]:
    """How many rows still point at this person, per table (the users row included)."""
    counts: dict[str, int] = {}
    for table, columns in person_tables():
        for column in columns:
            query = select(func.count()).select_from(table).where(column == user_id)
            counts[table.name] = counts.get(table.name, 0) + (await session.scalar(query) or 0)
    users = SQLModel.metadata.tables[USERS]
    query = select(func.count()).select_from(users).where(users.c.id == user_id)
    counts[USERS] = await session.scalar(query) or 0
    return counts
