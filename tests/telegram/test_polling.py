"""Our long polling: an update is confirmed (the getUpdates offset) only after it was handled.

The poller runs on a real PTB Application against the fake Bot API over HTTP. Most tests use
a small Application whose one handler can be held open, so "still running" is a state the
test controls rather than a race; one test runs kindbot itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest

from bot.app import open_app
from bot.telegram.application import build_application
from bot.telegram.ordering import PerUserOrder
from bot.telegram.polling import AnyApplication, Poller, PollingRefused
from bot.telegram.transport import LeanRequest
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.harness import FakeRequest
from bot.testing.loopback import FakeBotServer
from bot.testing.updates import Updates
from tests.conftest import make_settings

WAIT = 30.0  # seconds; generous (a loaded CI machine), only reached when something is wrong


class Gated:
    """A handler that records each update and, for the ids in `held`, waits until released."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self.held: set[int] = set()
        self._gates: dict[int, asyncio.Event] = {}

    def hold(self, update: dict[str, Any]) -> dict[str, Any]:
        self.held.add(update["update_id"])
        return update

    def release(self, update: dict[str, Any]) -> None:
        self.held.discard(update["update_id"])
        self._gate(update["update_id"]).set()

    def _gate(self, update_id: int) -> asyncio.Event:
        return self._gates.setdefault(update_id, asyncio.Event())

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.started.append(update.update_id)
        if update.update_id in self.held:
            await self._gate(update.update_id).wait()
        self.finished.append(update.update_id)


def gated_application(
    handler: Gated, request: BaseRequest | None = None, url: str = ""
) -> AnyApplication:
    """A plain Application (per-person order, no updater) whose only handler is `handler`.

    Over HTTP it talks through kindbot's own request class, as `build_application` does: a
    poller stopped abruptly cancels its getUpdates mid-request, and PTB's stock class (httpx)
    could then keep its one getUpdates connection slot taken for good under load (every later
    getUpdates timed out waiting for the pool: a flaky failure of the restart test)."""
    builder = ApplicationBuilder().token(TOKEN).concurrent_updates(PerUserOrder()).updater(None)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        builder = builder.base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")
        builder = builder.request(LeanRequest()).get_updates_request(LeanRequest(pool_size=1))
    application = builder.build()
    application.add_handler(TypeHandler(Update, handler))
    return application


@asynccontextmanager
async def polling(
    application: AnyApplication, **options: Any
) -> AsyncIterator[tuple[Poller, AnyApplication]]:
    """A started poller (short waits, for tests); stopped and drained at the end."""
    options = {"timeout": 1, "idle": 0.05, "retry": (0.01, 0.05), "drain": WAIT, **options}
    poller = Poller(application, **options)
    await poller.start()
    try:
        yield poller, application
    finally:
        await poller.stop()


async def until(check: Callable[[], bool], within: float = WAIT) -> None:
    """Wait (without blocking the loop) until `check()` holds."""
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


def count_get_updates(api: BotAPI) -> list[int]:
    """Record the offset of every getUpdates that reaches the fake."""
    offsets: list[int] = []

    def seen(method: str, params: dict[str, Any]) -> bool:
        if method == "getUpdates":
            offsets.append(int(params.get("offset") or 0))
        return True

    api.intercept = seen
    return offsets


@pytest.fixture
def server() -> Any:
    with FakeBotServer() as running:
        yield running


async def test_an_update_is_confirmed_only_after_its_handler_returned(server: Any) -> None:
    api, updates, handler = server.api, Updates(), Gated()
    offsets = count_get_updates(api)
    slow, quick = handler.hold(updates.text(1, "slow")), updates.text(2, "quick")
    async with (
        gated_application(handler, url=server.url) as application,
        polling(application) as (poller, _),
    ):
        api.push_update(slow)
        await until(lambda: slow["update_id"] in handler.started)
        api.push_update(quick)
        await until(lambda: quick["update_id"] in handler.finished)
        polled = len(offsets)
        await until(lambda: len(offsets) >= polled + 3)  # several polls while it runs
        assert api.confirmed <= slow["update_id"]
        assert max(offsets) <= slow["update_id"]
        assert poller.in_flight == 1

        handler.release(slow)
        await until(lambda: api.confirmed > quick["update_id"])
        await until(lambda: poller.confirmed == quick["update_id"] + 1)


async def test_updates_received_again_while_running_or_unconfirmed_are_handled_once(
    server: Any,
) -> None:
    api, updates, handler = server.api, Updates(), Gated()
    offsets = count_get_updates(api)
    slow = handler.hold(updates.text(1, "slow"))
    after = [updates.text(2, "one"), updates.text(3, "two")]
    async with gated_application(handler, url=server.url) as application, polling(application):
        for update in (slow, *after):
            api.push_update(update)
        await until(lambda: len(handler.finished) == 2)
        polled = len(offsets)
        await until(lambda: len(offsets) >= polled + 3)  # each answer holds all three again
        handler.release(slow)
        await until(lambda: api.confirmed > after[-1]["update_id"])
    assert sorted(handler.started) == sorted(u["update_id"] for u in (slow, *after))


async def test_updates_finishing_behind_a_running_one_do_not_fetch_again(server: Any) -> None:
    """Only a finish that moves the offset fetches at once; the rest wait for `idle`."""
    api, updates, handler = server.api, Updates(), Gated()
    offsets = count_get_updates(api)
    slow = handler.hold(updates.text(1, "slow"))
    behind = [handler.hold(updates.text(n, f"behind {n}")) for n in range(2, 12)]
    async with (
        gated_application(handler, url=server.url) as application,
        polling(application, idle=WAIT) as (poller, _),
    ):
        for update in (slow, *behind):
            api.push_update(update)
        await until(lambda: len(handler.started) == 11)
        await asyncio.sleep(0.2)  # the fetch after the last new ones has come back
        polled = len(offsets)
        for update in behind:  # ten finishes, none of them the smallest
            handler.release(update)
        await until(lambda: len(handler.finished) == 10)
        await asyncio.sleep(0.2)
        assert len(offsets) == polled  # idle is long here: nothing moved, nothing fetched
        handler.release(slow)
        await until(lambda: api.confirmed > behind[-1]["update_id"], within=5)
        assert len(offsets) <= polled + 2  # at once, not after `idle`
        assert poller.in_flight == 0


async def test_stop_waits_for_running_updates_then_confirms_them(server: Any) -> None:
    api, updates, handler = server.api, Updates(), Gated()
    slow, quick = handler.hold(updates.text(1, "slow")), updates.text(2, "quick")
    async with gated_application(handler, url=server.url) as application:
        poller = Poller(application, timeout=1, idle=0.05, drain=WAIT)
        await poller.start()
        api.push_update(slow)
        api.push_update(quick)
        await until(lambda: quick["update_id"] in handler.finished)
        stopping = asyncio.create_task(poller.stop())
        await asyncio.sleep(0.1)
        assert not stopping.done()  # waiting for the slow one
        assert api.confirmed <= slow["update_id"]
        handler.release(slow)
        await asyncio.wait_for(stopping, WAIT)
    assert handler.finished[-1] == slow["update_id"]
    assert api.confirmed == quick["update_id"] + 1  # by the last, short getUpdates


async def test_a_stop_without_draining_leaves_unfinished_updates_to_the_next_poller(
    server: Any,
) -> None:
    api, updates, handler = server.api, Updates(), Gated()
    done, cut = updates.text(1, "done"), handler.hold(updates.text(2, "cut off"))
    async with (
        gated_application(handler, url=server.url) as application,
        polling(application) as (poller, _),
    ):
        api.push_update(done)
        await until(lambda: done["update_id"] in handler.finished)
        api.push_update(cut)
        await until(lambda: cut["update_id"] in handler.started)
        await poller.stop(drain=0)  # as abrupt as a kill, for what was running
        assert cut["update_id"] not in handler.finished
        assert done["update_id"] < api.confirmed <= cut["update_id"]

        handler.release(cut)
        async with polling(application):  # the next process, on the same Telegram
            await until(lambda: cut["update_id"] in handler.finished)
            await until(lambda: api.confirmed > cut["update_id"])
    assert handler.started.count(done["update_id"]) == 1
    assert handler.started.count(cut["update_id"]) == 2


async def test_get_updates_failures_are_retried_with_one_short_line(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api, updates, handler = server.api, Updates(), Gated()
    dropped: list[int] = []

    def drop_three(method: str, params: dict[str, Any]) -> bool:
        if method == "getUpdates" and len(dropped) < 3:
            dropped.append(1)
            return False  # the connection closes unanswered
        return True

    api.intercept = drop_three
    update = updates.text(1, "through in the end")
    api.push_update(update)
    with caplog.at_level(logging.WARNING, logger="bot.telegram.polling"):
        async with (
            gated_application(handler, url=server.url) as application,
            polling(application),
        ):
            await until(lambda: api.confirmed > update["update_id"])
    assert handler.finished == [update["update_id"]]
    failures = [r.getMessage() for r in caplog.records if "getUpdates failed" in r.message]
    assert len(failures) == 3
    assert all("\n" not in line and "NetworkError" in line for line in failures)


async def test_a_token_refused_on_get_updates_stops_polling_with_a_clear_error() -> None:
    handler, api = Gated(), BotAPI()
    api.fail("getUpdates", "unauthorized", times=100)  # a token revoked while the bot runs
    async with (
        gated_application(handler, request=FakeRequest(api)) as application,
        polling(application) as (poller, _),
    ):
        with pytest.raises(PollingRefused, match="TELEGRAM_BOT_TOKEN"):
            await asyncio.wait_for(poller.task, WAIT)


async def test_kindbot_answers_through_the_poller(tmp_path: Any, server: Any) -> None:
    api, updates = server.api, Updates()
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=server.url)
    async with open_app(settings) as app:
        async with build_application(app) as application, polling(application):
            start = updates.text(7, "/start")
            api.push_update(start)
            await until(lambda: api.confirmed > start["update_id"])
            assert len(api.texts(7)) == 3  # all sent before the confirmation
        assert api.sent("deleteWebhook")


async def test_an_update_ptb_cannot_read_is_skipped_alone_without_its_words_in_the_log(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """PTB's get_updates raises for a whole batch when one update cannot be parsed (and logs
    the batch): polling would ask for the same batch forever. That update alone is skipped."""
    api, updates, handler = server.api, Updates(), Gated()
    before, after = updates.text(1, "before"), updates.text(2, "after")
    broken = {"update_id": before["update_id"] + 1, "message": {"message_id": 1, "text": "secret"}}
    after["update_id"] = broken["update_id"] + 1
    # INFO: kindbot never lets PTB log below it (its DEBUG lines show every API result)
    with caplog.at_level(logging.INFO):
        async with (
            gated_application(handler, url=server.url) as application,
            polling(application),
        ):
            for update in (before, broken, after):
                api.push_update(update)
            await until(lambda: after["update_id"] in handler.finished)
            await until(lambda: api.confirmed > after["update_id"])
    assert handler.finished == [before["update_id"], after["update_id"]]
    assert any(
        f"update {broken['update_id']} could not be read" in r.message for r in caplog.records
    )
    assert not any("secret" in r.getMessage() for r in caplog.records)
