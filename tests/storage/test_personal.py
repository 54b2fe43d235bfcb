"""storage.personal's look-ups on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from bot.app import App
from storage import repo
from storage.personal import is_person


async def test_is_person_needs_the_id_the_channel_and_the_external_id(any_app: App) -> None:
    """Work done after a step (a chart, an export) goes only to the person it was made for."""
    async with any_app.db.session() as session:
        alice, _ = await repo.get_or_create_user(session, channel="telegram", external_id="1")
        bob, _ = await repo.get_or_create_user(session, channel="telegram", external_id="2")
        await session.commit()
        assert alice.id is not None and bob.id is not None
        same = {"user_id": alice.id, "channel": "telegram", "external_id": "1"}
        assert await is_person(session, **same)
        assert not await is_person(session, **(same | {"user_id": bob.id}))
        assert not await is_person(session, **(same | {"channel": "console"}))
        assert not await is_person(session, **(same | {"external_id": "2"}))
        assert not await is_person(session, **(same | {"user_id": bob.id + 1}))
