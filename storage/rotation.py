"""Key rotation: re-encrypt every `*_enc` column of every table, and the key check, at once.

All of it happens in one transaction, read and written in batches: either every value is
under the new key, or (on any error) nothing changed. Each rotated value is decrypted with
the new key alone before it is written, so a commit means the new key reads everything.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from storage.crypto import Cipher
from storage.db import (
    KEY_CHECK,
    KEY_CHECK_PLAINTEXT,
    Database,
    key_reads,
    open_readonly,
    read_key_check,
)
from storage.models import Meta
from storage.personal import encrypted_columns

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class RotationReport:
    values: int = 0
    tables: dict[str, int] = field(default_factory=dict)


class KeyState(enum.Enum):
    """Which key reads a database's key check: how an interrupted rotation is told apart."""

    UNWRITTEN = "unwritten"  # no key check yet: nothing was ever encrypted
    CURRENT = "current"  # the key(s) in use read it: a rotation never committed
    PENDING = "pending"  # only the new key reads it: the rotation committed
    NEITHER = "neither"


async def key_state(url: str, *, current: list[str], pending: list[str]) -> KeyState:
    """Which of two key sets reads the database at `url`, read without changing anything.

    The rotation writes the key check in the same transaction as every value, so the key
    that reads the check reads everything; the other key encrypted nothing that is stored.
    """
    engine = await open_readonly(url)
    if engine is None:
        return KeyState.UNWRITTEN
    try:
        token = await read_key_check(engine)
    finally:
        await engine.dispose()
    if token is None:
        return KeyState.UNWRITTEN
    if pending and key_reads(token, pending):
        return KeyState.PENDING
    if current and key_reads(token, current):
        return KeyState.CURRENT
    return KeyState.NEITHER


async def rotate_database(
    db: Database, *, old: list[str], new: str, batch: int = BATCH
) -> RotationReport:
    """Re-encrypt everything `old` keys can read under `new`; raises and rolls back on error."""
    both = Cipher([new, *old])
    new_only = Cipher([new])
    report = RotationReport()
    async with db.session() as session, session.begin():
        for table in SQLModel.metadata.sorted_tables:
            columns = encrypted_columns(table)
            if not columns:
                continue
            count = await _rotate_table(session, table, both, new_only, batch)
            report.tables[table.name] = count
            report.values += count
        check = await session.get(Meta, KEY_CHECK)
        if check is None:
            check = Meta(key=KEY_CHECK, value="")
            session.add(check)
        check.value = new_only.encrypt(KEY_CHECK_PLAINTEXT)
        await session.flush()
    log.info("rotated %d encrypted values in %d tables", report.values, len(report.tables))
    return report


async def _rotate_table(
    session: AsyncSession, table: Table, both: Cipher, new_only: Cipher, batch: int
) -> int:
    keys = list(table.primary_key.columns)
    columns = encrypted_columns(table)
    statement = (
        update(table)
        .where(*[k == bindparam(f"pk_{k.name}") for k in keys])
        .values({c.name: bindparam(f"v_{c.name}") for c in columns})
    )
    done = 0
    offset = 0
    while True:
        query = select(*keys, *columns).order_by(*keys).limit(batch).offset(offset)
        rows = (await session.execute(query)).all()
        if not rows:
            break
        params = []
        for row in rows:
            values = {}
            for column in columns:
                token = row._mapping[column]
                if token is not None:
                    token = both.rotate(token)
                    new_only.decrypt(token)  # proves the new key alone reads it
                    done += 1
                values[f"v_{column.name}"] = token
            params.append({**{f"pk_{k.name}": row._mapping[k] for k in keys}, **values})
        await session.execute(statement, params)
        offset += len(rows)
        log.debug("rotated a batch of %d rows in %s", len(rows), table.name)
    return done
