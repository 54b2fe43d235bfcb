"""`kindbot migrate` migrates; everything else creates a missing schema or checks the one
there is current, says so in one line when it is not, and never imports Alembic for that."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.cli import main
from storage import schema
from storage.crypto import Cipher, new_key
from storage.db import Database
from tests.cli_env import isolate
from tests.conftest import fresh_pg_schema
from tests.test_failures import refused


def test_head_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(schema.alembic_config()).get_heads()
    assert heads == [schema.HEAD]


def at_revision(path: Path, revision: str) -> None:
    """A SQLite database migrated up to `revision` only (an older kindbot's)."""
    from alembic import command

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), revision)
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ENCRYPTION_KEY", new_key())
    data.mkdir(mode=0o700)
    return data


def test_an_older_schema_is_named_and_migrate_brings_it_up(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at_revision(env / "kindbot.db", "0004")
    line = refused(capsys, "chat")
    assert "revision 0004" in line and schema.HEAD in line and "kindbot migrate" in line
    assert main(["migrate"]) == 0
    assert f"from revision 0004 to {schema.HEAD}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"is current (revision {schema.HEAD})" in capsys.readouterr().out


def test_migrate_creates_a_new_database(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert f"created the database schema (revision {schema.HEAD})" in capsys.readouterr().out


def test_a_newer_schema_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at_revision(env / "kindbot.db", schema.HEAD)
    engine = create_engine(f"sqlite:///{env / 'kindbot.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    line = refused(capsys, "chat")
    assert "0099" in line and "newer kindbot" in line
    assert main(["migrate"]) == 2  # Alembic does not know it either: nothing is changed
    capsys.readouterr()


def test_a_database_of_something_else_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(f"sqlite:///{env / 'kindbot.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert "no kindbot schema revision" in refused(capsys, "chat")


def test_a_current_database_opens_without_alembic(tmp_path: Path) -> None:
    """Alembic (11.5 MiB) is only imported when a schema is created or migrated."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    key = new_key()
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from storage.crypto import Cipher
        from storage.db import Database

        async def main() -> None:
            db = await Database.open({url!r}, Cipher.from_string({key!r}), upgrade="if-new")
            await db.close()

        asyncio.run(main())
        print("alembic" in sys.modules)
        """
    )
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert first.stdout.strip() == "True", first.stderr  # created: Alembic ran
    assert second.stdout.strip() == "False", second.stderr


async def test_workers_starting_together_on_a_new_postgres_database_create_it_once() -> None:
    async with fresh_pg_schema() as (url, name):
        cipher = Cipher.from_string(new_key())
        opened = await asyncio.gather(
            *(Database.open(url, cipher, schema=name, upgrade="if-new") for _ in range(4))
        )
        try:
            for db in opened:
                assert await schema.revision(db.engine) == schema.HEAD
        finally:
            for db in opened:
                await db.close()


async def test_postgres_keeps_the_pool_size_it_is_given(tmp_path: Path) -> None:
    """A busy worker reuses its connections instead of opening one per step (SQLAlchemy's
    default keeps 5 and opens and closes the rest on every use)."""
    from bot.app import open_app
    from tests.conftest import make_settings

    async with fresh_pg_schema() as (url, name):
        settings = make_settings(tmp_path, database_url=url, database_pool_size=7)
        async with open_app(settings, schema=name) as app:
            assert app.db.engine.pool.size() == 7  # type: ignore[attr-defined]
