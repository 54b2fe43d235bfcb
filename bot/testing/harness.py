"""The real PTB Application on the fake Bot API, in process (no network).

`FakeRequest` is PTB's network seam (a `BaseRequest`) answered by a `BotAPI`; `harness` builds
kindbot's Application on it, so tests and benchmarks drive the real thing offline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.error import NetworkError
from telegram.ext import BaseUpdateProcessor
from telegram.request import BaseRequest, RequestData

from bot.app import App
from bot.telegram.application import TgApplication, build_application, sender_of
from bot.telegram.budget import SendBudget
from bot.telegram.errors import Delivery
from bot.testing.botapi import BotAPI, Call, Dropped
from bot.testing.updates import Updates


class VirtualTime:
    """The send budget's clock in tests: a wait moves time on at once (never backwards), so
    nothing waits for real and the times the budget saw can be checked exactly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class FakeRequest(BaseRequest):
    """PTB's network seam, answered by a `BotAPI`; `latency` simulates the round trip."""

    def __init__(self, api: BotAPI, *, latency: float = 0.0) -> None:
        self.api = api
        self.latency = latency

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.api.failure_for(f"network:{api_method}"):
            raise NetworkError("connection reset (fake)")
        params = dict(request_data.parameters) if request_data else {}
        if request_data and request_data.multipart_data:
            # uploaded files, as (file name, bytes), so tests can read what was sent
            params["_files"] = {
                name: (part[0], part[1]) for name, part in request_data.multipart_data.items()
            }
        try:
            status, body = self.api.answer(api_method, params)
        except Dropped:
            raise NetworkError("connection closed unanswered (fake)") from None
        return status, json.dumps(body).encode()


@dataclass
class Harness:
    """The real Application on a fake Bot API: send updates, read what the bot sent."""

    app: App
    application: TgApplication
    api: BotAPI
    updates: Updates
    sleeps: list[float] = field(default_factory=list)
    # the Application's two request objects (Bot API calls, getUpdates): a bench sets their
    # `latency` part-way (after onboarding) through these
    requests: tuple[FakeRequest, ...] = ()

    @property
    def budget(self) -> SendBudget:
        """The send budget every message of this Application goes through."""
        return sender_of(self.application).renderer.delivery.budget

    async def process(self, update: dict[str, Any]) -> list[Call]:
        """Process one update to the end, a paced reply it started included (sent in the
        background); the Bot API calls it caused, less typing actions: those are sent only
        when a step takes over 0.4 s, which a loaded machine decides, not the bot (they stay
        in `api.calls`)."""
        before = len(self.api.calls)
        await self.application.process_update(Update.de_json(update, self.application.bot))
        await sender_of(self.application).idle()
        return [c for c in self.api.calls[before:] if c.method != "sendChatAction"]

    async def say(self, user_id: int, text: str) -> list[Call]:
        return await self.process(self.updates.text(user_id, text))

    def last_offer(self, user_id: int) -> Call:
        """The latest message to this person that had buttons (sent, or given them by an
        edit: a paced exercise's last step)."""
        for call in reversed(self.api.calls):
            shown = call.method in ("sendMessage", "editMessageText")
            if shown and call.chat_id == user_id and call.buttons:
                return call
        raise AssertionError("no message with buttons was sent")

    async def press(self, user_id: int, label: str) -> list[Call]:
        """Press the button with this label on the latest message that had buttons."""
        offer = self.last_offer(user_id)
        return await self.process(self.updates.press(user_id, offer.data_for(label), offer))


@asynccontextmanager
async def harness(
    app: App,
    api: BotAPI | None = None,
    *,
    latency: float = 0.0,
    sleep: Any = None,
    processor: BaseUpdateProcessor | None = None,
    budget: SendBudget | None = None,
) -> AsyncIterator[Harness]:
    """An initialized Application for `app` (inside `async with application`); its send
    budget runs on `VirtualTime` unless one is given."""
    api = api or BotAPI()
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    requests = (FakeRequest(api, latency=latency), FakeRequest(api, latency=latency))
    application = build_application(
        app,
        request=requests[0],
        updates_request=requests[1],
        delivery=Delivery(
            backoff=0.0, sleep=no_wait, budget=budget or SendBudget(timer=VirtualTime())
        ),
        sleep=sleep or no_wait,
        processor=processor,
    )
    async with application:
        yield Harness(app, application, api, Updates(), sleeps, requests)
