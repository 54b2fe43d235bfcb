"""Polling is at-least-once: an update handled just before a crash comes again. It is
answered once, whether it comes again in the same run or after a restart."""

from __future__ import annotations

from bot.app import App, open_app
from bot.config import Settings
from bot.testing.botapi import BotAPI
from bot.testing.harness import harness
from tests.conftest import Clock
from tests.telegram.helpers import entries, position

ANN = 101


async def test_the_same_update_twice_is_answered_once(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/start")
        await h.press(ANN, "Yes, that's okay")
        await h.say(ANN, "/reframe")
        thought = h.updates.text(ANN, "I always let people down")
        first = await h.process(thought)
        assert [c.method for c in first] == ["sendMessage"]
        assert await h.process(thought) == []
        assert await position(app, ANN) == "reframe.feeling"

        rating = await h.say(ANN, "ashamed")
        press = h.updates.press(ANN, rating[-1].data_for("8"), rating[-1])
        pressed = await h.process(press)
        assert "editMessageText" in [c.method for c in pressed]
        again = await h.process(press)
        assert [c.method for c in again] == ["answerCallbackQuery"]  # no edit, no message
        assert await position(app, ANN) == "reframe.pain"


async def test_an_update_redelivered_after_a_restart_is_not_answered_again(
    settings: Settings, clock: Clock
) -> None:
    api = BotAPI()
    async with open_app(settings, clock=clock) as app, harness(app, api) as h:
        await h.say(ANN, "/start")
        await h.press(ANN, "Yes, that's okay")
        await h.say(ANN, "/reframe")
        thought = h.updates.text(ANN, "I always let people down")
        await h.process(thought)
    # SIGKILL before Telegram learned the update was handled: it comes again
    async with open_app(settings, clock=clock) as app, harness(app, api) as h:
        assert await h.process(thought) == []
        assert await position(app, ANN) == "reframe.feeling"
        replies = await h.say(ANN, "ashamed")  # and the person carries on
        assert replies[-1].labels[:3] == ["0", "1", "2"]
        assert len(await entries(app, ANN)) == 1
