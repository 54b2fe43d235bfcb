"""The hot path runs on a Core connection; `turn.session` opens a session in the same
transaction only when something needs it (storage.db.Step)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.engine.events import Command, Text, UserRef
from bot.engine.frame import Frame
from bot.engine.turn import Turn
from storage.models import Entry, SafetyEvent, User

ME = UserRef("console", "lazy")


async def stored_user(app: App, ref: UserRef = ME) -> User:
    async with app.db.session() as session:
        query = select(User).where(col(User.external_id) == ref.external_id)
        return (await session.execute(query)).scalar_one()


async def count(app: App, model: Any) -> int:
    async with app.db.session() as session:
        return len((await session.execute(select(model))).scalars().all())


async def consent(app: App) -> None:
    await app.engine.handle(ME, Text("/start"))
    await app.engine.handle(ME, Text("1"))


async def test_a_plain_step_opens_no_session_and_writes_changed_user_fields(
    any_app: App,
) -> None:
    opened: list[bool] = []

    async def note(turn: Turn, args: str) -> None:
        turn.user.country = "NZ"  # a user field, written with Core at the end of the step
        opened.append(turn.unit.session_opened)
        turn.say("help")

    any_app.engine.commands["note"] = note
    await consent(any_app)
    await any_app.engine.handle(ME, Command("note", ""))
    assert opened == [False]
    assert (await stored_user(any_app)).country == "NZ"


async def test_user_changes_before_the_session_opens_are_flushed_with_its_writes(
    any_app: App,
) -> None:
    async def both(turn: Turn, args: str) -> None:
        turn.user.country = "IE"  # changed while the user row is still detached
        assert turn.user.id is not None
        turn.session.add(
            SafetyEvent(
                user_id=turn.user.id,
                created_at=turn.now,
                category="test",
                level="check",
                dialog=None,
                state=None,
            )
        )
        turn.user.timezone = "Europe/Dublin"  # and after it joined the session
        turn.say("help")

    any_app.engine.commands["both"] = both
    await consent(any_app)
    await any_app.engine.handle(ME, Command("both", ""))
    user = await stored_user(any_app)
    assert (user.country, user.timezone) == ("IE", "Europe/Dublin")
    assert await count(any_app, SafetyEvent) == 1


async def test_a_failing_step_rolls_back_its_session_writes_and_user_changes(
    any_app: App,
) -> None:
    async def fails(turn: Turn, args: str) -> None:
        turn.user.country = "FR"
        await turn.start_dialog("reframe")  # creates an entry through the session
        raise RuntimeError("boom")

    any_app.engine.commands["fails"] = fails
    await consent(any_app)
    entries = await count(any_app, Entry)
    before = await stored_user(any_app)
    outputs = await any_app.engine.handle(ME, Command("fails", ""))
    assert len(outputs) == 1  # "something went wrong", nothing else
    after = await stored_user(any_app)
    assert after.country == before.country and after.counters == before.counters
    assert await count(any_app, Entry) == entries
    # the person's next step works from the unchanged state
    assert await any_app.engine.handle(ME, Text("/reframe"))
    assert await count(any_app, Entry) == entries + 1


async def test_an_action_with_the_session_sees_the_same_user_object(any_app: App) -> None:
    seen: list[bool] = []

    async def same(turn: Turn, frame: Frame) -> None:
        assert turn.user.id is not None
        loaded = await turn.session.get(User, turn.user.id)
        seen.append(loaded is turn.user)

    any_app.engine.commands["same"] = lambda turn, args: same(turn, Frame("x", "y"))
    await consent(any_app)
    await any_app.engine.handle(ME, Command("same", ""))
    assert seen == [True]


@pytest.mark.parametrize("first", ["/start", "hello"])
async def test_first_contact_creates_the_rows_through_the_session(app: App, first: str) -> None:
    ref = UserRef("console", f"new-{first}")
    assert await app.engine.handle(ref, Text(first))
    user = await stored_user(app, ref)
    assert user.counters  # onboarding was started and counted
