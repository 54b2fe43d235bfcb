"""One send budget for replies and reminders (bot/telegram/budget.py), on virtual time.

The limits are checked where Telegram would see them: at the fake Bot API, with the budget's
clock read as each call arrives. `VirtualTime` moves on only when someone waits, so a budget
that let sends through too fast shows up as too many calls at one instant.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app import App
from bot.reminders.dispatcher import Dispatcher, DispatcherConfig
from bot.telegram.budget import GROUP, OVERALL, PRIVATE_CHAT, Rate, SendBudget
from bot.telegram.reminder_sender import TelegramSender
from bot.testing.botapi import BotAPI
from bot.testing.harness import VirtualTime, harness
from storage.models import OutboxReply
from tests.conftest import Clock
from tests.reminder_fakes import DispatchClock, make_person

NINE_PM_BERLIN = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
MESSAGES = ("sendMessage", "sendPhoto", "sendDocument", "editMessageText")


def within(times: list[float], rate: Rate) -> bool:
    """Whether no stretch of these send times holds more than `rate` allows: n sends
    spanning d seconds need n ≤ burst + per_second × d."""
    times = sorted(times)
    return all(
        j - i + 1 <= rate.burst + rate.per_second * (times[j] - times[i]) + 1e-4
        for i in range(len(times))
        for j in range(i, len(times))
    )


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)),
               default=0)  # fmt: skip


def budget_on(time: VirtualTime) -> SendBudget:
    return SendBudget(timer=time)


# -- the budget alone ----------------------------------------------------------------------
async def test_a_reply_burst_goes_at_once_and_a_longer_one_is_spread() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    for _ in range(PRIVATE_CHAT.burst):
        await budget.take(7)
    assert budget.waited == 0  # what one step says goes out at once
    await budget.take(7)
    assert budget.waited == pytest.approx(1.0)  # then one a second


async def test_many_chats_at_once_keep_to_the_overall_limit() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    sent: list[float] = []

    async def one(chat: int) -> None:
        await budget.take(chat)
        sent.append(time.t)

    await asyncio.gather(*(one(chat) for chat in range(1, 141)))
    assert len(sent) == 140
    assert within(sent, OVERALL)
    assert most_in_one_second(sent) <= 30
    assert max(sent) - min(sent) == pytest.approx((140 - OVERALL.burst) / OVERALL.per_second)


async def test_a_group_gets_at_most_twenty_a_minute() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    sent: list[float] = []
    for _ in range(45):
        await budget.take(-100123)
        sent.append(time.t)
    assert within(sent, GROUP)
    assert max(sum(1 for t in sent if s <= t < s + 60) for s in sent) == 20


async def test_replies_go_before_a_backlog_of_reminders() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    order: list[str] = []
    under_way = asyncio.Event()  # the backlog is being worked through

    async def send(chat: int, urgent: bool) -> None:
        await budget.take(chat, urgent=urgent)
        order.append("reply" if urgent else "reminder")
        if len(order) == 20:
            under_way.set()

    reminders = [asyncio.ensure_future(send(chat, False)) for chat in range(1000, 1200)]
    await under_way.wait()
    replies = [asyncio.ensure_future(send(chat, True)) for chat in range(1, 11)]
    await asyncio.gather(*replies, *reminders)
    first, last = order.index("reply"), len(order) - 1 - order[::-1].index("reply")
    # The ten replies went out one after another, with at most the one reminder that had
    # its slot already between them and the first; the other 170-odd reminders waited.
    assert last - first <= 10
    assert order.count("reminder") == 200


async def test_a_429_holds_that_chat_and_the_reminders_not_other_replies() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    budget.hold(7, 30.0)
    start = time.t
    await budget.take(8)  # another person's reply: not held
    assert time.t == start
    await budget.take(9, urgent=False)  # a reminder waits the hold out
    assert time.t == pytest.approx(start + 30.0)
    await budget.take(7)
    assert time.t == pytest.approx(start + 30.0)


async def test_replies_of_the_last_second_are_reported_once() -> None:
    time = VirtualTime()
    budget = budget_on(time)
    for chat in range(5):
        await budget.take(chat)
    await budget.take(99, urgent=False)  # reminders count in the shared bucket themselves
    assert budget.recent_urgent() == 5
    assert budget.recent_urgent() == 0
    await budget.take(1)
    time.t += 2.0
    assert budget.recent_urgent() == 0  # older than a second: the bucket refilled since


# -- the real Application and the dispatcher ------------------------------------------------
def recorder(api: BotAPI, time: VirtualTime) -> dict[int, list[tuple[str, float]]]:
    """Every message call per chat, with the budget's time as it reached the fake API."""
    calls: dict[int, list[tuple[str, float]]] = defaultdict(list)

    def seen(method: str, params: dict[str, Any]) -> bool:
        if method in MESSAGES:
            calls[int(params.get("chat_id", 0))].append((method, time.t))
        return True

    api.intercept = seen
    return calls


async def test_a_burst_of_replies_and_reminders_keeps_to_telegrams_limits(
    app: App, clock: Clock
) -> None:
    writers = list(range(1, 41))
    remembered = [str(n) for n in range(5001, 5091)]
    for person in remembered:
        await make_person(app, person, now=clock.now)
    clock.now = NINE_PM_BERLIN
    time = VirtualTime()
    budget = budget_on(time)
    api = BotAPI()
    async with harness(app, api, budget=budget) as h:
        calls = recorder(api, time)
        worker = Dispatcher(
            app.db,
            app.engine,
            TelegramSender(h.application.bot, budget),
            config=DispatcherConfig(rate_limit=0, concurrency=100),
            clock=DispatchClock(clock),
        )
        reminders = asyncio.ensure_future(worker.tick())
        replies = [h.say(person, "/start") for person in writers]
        await asyncio.gather(reminders, *replies)

    assert worker.stats.sent == len(remembered)
    assert {c for c in calls} == set(writers) | {int(p) for p in remembered}
    assert all(len(calls[person]) == 3 for person in writers)  # /start says three things
    every = [t for sends in calls.values() for _, t in sends]
    assert len(every) == 3 * len(writers) + len(remembered)
    assert within(every, OVERALL)
    assert most_in_one_second(every) <= 30
    for sends in calls.values():
        assert within([t for _, t in sends], PRIVATE_CHAT)


async def test_a_conversation_never_waits_on_the_budget(app: App) -> None:
    """One reply burst per message, with a few seconds to read and answer in between."""
    async with harness(app) as h:
        time = h.budget.timer
        assert isinstance(time, VirtualTime)
        steps: list[tuple[str, str]] = [
            ("say", "/start"),
            ("press", "Yes, that's okay"),
            ("press", "Skip"),
            ("press", "Work with a harsh thought"),
            ("say", "I'm useless"),
            ("say", "ashamed"),
            ("press", "8"),
            ("press", "I've noticed it"),
            ("press", "I see it"),
            ("press", "Okay"),
        ]
        for kind, text in steps:
            time.t += 3.0  # reading, then answering
            await (h.say(101, text) if kind == "say" else h.press(101, text))
        assert h.budget.waited == 0
        assert len(h.api.texts(101)) >= 10


async def test_a_reply_flood_control_keeps_refusing_stays_in_the_outbox(app: App) -> None:
    """429 on every attempt: the chat is held each time, nothing more is said (no
    "something went wrong"), and the reply is left for the outbox sweep."""
    async with harness(app) as h:
        h.api.fail("sendMessage", "retry_after", times=4)  # every attempt refused
        calls = await h.say(202, "/start")
        assert [c.method for c in calls] == ["sendMessage"] * 4
        assert len({c.text for c in calls}) == 1  # the first message, tried four times
        async with app.db.session() as session:
            rows = await session.execute(OutboxReply.__table__.select())  # type: ignore[attr-defined]
            assert len(rows.all()) == 1
        assert h.budget.waited == pytest.approx(3.0)  # three retries, one second each
