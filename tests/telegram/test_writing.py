"""How people write in Telegram: pieces of one thought sent seconds apart, bursts of wrong
answers, a paste Telegram cut in two. Telegram's own send times (`message.date`) decide,
not when the bot got round to a message; the engine's clock stands still here, so a test
that passed on the engine's clock would join every message."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.testing.botapi import TOKEN, Call
from bot.testing.harness import Harness, harness
from tests.conftest import Clock, make_settings
from tests.telegram.helpers import entries, position

AMY = 303


@pytest.fixture
async def quick_app(tmp_path: Path, clock: Clock) -> AsyncIterator[App]:
    """kindbot with the production defaults for joining and spacing (4 s and 5 s)."""
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, split_seconds=4, quiet_seconds=5)
    async with open_app(settings, clock=clock) as opened:
        yield opened


async def send(h: Harness, user: int, text: str, at: int) -> list[Call]:
    """A text message Telegram dates `at` (seconds since the epoch)."""
    update = h.updates.text(user, text)
    update["message"]["date"] = at
    return [c for c in await h.process(update) if c.method == "sendMessage"]


async def start_reframe(h: Harness, user: int) -> None:
    await h.say(user, "/start")
    await h.press(user, "Yes, that's okay")
    await h.press(user, "Skip")
    await h.press(user, "Work with a harsh thought")


async def test_pieces_seconds_apart_are_one_thought(quick_app: App) -> None:
    async with harness(quick_app) as h:
        await start_reframe(h, AMY)
        now = int(time.time())
        first = await send(h, AMY, "ugh", now)
        assert "“ugh”" in first[-1].text
        second = await send(h, AMY, "I forgot my mums birthday again", now + 1)
        assert second[0].text.startswith("I've added that")
        assert "“ugh I forgot my mums birthday again”" in second[-1].text
        third = await send(h, AMY, "worst daughter ever", now + 2)
        assert third == []  # added as well; one "added" per few seconds is enough
        assert await position(quick_app, AMY) == "reframe.feeling"
        # read the question, then answer it: 30 s later by Telegram's clock
        feeling = await send(h, AMY, "ashamed", now + 30)
        assert len(feeling[-1].labels) == 11  # the 0–10 keypad
        assert await position(quick_app, AMY) == "reframe.rating_before"
        await send(h, AMY, "stop", now + 40)
        [entry] = await entries(quick_app, AMY)
        assert entry["thought"] == "ugh I forgot my mums birthday again worst daughter ever"
        assert entry["feeling"] == "ashamed"


async def test_a_burst_of_wrong_ratings_gets_one_short_correction(quick_app: App) -> None:
    async with harness(quick_app) as h:
        await start_reframe(h, AMY)
        now = int(time.time())
        await send(h, AMY, "I never finish anything", now)
        asked = await send(h, AMY, "useless", now + 20)
        assert len(asked[-1].labels) == 11
        burst = [await send(h, AMY, word, now + 30 + i // 2) for i, word in enumerate("abcdefgh")]
        replies = [c for calls in burst for c in calls]
        assert len(replies) == 1  # eight wrong answers in four seconds: one correction
        assert "0 to 10" in replies[0].text and replies[0].buttons == []  # keypad still above
        later = await send(h, AMY, "lots", now + 40)
        assert len(later) == 1 and later[0].buttons == []
        rated = await h.press(AMY, "7")  # the keypad sent first still works
        assert "I notice" in rated[-1].text


async def test_a_paste_cut_in_two_gets_one_offer(quick_app: App) -> None:
    async with harness(quick_app) as h:
        await start_reframe(h, AMY)
        now = int(time.time())
        sentence = "I keep making the same mistakes at work. "
        offer = await send(h, AMY, (sentence * 100)[:4096], now)
        assert offer[-1].labels == ["Use the first part", "I'll write it shorter"]
        assert await send(h, AMY, sentence * 10, now + 1) == []  # Telegram's second piece
        # after a short (last) piece, a message is the person's again: here a throwaway "ok"
        nudged = await send(h, AMY, "ok", now + 2)
        assert "say a little more" in nudged[-1].text
        assert await position(quick_app, AMY) == "reframe.thought"
        press = h.updates.press(AMY, offer[-1].data_for("Use the first part"), offer[-1])
        used = await h.process(press)
        assert "I keep making the same mistakes at work." in used[-1].text
        assert await position(quick_app, AMY) == "reframe.feeling"
