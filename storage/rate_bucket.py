"""The shared token bucket's row (`reminder_rate`): reserving tokens and going into debt.

Each change first takes the row's write lock (PostgreSQL: the row; SQLite: the database)
with a no-op UPDATE, so two workers never refill from the same old state.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import insert_or_ignore
from storage.models import ReminderRate

ROW_ID = 1


async def _lock_row(session: AsyncSession, *, now: datetime, burst: float) -> None:
    result = await session.execute(
        update(ReminderRate)
        .where(col(ReminderRate.id) == ROW_ID)
        .values(tokens=col(ReminderRate.tokens))
    )
    if getattr(result, "rowcount", 1) == 0:
        row = {"id": ROW_ID, "tokens": burst, "updated_at": now}
        await session.execute(insert_or_ignore(session, ReminderRate, row, unique=("id",)))


async def reserve(
    session: AsyncSession,
    *,
    now: datetime,
    rate: float,
    burst: float,
    want: int,
    spent: int = 0,
) -> tuple[int, float]:
    """Refill at `rate` per second up to `burst`, charge `spent` tokens used elsewhere (never
    more than a second's worth of debt), take up to `want` whole ones (not committed).
    Returns (granted, tokens left)."""
    await _lock_row(session, now=now, burst=burst)
    row = (
        await session.execute(
            select(col(ReminderRate.tokens), col(ReminderRate.updated_at)).where(
                col(ReminderRate.id) == ROW_ID
            )
        )
    ).one()
    stamp = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    elapsed = max(0.0, (now - stamp).total_seconds())
    tokens = min(burst, row.tokens + elapsed * rate)
    if spent:  # (a hold's deeper debt stays as it is)
        tokens = max(min(tokens, -rate), tokens - spent)
    granted = max(0, min(want, math.floor(tokens)))
    tokens -= granted
    await session.execute(
        update(ReminderRate)
        .where(col(ReminderRate.id) == ROW_ID)
        .values(tokens=tokens, updated_at=max(now, stamp))
    )
    return granted, tokens


async def go_into_debt(
    session: AsyncSession, *, now: datetime, tokens: float, burst: float
) -> None:
    """Set the bucket to `tokens` (negative: everyone waits until it refills); not committed."""
    await _lock_row(session, now=now, burst=burst)
    await session.execute(
        update(ReminderRate)
        .where(col(ReminderRate.id) == ROW_ID)
        .values(tokens=tokens, updated_at=now)
    )
