"""What operators ask of the database: does it answer, and how many replies wait to be sent."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.db import Database
from storage.models import OutboxReply


async def unsent_replies(db: Database) -> int:
    """Replies committed but not yet (fully) sent.

    Also the health check's query: it reads a real table, so a database that answers but has
    lost kindbot's schema (or a SQLite file replaced by an empty one) is not called healthy,
    as a bare `SELECT 1` would."""
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(OutboxReply))
        return int(count or 0)
