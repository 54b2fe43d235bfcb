"""The dispatcher with the real `telegram.Bot` and `TelegramSender`, offline: the fake Bot API
(`bot.testing`) answers at PTB's network seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from telegram import Bot

from bot.app import App
from bot.reminders import store
from bot.reminders.dispatcher import Dispatcher, DispatcherConfig
from bot.telegram.budget import SendBudget
from bot.telegram.reminder_sender import TelegramSender
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.harness import FakeRequest
from tests.conftest import Clock
from tests.reminder_fakes import DispatchClock, deliveries, make_person, schedules

NINE_PM_BERLIN = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> BotAPI:
    # PTB 22 warns about int `retry_after` unless timedeltas are opted into (as the adapter does).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    return BotAPI()


async def run_once(app: App, api: BotAPI, clock: Clock) -> Dispatcher:
    request = FakeRequest(api)
    bot = Bot(TOKEN, request=request, get_updates_request=request)
    timing = DispatchClock(clock)
    async with bot:
        worker = Dispatcher(
            app.db,
            app.engine,
            TelegramSender(bot, SendBudget(timer=timing)),
            config=DispatcherConfig(rate_limit=0, max_attempts=3),
            clock=timing,
        )
        await worker.tick()
    return worker


async def test_reflection_goes_out_as_html(app: App, api: BotAPI, clock: Clock) -> None:
    await make_person(app, "4242", now=clock.now)
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [sent] = api.sent()
    assert sent.chat_id == 4242
    assert sent.params["parse_mode"] == "HTML"
    assert "today" in sent.text
    assert [d.status for d in await deliveries(app)] == ["sent"]


async def test_checkin_ping_has_buttons_the_adapter_understands(
    app: App, api: BotAPI, clock: Clock
) -> None:
    await make_person(app, "4242", now=clock.now, reminders=[("checkin", 0, "21:00")])
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [sent] = api.sent()
    assert sent.labels == ["Let's check in", "I'm okay", "Not now"]
    step, value = sent.buttons[0][0]["callback_data"].split(":")
    assert step.isdigit()
    assert value == "check_in"


async def test_403_turns_reminders_off(app: App, api: BotAPI, clock: Clock) -> None:
    uid = await make_person(app, "4242", now=clock.now)
    api.fail("sendMessage", "forbidden", chat_id=4242)
    clock.now = NINE_PM_BERLIN
    worker = await run_once(app, api, clock)
    assert worker.stats.blocked == 1
    [schedule] = await schedules(app, uid)
    assert (schedule.disabled_reason, schedule.next_due_utc) == ("blocked", None)


async def test_chat_not_found_counts_as_unreachable(app: App, api: BotAPI, clock: Clock) -> None:
    uid = await make_person(app, "4242", now=clock.now)
    api.fail("sendMessage", "chat_not_found", chat_id=4242)
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [schedule] = await schedules(app, uid)
    assert schedule.disabled_reason == "blocked"
    assert await store.reenable_for_user(app.db, channel="telegram", external_id="4242") == 1


async def test_429_waits_retry_after(app: App, api: BotAPI, clock: Clock) -> None:
    await make_person(app, "4242", now=clock.now)
    api.fail("sendMessage", "retry_after:3", chat_id=4242)
    clock.now = NINE_PM_BERLIN
    worker = await run_once(app, api, clock)
    assert len(api.sent()) == 2  # refused once, then sent
    assert 3.0 in worker.clock.slept  # type: ignore[attr-defined]
    assert [(d.status, d.attempts) for d in await deliveries(app)] == [("sent", 1)]


async def test_network_errors_are_retried_then_recorded(
    app: App, api: BotAPI, clock: Clock
) -> None:
    await make_person(app, "4242", now=clock.now)
    await make_person(app, "7", now=clock.now)
    api.fail("sendMessage", "network", chat_id=4242)
    api.fail("sendMessage", "server", chat_id=4242)
    api.fail("sendMessage", "network", 5, chat_id=7)
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    found = {d.user_id: (d.status, d.attempts, d.error) for d in await deliveries(app)}
    assert sorted(found.values()) == [("failed", 3, "send_failed"), ("sent", 3, None)]
    assert clock.now >= NINE_PM_BERLIN + timedelta(seconds=3)  # backed off 1 s, then 2 s
