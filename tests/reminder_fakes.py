"""Fakes for reminder tests: a dispatcher clock over the engine's test clock, a sender that
records what it was asked to send, and helpers to create people with reminders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.app import App
from bot.engine.events import Message, Output
from bot.reminders import store
from bot.reminders.dispatcher import Dispatcher, DispatcherConfig
from bot.reminders.schedule import EVERY_DAY
from storage import repo
from storage.models import ReminderDelivery, ReminderSchedule, User
from tests.conftest import Clock


class DispatchClock:
    """The dispatcher's (and the send budget's) view of a test `Clock`: sleeping moves the
    shared time forward."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.clock.now

    def monotonic(self) -> float:
        return self.clock.now.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > 0:
            self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


@dataclass
class Sent:
    external_id: str
    texts: list[str]
    at: datetime


@dataclass
class FakeSender:
    """Records sends; `script[external_id]` lists exceptions to raise on successive tries."""

    clock: Clock
    channel: str = "telegram"
    sent: list[Sent] = field(default_factory=list)
    calls: int = 0
    script: dict[str, list[BaseException]] = field(default_factory=dict)
    before_send: Callable[[User], object] | None = None

    async def send(self, user: User, outputs: list[Output]) -> None:
        self.calls += 1
        queue = self.script.get(user.external_id)
        if queue:
            raise queue.pop(0)
        if self.before_send is not None:
            result = self.before_send(user)
            if asyncio.iscoroutine(result):
                await result
        texts = [o.text for o in outputs if isinstance(o, Message)]
        self.sent.append(Sent(user.external_id, texts, self.clock.now))

    def to(self, external_id: str) -> list[Sent]:
        return [s for s in self.sent if s.external_id == external_id]


async def make_person(
    app: App,
    external_id: str,
    *,
    channel: str = "telegram",
    timezone: str = "Europe/Berlin",
    reminders: list[tuple[str, int, str]] | None = None,
    days: int = EVERY_DAY,
    now: datetime,
) -> int:
    """A consented person with reminders [(kind, slot, 'HH:MM')] in `timezone`."""
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel=channel, external_id=external_id)
        user.consented_at = now
        user.timezone = timezone
        assert user.id is not None
        for kind, slot, at in reminders or [("reflection", 0, "21:00")]:
            await store.set_schedule(
                session,
                user_id=user.id,
                kind=kind,
                slot=slot,
                local_time=at,
                days=days,
                timezone=timezone,
                now=now,
            )
        await session.commit()
        return user.id


async def deliveries(app: App) -> list[ReminderDelivery]:
    async with app.db.session() as session:
        query = select(ReminderDelivery).order_by(col(ReminderDelivery.id))
        return list((await session.execute(query)).scalars())


async def schedules(app: App, user_id: int) -> list[ReminderSchedule]:
    async with app.db.session() as session:
        return await store.list_schedules(session, user_id=user_id)


def dispatcher(
    app: App,
    sender: FakeSender,
    clock: Clock,
    *,
    owner: str = "test",
    **config: object,
) -> Dispatcher:
    values: dict[str, object] = {"rate_limit": 0, "backoff_seconds": 1.0}
    values.update(config)
    return Dispatcher(
        app.db,
        app.engine,
        sender,
        config=DispatcherConfig(**values),  # type: ignore[arg-type]
        clock=DispatchClock(clock),
        owner=owner,
    )


def at(clock: Clock, when: datetime) -> None:
    clock.now = when


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
