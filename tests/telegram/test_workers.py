"""Two workers on one PostgreSQL database take turns with one person's conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import open_app
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.harness import harness
from tests.conftest import Clock, fresh_pg_schema, make_settings
from tests.telegram.helpers import entries, position

pytestmark = pytest.mark.postgres


async def test_any_worker_continues_any_conversation(tmp_path: Path, clock: Clock) -> None:
    async with fresh_pg_schema() as (url, schema):
        settings = make_settings(tmp_path, database_url=url, telegram_bot_token=TOKEN)
        api = BotAPI()
        async with (
            open_app(settings, clock=clock, schema=schema) as one,
            open_app(settings, clock=clock, schema=schema) as two,
            harness(one, api) as a,
            harness(two, api) as b,
        ):
            await a.say(5, "/start")
            await b.press(5, "Yes, that's okay")
            await a.say(5, "/reframe")
            await b.say(5, "I ruin everything")
            await a.say(5, "sad")
            assert await position(two, 5) == "reframe.rating_before"
            # the same button pressed on both workers at once: exactly one takes it
            offer = a.last_offer(5)
            press = a.updates.press(5, offer.data_for("7"), offer)
            await asyncio.gather(a.process(press), b.process(press))
            assert await position(one, 5) == "reframe.pain"
            assert len([c for c in api.calls if c.method == "editMessageText"]) >= 1
            # the next step (turning toward the pain) was asked once, not once per worker
            asked = [c for c in api.sent("sendMessage", 5) if "I've noticed it" in c.labels]
            assert len(asked) == 1
            (entry,) = await entries(one, 5)
            assert entry["status"] == "in_progress"
