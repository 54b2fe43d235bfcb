"""Everything a person (or Telegram) can send that is not the expected answer."""

from __future__ import annotations

import logging

import pytest

from bot.app import App
from bot.testing.harness import Harness, harness
from tests.telegram.helpers import find_user, position

ANN = 101


async def at_thought(h: Harness) -> None:
    await h.say(ANN, "/start")
    await h.press(ANN, "Yes, that's okay")
    await h.say(ANN, "/reframe")


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice", "document"])
async def test_attachments_get_a_gentle_line_and_change_nothing(app: App, kind: str) -> None:
    unsupported = app.catalog.locale("en").message("unsupported_input")
    async with harness(app) as h:
        await at_thought(h)
        replies = await h.process(getattr(h.updates, kind)(ANN))
        assert [c.text for c in replies] == [unsupported]
        assert await position(app, ANN) == "reframe.thought"


async def test_a_location_mid_dialog_sets_the_zone_and_keeps_the_place(app: App) -> None:
    async with harness(app) as h:
        await at_thought(h)
        replies = await h.process(h.updates.location(ANN))
        assert "Europe/Berlin" in replies[0].text
        assert await position(app, ANN) == "reframe.thought"
        assert replies[-1].text != replies[0].text  # the open question is asked again


async def test_attachment_while_a_choice_is_open_points_to_the_buttons(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/start")
        replies = await h.process(h.updates.sticker(ANN))
        # the buttons just sent are still the latest on screen: pointed to, not sent again
        assert "use the buttons" in replies[-1].text and replies[-1].buttons == []
        assert await position(app, ANN) == "onboarding.consent"
        await h.press(ANN, "Yes, that's okay")
        assert await position(app, ANN) != "onboarding.consent"


async def test_edited_messages_are_not_answers(app: App) -> None:
    async with harness(app) as h:
        await at_thought(h)
        assert await h.process(h.updates.edited(ANN, "an edited thought")) == []
        assert await position(app, ANN) == "reframe.thought"


async def test_crisis_language_in_an_edit_is_still_heard(app: App) -> None:
    async with harness(app) as h:
        await at_thought(h)
        replies = await h.process(h.updates.edited(ANN, "I am useless and I want to die"))
        assert replies
        assert "safe" in replies[0].text.lower()
        assert (await position(app, ANN)).startswith("crisis.")


async def test_a_button_from_an_old_message_only_answers_the_press(app: App) -> None:
    passed = app.catalog.locale("en").messages["step_passed"]
    async with harness(app) as h:
        await h.say(ANN, "/start")
        consent = h.last_offer(ANN)
        await h.press(ANN, "Yes, that's okay")
        await h.press(ANN, "Skip")
        again = await h.process(h.updates.press(ANN, consent.data_for("Not now"), consent))
        assert [c.method for c in again] == ["answerCallbackQuery"]
        assert again[0].params["text"] in passed
        assert await position(app, ANN) == "menu.choose"


async def test_a_button_after_the_dialog_ended(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/start")
        await h.press(ANN, "Yes, that's okay")
        await h.press(ANN, "Skip")
        menu = h.last_offer(ANN)
        await h.press(ANN, "Nothing right now")
        again = await h.process(h.updates.press(ANN, menu.data_for("Nothing right now"), menu))
        assert [c.method for c in again] == ["answerCallbackQuery"]
        assert await position(app, ANN) == "none"


@pytest.mark.parametrize("data", ["", "x" * 64, "3:yes;drop table", "99:", "abc:yes", "3:YES"])
async def test_malformed_callback_data_is_ignored_without_content(
    app: App, data: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with harness(app) as h:
        await h.say(ANN, "/start")
        replies = await h.process(h.updates.press(ANN, data))
        assert [c.method for c in replies] == ["answerCallbackQuery"]
        assert await position(app, ANN) == "onboarding.consent"
    if data:
        assert data not in caplog.text


async def test_a_forged_value_on_the_current_step_changes_nothing(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/start")
        step = h.last_offer(ANN).data_for("Not now").split(":")[0]
        replies = await h.process(h.updates.press(ANN, f"{step}:maybe"))
        assert [c.method for c in replies] == ["answerCallbackQuery"]
        assert await position(app, ANN) == "onboarding.consent"


@pytest.mark.parametrize("kind", ["group", "supergroup"])
async def test_group_chats_get_one_line_and_nothing_is_stored(app: App, kind: str) -> None:
    line = app.catalog.locale("en").message("private_only")
    async with harness(app) as h:
        group = h.updates.chat(-500, kind)
        replies = await h.process(h.updates.text(ANN, "/start", chat=group))
        assert [(c.method, c.chat_id, c.text) for c in replies] == [("sendMessage", -500, line)]
        assert await h.process(h.updates.text(ANN, "I'm useless", chat=group)) == []
        added = await h.process(h.updates.membership(ANN, "left", "member", chat=group))
        assert [c.text for c in added] == [line]
    assert await find_user(app, ANN) is None


async def test_blocking_marks_the_person_and_start_clears_it(app: App) -> None:
    async with harness(app) as h:
        await h.say(ANN, "/start")
        assert await h.process(h.updates.membership(ANN, "member", "kicked")) == []
        user = await find_user(app, ANN)
        assert user is not None
        assert user.blocked_at is not None
        await h.say(ANN, "/start")
        user = await find_user(app, ANN)
        assert user is not None
        assert user.blocked_at is None


async def test_a_stranger_blocking_leaves_nothing_behind(app: App) -> None:
    async with harness(app) as h:
        await h.process(h.updates.membership(ANN, "member", "kicked"))
    assert await find_user(app, ANN) is None
