"""The reminder dispatcher: one repeating loop that claims due reminders and sends them.

Per tick, in one short transaction, it
1. takes over deliveries another dispatcher claimed but never finished (lease expired: it was
   killed mid-send), and
2. claims due schedules (`next_due_utc <= now`; PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's
   single writer), inserting one `reminder_deliveries` row per (schedule, due instant) — unique,
   so an occurrence is never claimed twice — and advancing `next_due_utc` to the next local
   occurrence; a reminder more than an hour late is recorded as skipped instead.
Then it sends the claimed ones through the shared rate limit, recording each outcome as soon
as it is known (the channel's sender keeps to its per-chat limits; on Telegram, from the
budget replies leave: bot/telegram/budget.py). After a crash, every claim still open
is sent by whoever takes it over, so duplicates are at most the sends in flight at the crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot import metrics
from bot.config import Settings
from bot.engine.events import Message, Reminder, UserRef
from bot.engine.runner import Engine
from bot.reminders import store
from bot.reminders.ratelimit import Clock, Limiter, SharedBucket, SystemClock, Unlimited
from bot.reminders.schedule import next_occurrence, parse_hhmm, zone
from bot.reminders.sender import Blocked, RetryLater, Sender
from storage import reminders as rows
from storage.db import Database
from storage.models import User, as_utc
from storage.reminders import FAILED, SENT, SKIPPED

log = logging.getLogger(__name__)

DUE_CHECK_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class DispatcherConfig:
    rate_limit: float = 25.0  # messages per second, all dispatchers together; 0 = no limit
    poll_seconds: float = 5.0
    lease_seconds: float = 120.0
    max_attempts: int = 5
    late_after: timedelta = timedelta(hours=1)
    batch_size: int = 0  # 0: what the rate allows in one poll interval
    concurrency: int = 16
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_later: int = 10
    keep_days: int = 14

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatcherConfig:
        return cls(
            rate_limit=settings.reminder_rate_limit,
            poll_seconds=settings.reminder_poll_seconds,
            lease_seconds=settings.reminder_lease_seconds,
            max_attempts=settings.reminder_max_attempts,
        )

    @property
    def batch(self) -> int:
        if self.batch_size:
            return self.batch_size
        if self.rate_limit <= 0:
            return 200
        return max(1, min(500, math.ceil(self.rate_limit * self.poll_seconds)))

    @property
    def lease(self) -> timedelta:
        """Long enough to send a whole batch at the rate limit, with room to spare."""
        needed = 4 * self.batch / self.rate_limit if self.rate_limit > 0 else 0
        return timedelta(seconds=max(self.lease_seconds, needed))


@dataclass
class Claim:
    delivery_id: int
    schedule_id: int
    kind: str
    due_utc: datetime
    attempts: int
    user: User
    leased_until: datetime | None = None


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    blocked: int = 0
    recovered: int = 0


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    """Claims and sends due reminders; `start()` runs it as a task, `stop()` ends it."""

    def __init__(
        self,
        db: Database,
        engine: Engine,
        sender: Sender,
        *,
        config: DispatcherConfig | None = None,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        owner: str | None = None,
        spent_elsewhere: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.sender = sender
        self.config = config or DispatcherConfig()
        self.clock = clock or SystemClock()
        if limiter is None:
            limiter = (
                SharedBucket(
                    db, self.config.rate_limit, clock=self.clock, spent_elsewhere=spent_elsewhere
                )
                if self.config.rate_limit > 0
                else Unlimited(self.clock)
            )
        self.limiter = limiter
        self.owner = (owner or _owner())[:64]
        self.stats = Stats()
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_prune: datetime | None = None
        self._due_checked: datetime | None = None
        self._unreadable: set[int] = set()  # schedules whose due time cannot be read
        self._told: set[tuple[int, str]] = set()  # (schedule, stored value) already logged

    # -- running -----------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name=f"reminders {self.owner}")
        return self._task

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the batch in hand (up to `grace` seconds), then end; open claims expire
        and are sent by whoever runs next."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        log.info("reminder dispatcher %s started", self.owner)
        while not self._stopping.is_set():
            try:
                handled = await self.tick()
                await self._maybe_prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not end the loop
                log.error("reminder tick failed: %s", type(exc).__name__)
                handled = 0
            if handled < self.config.batch and not self._stopping.is_set():
                await self._idle(self.config.poll_seconds)
        log.info("reminder dispatcher %s stopped", self.owner)

    async def _idle(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stopping.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await future

    async def tick(self) -> int:
        """Claim one batch and send it; returns how many deliveries were claimed."""
        claims = await self.claim()
        if claims:
            await asyncio.gather(*(self._deliver(claim) for claim in claims))
        return len(claims)

    # -- claiming ----------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    async def claim(self) -> list[Claim]:
        """Take over expired claims, then claim due schedules; all in one transaction."""
        now = self._now()
        expires = now + self.config.lease
        limit = self.config.batch
        claims: list[Claim] = []
        channel = self.sender.channel
        await self._check_due_times(now)
        async with self.db.session() as session:
            stale = await rows.expired_claims(session, channel=channel, now=now, limit=limit)
            for delivery, user in stale:
                late = now - as_utc(delivery.due_utc) > self.config.late_after
                taken = await rows.take_over(
                    session, delivery, owner=self.owner, expires=expires, late=late
                )
                if not taken:
                    continue
                if late:
                    self.stats.skipped += 1
                    continue
                self.stats.recovered += 1
                assert delivery.id is not None
                claims.append(
                    Claim(
                        delivery.id,
                        delivery.schedule_id,
                        delivery.kind,
                        as_utc(delivery.due_utc),
                        delivery.attempts,
                        user,
                    )
                )

            # (Unreadable due times are left out: read, they would fail every batch.)
            due = await rows.due_schedules(
                session, channel=channel, now=now, limit=limit - len(claims), skip=self._unreadable
            )
            for schedule, user in due:
                assert schedule.id is not None
                assert schedule.next_due_utc is not None
                due_at = as_utc(schedule.next_due_utc)
                late = now - due_at > self.config.late_after
                following = next_occurrence(
                    now if late else due_at,
                    parse_hhmm(schedule.local_time),
                    zone(schedule.timezone),
                    days=schedule.days,
                    paused_until=(as_utc(schedule.paused_until) if schedule.paused_until else None),
                )
                if not await rows.advance(session, schedule, following=following, now=now):
                    # Another dispatcher got there first, or (SQLite) the stored text is in
                    # another form than the one compared: look at the due times next tick.
                    self._due_checked = None
                    continue
                delivery_id = await rows.add_delivery(
                    session,
                    schedule,
                    due_utc=due_at,
                    now=now,
                    owner=self.owner,
                    expires=expires,
                    late=late,
                )
                if late:
                    self.stats.skipped += 1
                    continue
                if delivery_id is None:
                    continue  # this occurrence was already claimed once
                claims.append(Claim(delivery_id, schedule.id, schedule.kind, due_at, 0, user))
            await session.commit()
        for claim in claims:
            claim.leased_until = expires
        self.stats.claimed += len(claims)
        return claims

    async def _check_due_times(self, now: datetime) -> None:
        """On SQLite, put due times stored in another text form into kindbot's one form.

        Compared as text, such a value is never due or never moves, silently, forever (a
        row written by hand or by an older version). Checked at the first tick, hourly, and
        after a claim that could not move its row; each value found is logged once.
        """
        if self.db.is_postgres:
            return  # a typed column: PostgreSQL parses any form on the way in
        if self._due_checked is not None and now - self._due_checked < DUE_CHECK_EVERY:
            return
        self._due_checked = now
        async with self.db.session() as session:
            repaired = await store.repair_due_times(session, now=now)
            await session.commit()
        self._unreadable = set()
        for odd, outcome in repaired:
            if outcome is store.Repair.LEFT:
                self._unreadable.add(odd.schedule_id)
            if (odd.schedule_id, odd.stored) in self._told:
                continue
            self._told.add((odd.schedule_id, odd.stored))
            shown = odd.stored[:40]
            if outcome is store.Repair.REWRITTEN:
                log.warning(
                    "reminder schedule %d: due time %r was stored in another text form; "
                    "rewritten as the same instant",
                    odd.schedule_id,
                    shown,
                )
            elif outcome is store.Repair.RECOMPUTED:
                log.warning(
                    "reminder schedule %d: due time %r is not a time; computed again from "
                    "the reminder's local time",
                    odd.schedule_id,
                    shown,
                )
            else:
                log.error(
                    "reminder schedule %d: due time %r is not a time, and the reminder's own "
                    "time or zone cannot be read either: it is not sent until it is set again "
                    "(see `kindbot doctor`)",
                    odd.schedule_id,
                    shown,
                )

    # -- sending -----------------------------------------------------------------------
    async def _deliver(self, claim: Claim) -> None:
        async with self._slots:
            try:
                await self._deliver_one(claim)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # left claimed: the lease runs out and it is retried
                log.error(
                    "reminder %s could not be handled: %s", claim.delivery_id, type(exc).__name__
                )

    async def _deliver_one(self, claim: Claim) -> None:
        user = claim.user
        await self.limiter.acquire(1)
        if not await self._renew(claim):
            # Waiting for our turn took longer than the lease and someone else took the
            # claim over: it is theirs to send now.
            log.warning(
                "reminder %s: lease lost while waiting; left to its new owner", claim.delivery_id
            )
            return
        ref = UserRef(channel=user.channel, external_id=user.external_id, locale=user.locale)
        outputs = await self.engine.handle(ref, Reminder(claim.kind))
        messages = [o for o in outputs if isinstance(o, Message)]
        if not messages:
            await self._record(claim, SKIPPED, attempts=claim.attempts, error="quiet")
            return
        failure = self.engine.catalog.locale(user.locale).message("something_went_wrong")
        if len(messages) == 1 and messages[0].text == failure:
            await self._record(claim, FAILED, attempts=claim.attempts, error="engine")
            return
        if len(messages) > 1:
            await self.limiter.acquire(len(messages) - 1)
        attempts, waits = claim.attempts, 0
        while True:
            attempts += 1
            try:
                await self.sender.send(user, outputs)
            except Blocked:
                await self._record(claim, FAILED, attempts=attempts, error="blocked", block=True)
                return
            except RetryLater as exc:
                attempts -= 1
                waits += 1
                if waits > self.config.max_retry_later:
                    await self._record(claim, FAILED, attempts=attempts, error="rate_limited")
                    return
                log.warning("reminders: told to wait %.1f s (429)", exc.seconds)
                await self.limiter.hold(exc.seconds)
                await self._wait(claim, exc.seconds)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempts >= self.config.max_attempts:
                    log.warning("reminder %s failed: %s", claim.delivery_id, type(exc).__name__)
                    await self._record(claim, FAILED, attempts=attempts, error="send_failed")
                    return
                delay = min(
                    self.config.max_backoff_seconds,
                    self.config.backoff_seconds * 2 ** (attempts - 1),
                )
                await self._wait(claim, delay)
                continue
            await self._record(claim, SENT, attempts=attempts)
            return

    async def _renew(self, claim: Claim) -> bool:
        """Stretch our lease just before sending; False if the claim is no longer ours.

        Skipped (no write) while more than half the lease is left: nobody can take it yet.
        """
        now = self._now()
        if claim.leased_until is not None and claim.leased_until - now > self.config.lease / 2:
            return True
        claim.leased_until = now + self.config.lease
        async with self.db.session() as session:
            kept = await rows.stretch_lease(
                session, delivery_id=claim.delivery_id, owner=self.owner, until=claim.leased_until
            )
            await session.commit()
        return kept

    async def _wait(self, claim: Claim, seconds: float) -> None:
        """Sleep before a retry, first stretching the lease so no one takes the claim over."""
        until = self._now() + timedelta(seconds=seconds) + self.config.lease
        async with self.db.session() as session:
            await rows.stretch_lease(
                session, delivery_id=claim.delivery_id, owner=self.owner, until=until
            )
            await session.commit()
        await self.clock.sleep(seconds)

    async def _record(
        self,
        claim: Claim,
        status: str,
        *,
        attempts: int,
        error: str | None = None,
        block: bool = False,
    ) -> None:
        now = self._now()
        async with self.db.session() as session:
            kept = await rows.finish(
                session,
                delivery_id=claim.delivery_id,
                owner=self.owner,
                status=status,
                attempts=attempts,
                error=error,
                now=now,
            )
            if block:
                assert claim.user.id is not None
                await store.disable_schedules(session, user_id=claim.user.id, now=now)
            await session.commit()
        if not kept:
            log.warning("reminder %s: lease was lost before recording", claim.delivery_id)
        if status == SENT:
            self.stats.sent += 1
            metrics.reminder_sent((now - as_utc(claim.due_utc)).total_seconds())
        elif status == SKIPPED:
            self.stats.skipped += 1
        else:
            self.stats.failed += 1
            self.stats.blocked += block
            metrics.reminder_failed(error or "send_failed")

    async def _maybe_prune(self) -> None:
        """Once an hour, forget finished deliveries older than `keep_days`."""
        now = self._now()
        if self._last_prune is not None and now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        before = now - timedelta(days=self.config.keep_days)
        async with self.db.session() as session:
            await rows.prune_deliveries(session, before=before)
            await session.commit()


def start_dispatcher(
    db: Database,
    engine: Engine,
    sender: Sender,
    settings: Settings,
    *,
    clock: Clock | None = None,
    spent_elsewhere: Callable[[], int] | None = None,
) -> Dispatcher:
    """For `kindbot run`: build a dispatcher over the database and engine, start it.

    `spent_elsewhere` reports the channel's other sends (replies) of the last second, so the
    shared rate limit counts them. Keep the returned object and `await dispatcher.stop()` on
    shutdown.
    """
    dispatcher = Dispatcher(
        db,
        engine,
        sender,
        config=DispatcherConfig.from_settings(settings),
        clock=clock,
        spent_elsewhere=spent_elsewhere,
    )
    dispatcher.start()
    return dispatcher
