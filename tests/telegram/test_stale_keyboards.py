"""Keyboards come off when their step is stopped (issue 12, item 7): /cancel, "stop", or
asking for a check-in while one is open edits the keyboard of the stopped step's message
away (editMessageReplyMarkup), so no button is left that no longer does anything."""

from __future__ import annotations

from bot.app import App
from bot.testing.botapi import Call
from bot.testing.harness import Harness, harness
from tests.telegram.helpers import position

ANN = 101


async def _ready(h: Harness) -> None:
    await h.say(ANN, "/start")
    await h.press(ANN, "Yes, that's okay")
    await h.press(ANN, "Skip")


def _edits(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.method == "editMessageReplyMarkup"]


async def test_cancel_and_stop_take_the_keyboard_off(app: App) -> None:
    async with harness(app) as h:
        await _ready(h)
        await h.say(ANN, "/reframe")
        await h.say(ANN, "I'm useless")
        await h.say(ANN, "ashamed")
        rating = h.last_offer(ANN)
        assert rating.message_id is not None and len(rating.labels) == 11

        cancelled = await h.say(ANN, "/cancel")
        (edit,) = _edits(cancelled)
        assert edit.params["message_id"] == rating.message_id
        assert edit.chat_id == ANN
        assert not edit.params.get("reply_markup")  # no keyboard left on it
        assert "stopped" in cancelled[-1].text
        # (the edit comes before the words saying so)
        assert cancelled.index(edit) < len(cancelled) - 1

        # nothing open, nothing on screen: no edit
        assert _edits(await h.say(ANN, "/cancel")) == []

        # "stop" in words does the same
        await h.say(ANN, "/checkin")
        asked = h.last_offer(ANN)
        stopped = await h.say(ANN, "stop")
        assert [e.params["message_id"] for e in _edits(stopped)] == [asked.message_id]
        assert await position(app, ANN) == "none"


async def test_a_fresh_checkin_takes_the_old_ones_keyboard_off(app: App) -> None:
    async with harness(app) as h:
        await _ready(h)
        await h.say(ANN, "/checkin")
        old = h.last_offer(ANN)
        again = await h.say(ANN, "/checkin")
        assert [e.params["message_id"] for e in _edits(again)] == [old.message_id]
        new = h.last_offer(ANN)
        assert new.message_id != old.message_id and len(new.labels) == 11
        # the new keyboard is the one a stop takes off now
        stopped = await h.say(ANN, "/cancel")
        assert [e.params["message_id"] for e in _edits(stopped)] == [new.message_id]


async def test_a_pressed_keyboard_is_not_edited_twice(app: App) -> None:
    async with harness(app) as h:
        await _ready(h)
        await h.say(ANN, "/checkin")
        await h.press(ANN, "5")  # its keyboard comes off as it is pressed
        await h.press(ANN, "I've taken a moment")
        rerate = h.last_offer(ANN)
        stopped = await h.say(ANN, "/cancel")
        assert [e.params["message_id"] for e in _edits(stopped)] == [rerate.message_id]


async def test_telegram_refusing_the_edit_changes_nothing(app: App) -> None:
    async with harness(app) as h:
        await _ready(h)
        await h.say(ANN, "/checkin")
        h.api.fail("editMessageReplyMarkup", "bad_request")
        stopped = await h.say(ANN, "/cancel")
        assert len(_edits(stopped)) == 1
        assert "stopped the check-in" in stopped[-1].text
        assert await position(app, ANN) == "none"
