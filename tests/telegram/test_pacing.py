"""Paced exercises in Telegram: one message changed in place, pauses that hold nobody else
up and give way when the person writes, and a restart that does not replay the counts."""

from __future__ import annotations

import asyncio
import secrets

from telegram import Update

from bot.app import App
from bot.engine.events import Text, UserRef
from bot.telegram.application import sender_of
from bot.testing.harness import Harness, harness
from tests.telegram.helpers import position

ANN = 401


def texts_of(h: Harness, method: str) -> list[str]:
    return [c.text for c in h.api.sent(method, ANN)]


async def test_breathing_is_two_messages_and_one_changed_in_place(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/breathe")
        sent = h.api.sent("sendMessage", ANN)
        edits = h.api.sent("editMessageText", ANN)
        assert len(sent) == 2
        assert "breathe slowly together" in sent[0].text and "Breathe in" not in sent[0].text
        assert sent[1].labels == ["A few more breaths", "That's enough for now"]
        assert len(edits) == 6  # in, out, in, out, in, out: the counts, in place
        assert {e.params["message_id"] for e in edits} == {edits[0].params["message_id"]}
        assert "Breathe in slowly" in edits[0].text and "together" in edits[0].text
        assert "And out" in edits[-1].text and "In…" not in edits[-1].text
        assert h.sleeps == [3, 4, 6, 4, 6, 4, 3]  # the pauses are still kept

        await h.press(ANN, "That's enough for now")
        assert "Well done" in h.api.sent("sendMessage", ANN)[-1].text


async def test_the_compassion_break_grows_in_one_message_and_its_button_works(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/checkin")
        await h.say(ANN, "5")  # the middle band: straight to the break
        sent = h.api.sent("sendMessage", ANN)
        edits = h.api.sent("editMessageText", ANN)
        assert "for checking in" in sent[-1].text
        assert len(edits) == 4 and "May I be kind to myself" in edits[-1].text
        assert "for checking in" in edits[-1].text  # batched, not replaced
        assert edits[-1].labels == ["I've taken a moment"]
        await h.press(ANN, "I've taken a moment")
        assert await position(app, ANN) == "checkin.rerate"


async def test_writing_during_breathing_cuts_its_pauses_short(app: App) -> None:
    paused = asyncio.Event()

    async def held(seconds: float) -> None:  # a pause that would never end by itself
        paused.set()
        await asyncio.Event().wait()

    async with harness(app, sleep=held) as h:
        await h.application.start()
        try:
            queue = h.application.update_queue
            await queue.put(Update.de_json(h.updates.text(ANN, "/breathe"), h.application.bot))
            await asyncio.wait_for(paused.wait(), timeout=10)
            assert len(h.api.sent("sendMessage", ANN)) == 1  # the intro, then the pause
            # the update is finished while its exercise paces on in the background, so it
            # holds neither the polling offset nor a webhook connection for 35 seconds
            await asyncio.wait_for(queue.join(), timeout=10)
            assert len(h.api.sent("sendMessage", ANN)) == 1  # still in its first pause
            await queue.put(Update.de_json(h.updates.text(ANN, "stop"), h.application.bot))
            await asyncio.wait_for(queue.join(), timeout=10)
        finally:
            await h.application.stop()
        sent = texts_of(h, "sendMessage")
        assert "few more breaths" in sent[1]  # the exercise's end, at once
        assert len(sent) == 3  # and then the answer to "stop"
        edits = texts_of(h, "editMessageText")  # only where the counts ended, not each one
        assert len(edits) == 1 and "And out" in edits[0]
        assert await position(app, ANN) == "none"


async def test_after_a_crash_mid_breathing_the_next_message_works(app: App) -> None:
    async with harness(app) as h:
        update = h.updates.text(ANN, "/breathe")
        ref = UserRef("telegram", str(ANN), "en", "en")
        await app.engine.reply(ref, Text("/breathe"), seq=update["update_id"])  # then killed
        app.engine.outbox.owner = secrets.randbits(31)  # the next process
        app.engine.outbox.exclusive = True

    async with harness(app, api=h.api) as h:
        h.api.clear()
        assert await sender_of(h.application).flush(force=True) == 1  # at start
        assert h.sleeps == []  # hurried: nobody else's leftovers wait behind its pauses
        sent = texts_of(h, "sendMessage")
        assert "breathe slowly together" in sent[0]
        assert len(sent) == 2 and "few more breaths" in sent[1]
        await h.say(ANN, "2")  # "That's enough for now"
        assert "Well done" in texts_of(h, "sendMessage")[-1]
        assert await position(app, ANN) == "none"


async def test_a_message_that_cannot_be_changed_any_more_still_gets_its_question_out(
    app: App,
) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/checkin")
        h.api.fail("editMessageText", "bad_request", times=4)  # deleted by the person, say
        await h.say(ANN, "5")
        sent = h.api.sent("sendMessage", ANN)
        assert len(h.api.sent("editMessageText", ANN)) == 4  # each tried once, none retried
        assert sent[-1].labels == ["I've taken a moment"]  # the question, sent anew whole
        assert "This is a moment of suffering" in sent[-1].text
        await h.press(ANN, "I've taken a moment")
        assert await position(app, ANN) == "checkin.rerate"
