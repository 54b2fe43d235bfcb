"""Encryption at rest: raw files never show a person's words; rotation; a wrong key refused."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.app import App, open_app
from bot.config import Settings
from storage.crypto import Cipher, WrongKeyError, new_key
from storage.db import KEY_CHECK, KEY_CHECK_PLAINTEXT, Database
from storage.models import Meta
from storage.personal import encrypted_columns
from storage.rotation import rotate_database
from tests.chat import Person
from tests.conftest import Clock, make_settings
from tests.test_export import ALICE, alice_and_bob, run_cli, stored

SECRET = "My cello teacher Ingeborg says my walrus-like bowing is sloppy"


def raw_files(settings: Settings) -> dict[str, bytes]:
    base = settings.data_dir / "kindbot.db"
    files = [base, base.with_name("kindbot.db-wal"), base.with_name("kindbot.db-shm")]
    return {p.name: p.read_bytes() for p in files if p.exists()}


async def test_raw_sqlite_files_never_show_their_words(settings: Settings, clock: Clock) -> None:
    async with open_app(settings, clock=clock) as app:
        alice = Person(app)
        await alice.consent()
        await alice.reframe(SECRET, feeling="mortified", kind="Ingeborg's walrus is still learning")
        await alice.send("/reframe")
        await alice.send(SECRET + " again")  # kept in the conversation state only
        while_open = raw_files(settings)
        assert "kindbot.db-wal" in while_open  # WAL mode: recent writes live here
    after_close = raw_files(settings)
    for files in (while_open, after_close):
        for name, data in files.items():
            for needle in (SECRET, "Ingeborg", "walrus", "mortified"):
                for encoded in (needle.encode("utf-8"), needle.encode("utf-16-le")):
                    assert encoded not in data, f"{needle!r} found in {name}"


async def test_wrong_key_is_refused_at_start(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path)
    async with open_app(settings, clock=clock) as app:
        await Person(app).consent()
    wrong = make_settings(tmp_path, encryption_key=new_key())
    with pytest.raises(WrongKeyError, match="does not match the key this database"):
        async with open_app(wrong, clock=clock):
            pass
    with pytest.raises(WrongKeyError, match="not a valid key"):
        async with open_app(make_settings(tmp_path, encryption_key="nope"), clock=clock):
            pass


def test_cli_wrong_key_exits_with_a_clear_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path)

    async def fill() -> None:
        async with open_app(settings, clock=clock) as app:
            await Person(app).consent()

    asyncio.run(fill())
    assert run_cli(monkeypatch, tmp_path, new_key(), "export", "--user", "alice") == 2
    assert "does not match the key this database was written with" in capsys.readouterr().err


async def readable_everything(db: Database) -> int:
    """Decrypt every encrypted value in every table; the count of values read."""
    count = 0
    async with db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            for column in encrypted_columns(table):
                for value in (await session.execute(select(column))).scalars():
                    if value is not None:
                        db.cipher.decrypt(value)
                        count += 1
        check = await session.get(Meta, KEY_CHECK)
        assert check is not None
        assert db.cipher.decrypt(check.value) == KEY_CHECK_PLAINTEXT
    return count


async def test_rotation_keeps_every_entry_readable(any_app: App) -> None:
    await alice_and_bob(any_app)
    _, before, state = await stored(any_app, "alice")
    old = any_app.settings.encryption_key
    assert old
    new = new_key()
    report = await rotate_database(any_app.db, old=[old], new=new, batch=2)
    assert report.tables == {"conversations": 2, "entries": 3, "outbox": 0, "safety_plans": 0}
    assert report.values == 5

    any_app.db.cipher = Cipher([new])  # the new key alone
    assert await readable_everything(any_app.db) == 5
    _, after, state_after = await stored(any_app, "alice")
    assert (after, state_after) == (before, state)
    any_app.db.cipher = Cipher([old])
    with pytest.raises(WrongKeyError):
        await any_app.db.check_key()


async def test_rotation_with_a_wrong_old_key_changes_nothing(app: App) -> None:
    await alice_and_bob(app)
    with pytest.raises(WrongKeyError):
        await rotate_database(app.db, old=[new_key()], new=new_key())
    assert await readable_everything(app.db) == 5


def test_cli_rotation_rewrites_the_key_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)

    async def fill() -> None:
        async with open_app(settings, clock=clock) as app:
            await alice_and_bob(app)

    asyncio.run(fill())
    key_file = settings.key_file
    old = key_file.read_text().strip()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    from bot.cli import main

    assert main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert "re-encrypted 5 value(s) in 4 table(s)" in out
    assert "now holds the new key" in out
    new = key_file.read_text().strip()
    assert new != old
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.with_name("kindbot.key.new").exists()
    Cipher([new])  # a well-formed key

    async def check() -> int:
        async with open_app(settings, clock=clock) as app:  # reads the rewritten key file
            return await readable_everything(app.db)

    assert asyncio.run(check()) == 5
    with pytest.raises(WrongKeyError):
        asyncio.run(check_with(make_settings(tmp_path, encryption_key=old), clock))


async def check_with(settings: Settings, clock: Clock) -> None:
    async with open_app(settings, clock=clock):
        pass


def test_cli_rotation_with_encryption_key_needs_the_new_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path)
    old = settings.encryption_key
    assert old

    async def fill() -> None:
        async with open_app(settings, clock=clock) as app:
            await alice_and_bob(app)

    asyncio.run(fill())
    assert run_cli(monkeypatch, tmp_path, old, "rotate-key") == 2
    assert "give the new key with --new-key" in capsys.readouterr().err
    new = "-" + new_key()[1:]  # one generated key in 64 starts with "-"
    assert run_cli(monkeypatch, tmp_path, old, "rotate-key", "--new-key", new) == 0
    assert "set ENCRYPTION_KEY to the new key" in capsys.readouterr().out
    assert not settings.key_file.exists()
    with pytest.raises(WrongKeyError):
        asyncio.run(check_with(settings, clock))

    async def read_all() -> str:
        async with open_app(make_settings(tmp_path, encryption_key=new), clock=clock) as app:
            await readable_everything(app.db)
            return str((await stored(app, "alice"))[1])

    assert ALICE["thought"] in asyncio.run(read_all())


def test_keygen_prints_a_fresh_key(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["keygen"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out.strip()
    assert first != second
    Cipher([first])


def test_cli_rotation_stops_at_a_leftover_new_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, encryption_key=None)
    monkeypatch.delenv("ENCRYPTION_KEY", raising=False)
    asyncio.run(check_with(settings, clock))  # creates the database and the key file
    leftover = settings.key_file.with_name("kindbot.key.new")
    leftover.write_text(new_key())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    from bot.cli import main

    assert main(["rotate-key"]) == 2
    assert "an earlier rotation was interrupted" in capsys.readouterr().err
    asyncio.run(check_with(settings, clock))  # the key file still reads the database
