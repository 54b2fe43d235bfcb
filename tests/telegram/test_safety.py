"""The crisis pause, /sos, /country and the check-in through the real PTB Application on the
fake Bot API: the first message after crisis language carries the local helpline."""

from __future__ import annotations

from pathlib import Path

from bot.app import open_app
from bot.testing.botapi import TOKEN
from bot.testing.harness import harness
from tests.conftest import Clock, make_settings
from tests.telegram.helpers import position

ANN = 101


async def test_crisis_mid_reframe_first_message_has_the_helpline(
    tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, default_country="GB")
    async with open_app(settings, clock=clock) as app, harness(app) as h:
        await h.say(ANN, "/start")
        await h.press(ANN, "Yes, that's okay")
        await h.press(ANN, "Skip")
        await h.press(ANN, "Work with a harsh thought")
        await h.say(ANN, "I'm a let-down")
        assert await position(app, ANN) == "reframe.feeling"
        reply = await h.say(ANN, "i want to kms")
        sent = [c for c in reply if c.method == "sendMessage"]
        assert "Samaritans: call 116 123" in sent[0].text
        assert "999" in sent[0].text
        assert "I'm safe, continue where I was" in sent[0].labels
        assert await position(app, ANN) == "crisis.direct"
        back = await h.press(ANN, "I'm safe, continue where I was")
        assert "what do you feel?" in back[-1].text
        assert await position(app, ANN) == "reframe.feeling"


async def test_sos_country_and_a_paced_check_in(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN)
    async with open_app(settings, clock=clock) as app, harness(app) as h:
        sos = await h.say(ANN, "/sos")
        assert "findahelpline.com" in sos[-1].text  # "en" names no region, no DEFAULT_COUNTRY
        await h.press(ANN, "I'm safe, continue where I was")
        chosen = await h.say(ANN, "/country ie")
        assert "Ireland" in chosen[-1].text
        assert "Pieta" in (await h.say(ANN, "/sos"))[-1].text
        await h.press(ANN, "I'm safe, continue where I was")
        await h.say(ANN, "/start")
        await h.press(ANN, "Yes, that's okay")
        await h.press(ANN, "Skip")
        await h.press(ANN, "Check in with how I feel")
        await h.press(ANN, "9")
        h.sleeps.clear()
        await h.press(ANN, "Slow breathing")
        assert sum(h.sleeps) >= 20  # the adapter waited per Pause (for this person only)
        assert await position(app, ANN) == "breathing.again"


async def test_a_caption_is_screened_too(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, default_country="US")
    async with open_app(settings, clock=clock) as app, harness(app) as h:
        size = {"file_id": "p1", "file_unique_id": "p1u", "width": 90, "height": 90}
        reply = await h.process(h.updates.message(ANN, photo=[size], caption="i want to die"))
        assert "988" in reply[0].text
        calm = await h.process(h.updates.photo(ANN))  # caption "here is my thought": just the hint
        assert "988" not in " ".join(c.text for c in calm if c.method == "sendMessage")


async def test_a_caption_with_my_self_in_two_words_is_screened(
    tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, default_country="US")
    async with open_app(settings, clock=clock) as app, harness(app) as h:
        size = {"file_id": "p2", "file_unique_id": "p2u", "width": 90, "height": 90}
        caption = "i want to kill my self"
        reply = await h.process(h.updates.message(ANN, photo=[size], caption=caption))
        assert "988" in reply[0].text
        assert "If you might act on these thoughts" in reply[0].text
        assert await position(app, ANN) == "crisis.direct"
