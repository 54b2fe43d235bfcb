"""The dispatcher with the real `telegram.Bot` and `TelegramSender`, offline: a fake
`BaseRequest` stands in for the Bot API at PTB's network seam."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telegram import Bot
from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot.app import App
from bot.reminders import store
from bot.reminders.dispatcher import Dispatcher, DispatcherConfig
from bot.telegram.budget import SendBudget
from bot.telegram.reminder_sender import TelegramSender
from tests.conftest import Clock
from tests.reminder_fakes import DispatchClock, deliveries, make_person, schedules

TOKEN = "123456789:" + "A" * 35
NINE_PM_BERLIN = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


class FakeBotAPI(BaseRequest):
    """Answers getMe and sendMessage; `fail[chat_id]` queues failures for that chat."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[int, deque[str]] = defaultdict(deque)

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = {k: json.loads(v) if v[:1] in "[{" else v for k, v in
                  (request_data.json_parameters if request_data else {}).items()}  # fmt: skip
        if name == "getMe":
            me = {"id": 123456789, "is_bot": True, "first_name": "kindbot", "username": "kb"}
            return 200, json.dumps({"ok": True, "result": me}).encode()
        self.calls.append((name, params))
        chat = int(params.get("chat_id", 0))
        failure = self.fail[chat].popleft() if self.fail[chat] else None
        if failure == "network":
            raise NetworkError("connection reset")
        answers = {
            "forbidden": (403, "Forbidden: bot was blocked by the user", None),
            "retry_after": (429, "Too Many Requests: retry after 3", {"retry_after": 3}),
            "gone": (400, "Bad Request: chat not found", None),
            "server": (502, "Bad Gateway", None),
        }
        if failure in answers:
            code, description, parameters = answers[failure]
            body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
            if parameters:
                body["parameters"] = parameters
            return code, json.dumps(body).encode()
        message = {
            "message_id": len(self.calls),
            "date": 0,
            "chat": {"id": chat, "type": "private"},
            "text": params.get("text", ""),
        }
        return 200, json.dumps({"ok": True, "result": message}).encode()

    def sent(self) -> list[dict[str, Any]]:
        return [p for name, p in self.calls if name == "sendMessage"]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeBotAPI:
    # PTB 22 warns about int `retry_after` unless timedeltas are opted into (as the adapter does).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    return FakeBotAPI()


async def run_once(app: App, api: FakeBotAPI, clock: Clock) -> Dispatcher:
    bot = Bot(TOKEN, request=api, get_updates_request=api)
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


async def test_reflection_goes_out_as_html(app: App, api: FakeBotAPI, clock: Clock) -> None:
    await make_person(app, "4242", now=clock.now)
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [sent] = api.sent()
    assert sent["chat_id"] == "4242"
    assert sent["parse_mode"] == "HTML"
    assert "today" in sent["text"]
    assert [d.status for d in await deliveries(app)] == ["sent"]


async def test_checkin_ping_has_buttons_the_adapter_understands(
    app: App, api: FakeBotAPI, clock: Clock
) -> None:
    await make_person(app, "4242", now=clock.now, reminders=[("checkin", 0, "21:00")])
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [sent] = api.sent()
    rows = sent["reply_markup"]["inline_keyboard"]
    labels = [b["text"] for row in rows for b in row]
    assert labels == ["Let's check in", "I'm okay", "Not now"]
    step, value = rows[0][0]["callback_data"].split(":")
    assert step.isdigit()
    assert value == "check_in"


async def test_403_turns_reminders_off(app: App, api: FakeBotAPI, clock: Clock) -> None:
    uid = await make_person(app, "4242", now=clock.now)
    api.fail[4242].append("forbidden")
    clock.now = NINE_PM_BERLIN
    worker = await run_once(app, api, clock)
    assert worker.stats.blocked == 1
    [schedule] = await schedules(app, uid)
    assert (schedule.disabled_reason, schedule.next_due_utc) == ("blocked", None)


async def test_chat_not_found_counts_as_unreachable(
    app: App, api: FakeBotAPI, clock: Clock
) -> None:
    uid = await make_person(app, "4242", now=clock.now)
    api.fail[4242].append("gone")
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    [schedule] = await schedules(app, uid)
    assert schedule.disabled_reason == "blocked"
    assert await store.reenable_for_user(app.db, channel="telegram", external_id="4242") == 1


async def test_429_waits_retry_after(app: App, api: FakeBotAPI, clock: Clock) -> None:
    await make_person(app, "4242", now=clock.now)
    api.fail[4242].append("retry_after")
    clock.now = NINE_PM_BERLIN
    worker = await run_once(app, api, clock)
    assert len(api.sent()) == 2  # refused once, then sent
    assert 3.0 in worker.clock.slept  # type: ignore[attr-defined]
    assert [(d.status, d.attempts) for d in await deliveries(app)] == [("sent", 1)]


async def test_network_errors_are_retried_then_recorded(
    app: App, api: FakeBotAPI, clock: Clock
) -> None:
    await make_person(app, "4242", now=clock.now)
    await make_person(app, "7", now=clock.now)
    api.fail[4242].extend(["network", "server"])
    api.fail[7].extend(["network"] * 5)
    clock.now = NINE_PM_BERLIN
    await run_once(app, api, clock)
    found = {d.user_id: (d.status, d.attempts, d.error) for d in await deliveries(app)}
    assert sorted(found.values()) == [("failed", 3, "send_failed"), ("sent", 3, None)]
    assert clock.now >= NINE_PM_BERLIN + timedelta(seconds=3)  # backed off 1 s, then 2 s
