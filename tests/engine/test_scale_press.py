"""A rating pressed as a button (Telegram's 0–10 keyboard) is a ChoiceMade on a scale step."""

from __future__ import annotations

from bot.app import App
from bot.engine.events import ChoiceMade, Message, Output, Text, UserRef

ME = UserRef("console", "scale")


async def at_rating(app: App) -> Message:
    engine = app.engine
    consent = [o for o in await engine.handle(ME, Text("/start")) if isinstance(o, Message)][-1]
    await engine.handle(ME, ChoiceMade("yes", consent.step))
    await engine.handle(ME, Text("/reframe"))
    await engine.handle(ME, Text("I'm hopeless"))
    out = await engine.handle(ME, Text("sad"))
    rating = [o for o in out if isinstance(o, Message)][-1]
    assert rating.scale is not None
    return rating


def turned_toward_the_pain(out: list[Output]) -> bool:
    """The step after the first rating (the reframe's `pain`) was shown."""
    return any(
        isinstance(o, Message) and "I've noticed it" in [x.label for x in o.options] for o in out
    )


async def test_a_pressed_rating_answers_the_scale(app: App) -> None:
    rating = await at_rating(app)
    out = await app.engine.handle(ME, ChoiceMade("7", rating.step))
    assert turned_toward_the_pain(out)


async def test_a_stale_or_out_of_range_rating_changes_nothing(app: App) -> None:
    passed = app.catalog.locale("en").messages["step_passed"]
    rating = await at_rating(app)
    assert rating.step is not None
    for event in (ChoiceMade("7", rating.step - 1), ChoiceMade("11", rating.step)):
        (out,) = await app.engine.handle(ME, event)
        assert isinstance(out, Message)
        assert out.text in passed
    again = await app.engine.handle(ME, ChoiceMade("7", rating.step))
    assert turned_toward_the_pain(again)
