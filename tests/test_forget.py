"""/forget and `kindbot forget`: nothing about the person is left in any table."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.app import App, open_app
from storage.personal import encrypted_columns, find_users, person_columns
from tests.chat import Person
from tests.conftest import Clock, make_settings
from tests.test_export import ALICE, alice_and_bob, run_cli, stored


async def rows_pointing_at(app: App, user_id: int) -> dict[str, int]:
    """Rows referencing `user_id` in every table of the metadata (users: its own row)."""
    counts: dict[str, int] = {}
    async with app.db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = person_columns(table)
            if table.name == "users":
                columns = [table.c.id]
            for column in columns:
                query = select(func.count()).select_from(table).where(column == user_id)
                counts[f"{table.name}.{column.name}"] = await session.scalar(query) or 0
    return counts


async def all_decrypted_text(app: App) -> str:
    """Every encrypted value left in the database, decrypted, joined."""
    texts = []
    async with app.db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            for column in encrypted_columns(table):
                for value in (await session.execute(select(column))).scalars():
                    if value is not None:
                        texts.append(app.db.cipher.decrypt(value))
    return "\n".join(texts)


async def test_forget_deletes_every_row_and_starts_fresh(any_app: App) -> None:
    alice, _ = await alice_and_bob(any_app)
    alice_id, _, _ = await stored(any_app, "alice")
    bob_id, _, _ = await stored(any_app, "bob")
    before = await rows_pointing_at(any_app, alice_id)
    assert before["entries.user_id"] == 2
    assert before["conversations.user_id"] == 1
    bob_before = await rows_pointing_at(any_app, bob_id)

    await alice.send("/forget")
    assert "cannot be undone" in alice.text
    assert alice.labels == ["Yes, delete everything", "No, keep it"]
    await alice.press("Yes, delete everything")
    assert "Everything I had stored about you is deleted" in alice.text

    after = await rows_pointing_at(any_app, alice_id)
    assert after, "no table was checked"
    assert all(n == 0 for n in after.values()), after
    assert await rows_pointing_at(any_app, bob_id) == bob_before  # nobody else touched
    left = await all_decrypted_text(any_app)
    for sentence in ALICE.values():
        assert sentence not in left
    assert "Bob thinks he is useless" in left

    await alice.send("Hello again")
    assert "Hi, I'm kindbot" in alice.text  # a new person: onboarding, consent asked again
    assert alice.labels == ["Yes, that's okay", "Not now"]
    await alice.press("Yes, that's okay")
    await alice.send("/history")
    assert "nothing here yet" in alice.text


async def test_keeping_everything_deletes_nothing(app: App) -> None:
    alice, _ = await alice_and_bob(app)
    alice_id, entries, _ = await stored(app, "alice")
    await alice.send("/forget")
    await alice.press("No, keep it")
    assert "nothing was deleted" in alice.text
    assert (await stored(app, "alice"))[:2] == (alice_id, entries)


async def test_forget_during_a_reframe_leaves_no_paused_frame(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/reframe")
    await alice.send("I embarrassed myself at the quarterly review")
    await alice.send("/forget")
    await alice.press("Yes, delete everything")
    alice_again = Person(app)
    await alice_again.send("/start")
    await alice_again.press("Yes, that's okay")
    await alice_again.send("/reframe")
    assert "unfinished" not in alice_again.text


def test_cli_forget(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path)
    key = settings.encryption_key
    assert key

    async def fill() -> int:
        async with open_app(settings, clock=clock) as app:
            await alice_and_bob(app)
            return (await stored(app, "alice"))[0]

    alice_id = asyncio.run(fill())
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))  # not a terminal
    assert run_cli(monkeypatch, tmp_path, key, "forget", "--user", "alice") == 1
    assert "refusing without --yes" in capsys.readouterr().err
    assert run_cli(monkeypatch, tmp_path, key, "forget", "--user", "alice", "--yes") == 0
    assert "deleted 4 row(s)" in capsys.readouterr().out  # user, conversation, two entries

    async def check() -> dict[str, int]:
        async with open_app(settings, clock=clock) as app:
            return await rows_pointing_at(app, alice_id)

    assert all(n == 0 for n in asyncio.run(check()).values())


async def test_forget_works_before_consent(app: App) -> None:
    newcomer = Person(app, "newcomer")
    await newcomer.send("/start")
    assert newcomer.labels == ["Yes, that's okay", "Not now"]
    await newcomer.send("/forget")
    await newcomer.press("No, keep it")
    assert newcomer.labels == ["Yes, that's okay", "Not now"]  # back to the consent question
    await newcomer.send("/forget")
    await newcomer.press("Yes, delete everything")
    async with app.db.session() as session:
        assert not await find_users(session, external_id="newcomer")
