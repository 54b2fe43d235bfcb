"""How another process (the offload worker, bot/offload.py) opens the bot's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import Cipher
from storage.db import Database


@dataclass(frozen=True)
class DatabaseSource:
    """The same URL, keys and schema as the bot's own `Database`, in a picklable form.

    It travels to the worker through the process pool's pipe (the keys are in the bot's
    environment, which the worker inherits anyway); never shown in a repr or a log.
    """

    url: str = field(repr=False)
    keys: str = field(repr=False)
    schema: str | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[tuple[AsyncSession, Cipher]]:
        """A read session of the worker's own (opened and closed per job: jobs are rare)."""
        db = await Database.open(
            self.url, Cipher.from_string(self.keys), schema=self.schema, upgrade=None
        )
        try:
            async with db.session() as session:
                yield session, db.cipher
        finally:
            await db.close()
