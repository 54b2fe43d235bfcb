"""Failures on Telegram's side and ours: retried, recorded, or told briefly; never fatal."""

from __future__ import annotations

import logging

import pytest

from bot.app import App
from bot.engine.events import Message
from bot.telegram.errors import Delivery
from bot.telegram.render import Renderer
from bot.testing.harness import harness
from tests.telegram.helpers import find_user

ANN = 101


async def test_flood_control_is_waited_out_and_retried(app: App) -> None:
    async with harness(app) as h:
        h.api.fail("sendMessage", "retry_after")
        replies = await h.say(ANN, "/start")
        sends = [c for c in replies if c.method == "sendMessage"]
        assert len(sends) == 4  # the refused one, then all three
        assert sends[0].text == sends[1].text
        assert h.sleeps == []
        assert h.budget.waited == pytest.approx(1.0)  # retry_after, waited in the budget


async def test_network_errors_are_retried_with_backoff(app: App) -> None:
    async with harness(app) as h:
        h.api.fail("network:sendMessage", "network", times=2)
        replies = await h.say(ANN, "/start")
        assert len([c for c in replies if c.method == "sendMessage"]) == 3
        assert len(h.sleeps) == 2


async def test_a_403_marks_the_person_unreachable_and_stops_sending(app: App) -> None:
    async with harness(app) as h:
        h.api.fail("sendMessage", "forbidden")
        replies = await h.say(ANN, "/start")
        assert [c.method for c in replies] == ["sendMessage"]  # nothing after the refusal
        user = await find_user(app, ANN)
        assert user is not None
        assert user.blocked_at is not None


async def test_an_error_in_a_handler_is_logged_without_content_and_told_briefly(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sorry = app.catalog.locale("en").message("something_went_wrong")

    async def broken(self: Renderer, chat_id: int, outputs: object, shown: object = None) -> None:
        raise ValueError("the secret words I'm useless")

    async with harness(app) as h:
        monkeypatch.setattr(Renderer, "show", broken)
        replies = await h.say(ANN, "I'm useless")
        assert [c.text for c in replies] == [sorry]
        monkeypatch.undo()
        assert len(await h.say(ANN, "/help")) >= 1  # still running
    assert "ValueError" in caplog.text
    assert "useless" not in caplog.text


async def test_long_messages_are_split_on_paragraphs(app: App) -> None:
    paragraph = ("A kind sentence. " * 40).strip()
    text = "\n\n".join(f"{i} {paragraph}" for i in range(12))  # ~8,300 characters
    async with harness(app) as h:
        await Renderer(h.application.bot, Delivery()).show(ANN, [Message(text)])
    pieces = h.api.texts(ANN)
    assert len(pieces) == 3
    assert all(len(p) <= 4096 for p in pieces)
    assert all(p.endswith("A kind sentence.") for p in pieces)
    assert "\n\n".join(pieces) == text


async def test_debug_logging_never_shows_what_people_wrote(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.app import configure_logging

    telegram_logger = logging.getLogger("telegram")
    before = telegram_logger.level
    try:
        configure_logging("DEBUG")
        caplog.set_level(logging.DEBUG)
        async with harness(app) as h:
            await h.say(ANN, "/start")
            await h.press(ANN, "Yes, that's okay")
            await h.say(ANN, "/reframe")
            await h.say(ANN, "my very private thought")
    finally:
        telegram_logger.setLevel(before)
    assert "private thought" not in caplog.text
