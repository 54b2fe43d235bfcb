"""An event delivered twice (Telegram after a crash) is handled once: `Engine.handle(seq=)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App, open_app
from bot.engine.events import Message, Output, Text, UserRef
from storage import repo
from storage.models import Conversation, User
from tests.conftest import Clock, make_settings

ME = UserRef("console", "redelivered")


async def conversation(app: App, ref: UserRef = ME) -> tuple[int, dict[str, Any], list[int]]:
    """(step, state, seen seqs) as stored."""
    async with app.db.session() as session:
        query = select(Conversation).join(User).where(col(User.external_id) == ref.external_id)
        row = (await session.execute(query)).scalar_one()
        _, state = await repo.load_conversation(
            session, user_id=row.user_id, cipher=app.db.cipher, lock=False
        )
        return row.step, state, list(row.seen_seqs)


def texts(outputs: list[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Message)]


async def reach_the_thought(app: App) -> None:
    await app.engine.handle(ME, Text("/start"), seq=1)
    await app.engine.handle(ME, Text("1"), seq=2)  # consent
    await app.engine.handle(ME, Text("/reframe"), seq=3)


async def test_the_same_seq_twice_is_answered_once_and_changes_nothing(any_app: App) -> None:
    await reach_the_thought(any_app)
    first = await any_app.engine.handle(ME, Text("I always let people down"), seq=4)
    assert texts(first)
    before = await conversation(any_app)

    again = await any_app.engine.handle(ME, Text("I always let people down"), seq=4)
    assert again == []
    assert await conversation(any_app) == before
    (frame,) = before[1]["stack"]
    assert frame["answers"] == {"thought": "I always let people down"}
    assert len(await _entries(any_app)) == 1

    # the next new update goes on from where the first delivery left the person
    assert texts(await any_app.engine.handle(ME, Text("ashamed"), seq=5))
    step, _, seen = await conversation(any_app)
    assert step > before[0]
    assert seen[-2:] == [4, 5]


async def test_an_event_without_seq_is_always_handled(app: App) -> None:
    await reach_the_thought(app)
    for _ in range(2):
        assert texts(await app.engine.handle(ME, Text("/help")))
    assert (await conversation(app))[2] == [1, 2, 3]


async def test_a_new_seq_lower_than_the_last_is_still_handled(app: App) -> None:
    """Only ids already handled are skipped: an update that arrives late (two webhook
    deliveries racing) is answered, never dropped; a random id after Telegram's reset of
    its counter (a week without updates) is answered too."""
    await reach_the_thought(app)
    assert texts(await app.engine.handle(ME, Text("/help"), seq=1_000_000))
    assert texts(await app.engine.handle(ME, Text("/help"), seq=10))


async def test_only_the_last_seqs_are_remembered(app: App) -> None:
    await reach_the_thought(app)
    for seq in range(100, 100 + repo.SEEN_SEQS + 10):
        await app.engine.handle(ME, Text("/help"), seq=seq)
    seen = (await conversation(app))[2]
    assert seen == list(range(110, 100 + repo.SEEN_SEQS + 10))


async def test_a_failed_step_does_not_count_as_handled(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The redelivery of an event whose step failed (rolled back) is handled normally."""
    await reach_the_thought(app)
    real = app.engine.dispatch

    async def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.engine, "dispatch", broken)
    failed = await app.engine.handle(ME, Text("I always let people down"), seq=4)
    assert texts(failed) == [app.catalog.locale("en").message("something_went_wrong")]
    monkeypatch.setattr(app.engine, "dispatch", real)
    assert texts(await app.engine.handle(ME, Text("I always let people down"), seq=4))
    assert (await conversation(app))[2] == [1, 2, 3, 4]


async def test_a_redelivery_after_a_restart_is_skipped(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path)
    async with open_app(settings, clock=clock) as app:
        await reach_the_thought(app)
        await app.engine.handle(ME, Text("I always let people down"), seq=4)
        before = await conversation(app)
    async with open_app(settings, clock=clock) as app:
        assert await app.engine.handle(ME, Text("I always let people down"), seq=4) == []
        assert await conversation(app) == before
        assert len(await _entries(app)) == 1


async def _entries(app: App) -> list[dict[str, Any]]:
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(
            session, channel=ME.channel, external_id=ME.external_id
        )
        assert user.id is not None
        found = await repo.list_entries(session, user_id=user.id)
        return [repo.entry_answers(e, cipher=app.db.cipher) for e in found]
