"""Storage on SQLite and (when configured) PostgreSQL: same code, same behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from bot.app import App, open_app
from bot.engine.events import Text, UserRef
from storage import repo
from storage.crypto import Cipher, WrongKeyError, new_key
from storage.db import Database
from tests.conftest import Clock, make_settings


async def test_migrations_create_every_table(any_app: App) -> None:
    async with any_app.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"users", "conversations", "entries", "meta", "alembic_version"} <= tables
    await any_app.db.migrate()  # idempotent


async def test_user_creation_is_idempotent(any_app: App) -> None:
    async with any_app.db.session() as session:
        first, created = await repo.get_or_create_user(session, channel="t", external_id="1")
        again, created_again = await repo.get_or_create_user(session, channel="t", external_id="1")
        await session.commit()
    assert created and not created_again and first.id == again.id


async def test_conversation_and_entries_round_trip_encrypted(any_app: App) -> None:
    ref = UserRef("console", "round")
    engine = any_app.engine
    for line in ["/start", "1", "2", "1", "My thought is distinctive-pelican-42", "sad", "4"]:
        await engine.handle(ref, Text(line))
    async with any_app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="round")
        assert user.id is not None and user.consented_at is not None
        row, state = await repo.load_conversation(
            session, user_id=user.id, cipher=any_app.db.cipher, lock=True
        )
        assert state["stack"][-1]["state"] == "pain"
        assert state["stack"][-1]["answers"]["rating_before"] == 4
        assert "pelican" not in row.state_enc
        raw = (await session.execute(text("SELECT state_enc FROM conversations"))).scalar_one()
        assert "pelican" not in raw
        await session.commit()
    await engine.handle(ref, Text("stop"))
    async with any_app.db.session() as session:
        (entry,) = await repo.list_entries(session, user_id=user.id)
        assert entry.status == "stopped" and entry.scores == {"rating_before": 4}
        assert "pelican" not in entry.answers_enc
        answers = repo.entry_answers(entry, cipher=any_app.db.cipher)
        assert answers["thought"] == "My thought is distinctive-pelican-42"


async def test_one_persons_concurrent_events_apply_in_order(any_app: App) -> None:
    ref = UserRef("console", "rapid")
    await any_app.engine.handle(ref, Text("/start"))
    await any_app.engine.handle(ref, Text("1"))
    await any_app.engine.handle(ref, Text("2"))  # skip the country question
    await any_app.engine.handle(ref, Text("1"))
    answers = ["thought one", "feeling two", "5"]
    await asyncio.gather(*(any_app.engine.handle(ref, Text(a)) for a in answers))
    async with any_app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="rapid")
        assert user.id is not None
        _, state = await repo.load_conversation(
            session, user_id=user.id, cipher=any_app.db.cipher, lock=False
        )
    frame = state["stack"][-1]
    assert frame["answers"] == {
        "thought": "thought one",
        "feeling": "feeling two",
        "rating_before": 5,
    }


async def test_many_people_at_once(any_app: App) -> None:
    async def person(i: int) -> None:
        ref = UserRef("console", f"p{i}")
        for line in ["/start", "1", "2", "1", f"thought {i}"]:
            await any_app.engine.handle(ref, Text(line))

    await asyncio.gather(*(person(i) for i in range(20)))
    async with any_app.db.session() as session:
        count = (await session.execute(text("SELECT count(*) FROM entries"))).scalar_one()
    assert count == 20


async def test_sqlite_file_is_created_in_wal_mode(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path / "fresh")
    async with open_app(settings, clock=clock) as app:
        async with app.db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
    assert (tmp_path / "fresh" / "data" / "kindbot.db").exists()


async def test_key_file_is_generated_private(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    async with open_app(settings, clock=clock):
        pass
    key_file = tmp_path / "data" / "kindbot.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with open_app(settings, clock=clock):
        pass  # the same key is read back


async def test_wrong_key_is_refused(any_app: App) -> None:
    url = any_app.db.engine.url.render_as_string(hide_password=False)
    schema = None
    if any_app.db.is_postgres:
        async with any_app.db.engine.connect() as conn:
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
    with pytest.raises(WrongKeyError, match="does not match"):
        await Database.open(url, Cipher([new_key()]), schema=schema)


def test_malformed_key_is_refused() -> None:
    with pytest.raises(WrongKeyError, match="not a valid key"):
        Cipher(["not-a-key"])


async def test_going_back_to_an_older_key_alone_is_refused(tmp_path: Path, clock: Clock) -> None:
    old, new = new_key(), new_key()
    async with open_app(make_settings(tmp_path, encryption_key=old), clock=clock):
        pass
    # while rotating, both keys are given (newest first) and new rows use the new key
    async with open_app(make_settings(tmp_path, encryption_key=f"{new},{old}"), clock=clock) as app:
        await app.engine.handle(UserRef("console", "k"), Text("/start"))
    with pytest.raises(WrongKeyError, match="does not match"):
        async with open_app(make_settings(tmp_path, encryption_key=old), clock=clock):
            pass


async def test_database_file_is_private(tmp_path: Path, clock: Clock) -> None:
    async with open_app(make_settings(tmp_path), clock=clock):
        pass
    assert (tmp_path / "data" / "kindbot.db").stat().st_mode & 0o077 == 0
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
