"""Features plug in one way (`Feature`), registered from one table in bot/app.py, safety first."""

from __future__ import annotations

import pytest

from bot.app import App, features, known_actions
from bot.engine.events import Edited, Message, Output, Text, UserRef
from bot.engine.feature import Feature
from bot.engine.runner import Engine
from bot.engine.turn import Turn
from bot.offload import DatabaseSource, Offload
from bot.reminders.texts import ReminderTexts

CRISIS_WORDS = "I want to kill myself, pelican"


def texts(outputs: list[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Message)]


def table(app: App) -> list[Feature]:
    """The registration table as `open_app` builds it (its offload never starts a worker)."""
    settings = app.settings
    reminder_texts = ReminderTexts.load(settings.dialogs_dir, default=settings.default_locale)
    offload = Offload(DatabaseSource(settings.resolved_database_url(), "unused"))
    assert app.safety is not None
    return features(settings, app.catalog, app.safety, reminder_texts, offload)


def names(hooks: object) -> list[str]:
    return [hook.__qualname__ for hook in hooks]  # type: ignore[attr-defined]


async def test_safety_is_first_and_the_only_feature_that_screens(app: App) -> None:
    found = table(app)
    assert found[0].name == "safety"
    assert [f.name for f in found if f.screens] == ["safety"]
    safety = found[0]
    # as installed: the crisis screen alone among the screens, and safety's interceptors
    # ahead of every other feature's
    assert names(app.engine.screens) == names(safety.screens)
    assert names(app.engine.interceptors)[: len(safety.interceptors)] == names(safety.interceptors)
    assert len(app.engine.interceptors) > len(safety.interceptors)  # others come after


async def test_a_feature_listed_before_safety_still_hears_nothing_before_the_screen(
    app: App,
) -> None:
    """Order in the table decides among interceptors, but every screen runs before every
    interceptor: a feature placed ahead of safety that takes every message still never
    sees a crisis message, a crisis command's words or a crisis edit before the screen."""
    heard: list[str] = []

    async def take_everything(turn: Turn, text: str) -> bool:
        heard.append(text)
        return True

    engine = Engine(app.catalog, app.db, clock=app.engine.clock)
    engine.install([Feature("greedy", interceptors=[take_everything]), *table(app)])

    assert await engine.handle(UserRef("console", "plain"), Text("hello there")) == []
    assert heard == ["hello there"]  # it does take what the screen lets through

    for ref, event in (
        (UserRef("console", "text"), Text(CRISIS_WORDS)),
        (UserRef("console", "command"), Text(f"/reframe {CRISIS_WORDS}")),
    ):
        out = await engine.handle(ref, event)
        assert "Are you safe right now?" in "\n".join(texts(out)), event
    assert heard == ["hello there"]

    edited = UserRef("console", "edit")
    await engine.handle(edited, Text("/start"))
    out = await engine.handle(edited, Edited(CRISIS_WORDS))
    assert "Are you safe right now?" in "\n".join(texts(out))
    assert heard == ["hello there"]


async def test_two_features_claiming_one_name_are_refused(app: App) -> None:
    async def answer(turn: Turn, args: str) -> None:
        turn.say("help")

    engine = Engine(app.catalog, app.db)
    with pytest.raises(ValueError, match=r"second: already registered.*'sos'"):
        engine.install(
            [
                Feature("first", commands={"sos": answer}),
                Feature("second", commands={"sos": answer}),
            ]
        )


async def test_every_action_a_dialog_may_name_is_installed(app: App) -> None:
    """`kindbot dialogs check` validates against `known_actions` without building features:
    the names it knows are exactly the actions the features install."""
    assert set(app.engine.actions) == known_actions()
