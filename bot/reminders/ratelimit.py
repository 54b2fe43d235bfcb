"""The global reminder rate limit, shared through the database by every dispatcher.

The bucket's state (tokens, last refill) is one row, `reminder_rate`. A dispatcher reserves a
few tokens at a time in a short transaction that first takes the row's write lock (PostgreSQL
row lock; SQLite's single writer), refilling at `rate` per second up to `burst`. Tokens it
does not use within a second are dropped, so several dispatchers together send at most
`rate × T + burst + dispatchers × chunk` messages in any T seconds. A 429 from Telegram
(`hold`) drives the shared bucket negative, so every dispatcher waits it out, not just one.

Replies are sent without asking the database (a person waiting must not wait on it), but each
worker reports the ones it sent in the last second (`spent_elsewhere`) with its next
reservation, in the same statement: reminders across all workers use what replies leave.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from storage import rate_bucket
from storage.db import Database

LOCAL_TTL_SECONDS = 1.0


class Clock(Protocol):
    """Time for the dispatcher: `now` (aware, UTC) and `sleep`; tests inject their own."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Limiter(Protocol):
    async def acquire(self, count: int = 1) -> None: ...

    async def hold(self, seconds: float) -> None: ...


class Unlimited:
    """No rate limit (REMINDER_RATE_LIMIT=0), but a 429 still pauses sending."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._hold_until: datetime | None = None

    async def acquire(self, count: int = 1) -> None:
        if self._hold_until is not None:
            wait = (self._hold_until - self.clock.now()).total_seconds()
            if wait > 0:
                await self.clock.sleep(wait)

    async def hold(self, seconds: float) -> None:
        until = self.clock.now().timestamp() + seconds
        self._hold_until = datetime.fromtimestamp(until, UTC)


class SharedBucket:
    """A token bucket whose state lives in the database (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        rate: float,
        *,
        clock: Clock,
        burst: float | None = None,
        chunk: int | None = None,
        spent_elsewhere: Callable[[], int] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (use Unlimited for no limit)")
        self.db = db
        self.rate = rate
        self.clock = clock
        self.burst = max(1.0, burst if burst is not None else rate * 0.5)
        self.chunk = max(1, chunk if chunk is not None else math.ceil(rate / 10))
        self._local = 0
        self._local_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.reservations = 0
        self.spent_elsewhere = spent_elsewhere

    async def acquire(self, count: int = 1) -> None:
        """Wait until `count` messages may be sent."""
        async with self._lock:
            while True:
                now = self.clock.now()
                if self._local_at is not None and (
                    (now - self._local_at).total_seconds() > LOCAL_TTL_SECONDS
                ):
                    self._local = 0
                if self._local >= count:
                    self._local -= count
                    return
                granted, wait = await self._reserve(max(self.chunk, count - self._local), now)
                if granted:
                    self._local += granted
                    self._local_at = now
                    continue
                await self.clock.sleep(wait)

    async def hold(self, seconds: float) -> None:
        """Everyone pauses for `seconds`: the bucket goes `rate × seconds` into debt."""
        self._local = 0
        async with self.db.session() as session:
            await rate_bucket.go_into_debt(
                session, now=self.clock.now(), tokens=-self.rate * seconds, burst=self.burst
            )
            await session.commit()

    async def _reserve(self, want: int, now: datetime) -> tuple[int, float]:
        """Take up to `want` whole tokens; (granted, seconds until the next one)."""
        self.reservations += 1
        spent = self.spent_elsewhere() if self.spent_elsewhere is not None else 0
        async with self.db.session() as session:
            granted, tokens = await rate_bucket.reserve(
                session, now=now, rate=self.rate, burst=self.burst, want=want, spent=spent
            )
            await session.commit()
        wait = 0.0 if granted else max(0.001, (1 - tokens) / self.rate)
        return granted, wait
