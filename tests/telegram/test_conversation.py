"""Whole conversations through the real PTB Application on a fake Bot API."""

from __future__ import annotations

from bot.app import App, open_app
from bot.config import Settings
from bot.testing.botapi import BotAPI
from bot.testing.harness import Harness, harness
from tests.conftest import Clock
from tests.telegram.helpers import entries, position

ANN = 101
BEN = 202


async def consent(h: Harness, user: int) -> None:
    await h.say(user, "/start")
    await h.press(user, "Yes, that's okay")


async def test_a_whole_reframe_with_buttons(app: App) -> None:
    async with harness(app) as h:
        first = await h.say(ANN, "/start")
        assert [c.method for c in first] == ["sendMessage"] * 3
        assert "kindbot" in first[0].text
        assert first[-1].labels == ["Yes, that's okay", "Not now"]
        assert all(c.params["parse_mode"] == "HTML" for c in first)

        pressed = await h.press(ANN, "Yes, that's okay")
        methods = [c.method for c in pressed]
        assert methods[:2] == ["answerCallbackQuery", "editMessageText"]
        edit = pressed[1]
        assert edit.text.endswith("→ <b>Yes, that's okay</b>")
        assert "reply_markup" not in edit.params  # the keyboard is gone
        assert pressed[-1].labels == ["Choose my country", "Skip"]
        pressed = await h.press(ANN, "Skip")
        assert pressed[-1].labels == [
            "Work with a harsh thought",
            "Check in with how I feel",
            "Nothing right now",
        ]

        asked = await h.press(ANN, "Work with a harsh thought")
        assert "harsh" in asked[-1].text or "critic" in asked[-1].text
        feeling = await h.say(ANN, "I'm <b>useless</b> & always late")
        assert "I'm &lt;b&gt;useless&lt;/b&gt; &amp; always late" in feeling[-1].text
        rating = await h.say(ANN, "ashamed")
        rows = rating[-1].buttons
        assert [[b["text"] for b in row] for row in rows] == [
            ["0", "1", "2", "3", "4", "5"],
            ["6", "7", "8", "9", "10"],
        ]
        assert all(len(b["callback_data"].encode()) <= 64 for row in rows for b in row)

        pain = await h.press(ANN, "8")
        assert pain[1].text.endswith("→ <b>8</b>")
        assert pain[-1].labels == ["I've noticed it", "It's too much right now"]
        notice = await h.press(ANN, "I've noticed it")
        assert "I notice I'm having the thought" in notice[-1].text
        await h.press(ANN, "I see it")
        await h.press(ANN, "Okay")
        friend = await h.press(ANN, "A close friend")
        assert "about themselves" in friend[-1].text
        await h.say(ANN, "You are doing your best.")
        await h.say(ANN, "I'm doing my best, and that is enough.")
        await h.press(ANN, "3")
        close = await h.press(ANN, "Skip this one")
        assert "8 → 3" in close[-1].text
        assert await position(app, ANN) == "none"
        (entry,) = await entries(app, ANN)
        assert entry["status"] == "finished"
        assert entry["rating_before"] == 8
        assert entry["rating_after"] == 3
        assert entry["thought"] == "I'm <b>useless</b> & always late"


async def test_a_restart_continues_at_the_same_step(settings: Settings, clock: Clock) -> None:
    api = BotAPI()
    async with open_app(settings, clock=clock) as app, harness(app, api) as h:
        await consent(h, ANN)
        await h.say(ANN, "/reframe")
        await h.say(ANN, "I always mess things up")
        assert await position(app, ANN) == "reframe.feeling"
    async with open_app(settings, clock=clock) as app, harness(app, api) as h:
        replies = await h.say(ANN, "hopeless")
        assert replies[-1].labels[:3] == ["0", "1", "2"]  # the rating, not the start again
        assert await position(app, ANN) == "reframe.rating_before"
        # a button from before the restart still works: it is tied to the stored step
        await h.press(ANN, "6")
        assert await position(app, ANN) == "reframe.pain"


async def test_two_people_interleaved_keep_their_own_place(app: App) -> None:
    async with harness(app) as h:
        await consent(h, ANN)
        await consent(h, BEN)
        await h.say(ANN, "/reframe")
        await h.say(BEN, "/reframe")
        ann = await h.say(ANN, "I'm too slow")
        ben = await h.say(BEN, "I'm a bad friend")
        assert "I'm too slow" in ann[-1].text
        assert "I'm a bad friend" in ben[-1].text
        assert all(c.chat_id == ANN for c in ann)
        assert all(c.chat_id == BEN for c in ben)
        await h.say(BEN, "guilty")
        assert await position(app, ANN) == "reframe.feeling"
        assert await position(app, BEN) == "reframe.rating_before"
        # Ben's rating buttons do nothing for Ann (not her step)
        offer = h.last_offer(BEN)
        stale = await h.process(h.updates.press(ANN, offer.data_for("5"), offer))
        assert [c.method for c in stale] == ["answerCallbackQuery"]
        assert await position(app, ANN) == "reframe.feeling"


async def test_commands_are_registered_from_the_catalog(app: App) -> None:
    from bot.telegram.application import register_commands

    async with harness(app) as h:
        await register_commands(h.application.bot, app.catalog, app.engine.commands)
        (call,) = h.api.sent("setMyCommands")
        commands = {c["command"]: c["description"] for c in call.params["commands"]}
        names = list(commands)
        # what helps in a hard moment first, deleting everything last
        assert names[:3] == ["reframe", "checkin", "sos"]
        assert names[-1] == "forget"
        # /help lists the same commands in the same order
        help_text = app.catalog.locale("en").message("help")
        listed = [line.split(" ")[0][1:] for line in help_text.splitlines() if line[:1] == "/"]
        assert listed == [n for n in names if n != "settings"]  # /settings: with /reminders
        # one voice: the bot is "I", never "kindbot", and each line starts with a capital
        assert all("kindbot" not in d and d[:1].isupper() for d in commands.values())
        assert set(app.catalog.command_dialogs()) <= set(names)
        assert set(app.engine.commands) <= set(names)
        reframe = app.catalog.dialog("reframe")
        assert reframe is not None
        assert commands["reframe"] == reframe.spec.description
        assert commands["start"] == app.catalog.locale("en").message("command_start")
