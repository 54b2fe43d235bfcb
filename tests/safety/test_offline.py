"""Crisis help when the database cannot be written: the helplines are in memory.

The database is made unwritable the way it happens in production: another process holds
SQLite's write lock (a backup, a migration, a stuck worker), so every step fails after its
retries. kindbot's own wait for the lock is shortened for the test.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.app import App, open_app
from bot.engine.events import Command, Message, Text, UserRef
from storage import sqlite as storage_sqlite
from tests.conftest import Clock, fresh_pg_schema, make_settings

ME = UserRef("console", "offline", language_tag="en")


def texts(outputs: list[object]) -> str:
    return "\n".join(o.text for o in outputs if isinstance(o, Message))


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements give up on another connection's lock after 20 ms, not 10 s (set before the
    `app` fixture connects: autouse fixtures come first)."""
    monkeypatch.setattr(storage_sqlite, "BUSY_TIMEOUT_MS", 20)


@pytest.fixture
def locked(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Another connection holds the database's write lock while the test runs."""
    path = app.settings.data_dir / "kindbot.db"
    assert path.exists()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def consented(app: App) -> None:
    await app.engine.handle(ME, Text("/start"))
    await app.engine.handle(ME, Text("1"))  # "Yes, that's okay"
    await app.engine.handle(ME, Text("/country GB"))


async def test_a_crisis_message_gets_the_helplines_when_the_database_is_down(
    app: App, locked: None
) -> None:
    out = texts(await app.engine.handle(ME, Text("I want to end my life tonight")))
    assert "couldn't save your last message" in out
    assert "call" in out and "/sos" in out
    assert "Nothing you wrote is lost" not in out


async def test_their_country_is_remembered_from_before_the_outage(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await consented(app)
    other = sqlite3.connect(app.settings.data_dir / "kindbot.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        out = texts(await app.engine.handle(ME, Text("quiero morir, ya no puedo más")))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "116 123" in out  # Samaritans, the United Kingdom's line
    assert "999" in out


@pytest.mark.parametrize("event", [Text("/sos"), Command("sos"), Text("/help")])
async def test_sos_and_help_work_without_the_database(
    app: App, locked: None, event: Text | Command
) -> None:
    out = texts(await app.engine.handle(ME, event))
    assert "couldn't save your last message" in out
    assert "emergency" in out.lower()
    assert "112" in out  # no country known: the emergency numbers by region


async def test_an_ordinary_message_is_told_plainly_it_was_not_saved(app: App, locked: None) -> None:
    out = texts(await app.engine.handle(ME, Text("I forgot my mum's birthday again")))
    assert "couldn't save your last message" in out
    assert "helpline" not in out.lower() and "emergency" not in out.lower()


async def test_after_the_outage_the_conversation_carries_on(app: App) -> None:
    await consented(app)
    out = texts(await app.engine.handle(ME, Text("/reframe")))
    assert out
    out = texts(await app.engine.handle(ME, Text("I'm such an idiot for missing the bus")))
    assert "couldn't save" not in out


class Proxy:
    """A TCP hop between kindbot and PostgreSQL that the test can cut, like a network outage:
    open connections drop and new ones are refused until it is restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links.update({writer, up_writer})

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@pytest.mark.postgres
async def test_postgres_unreachable_still_gets_crisis_help(tmp_path: Path, clock: Clock) -> None:
    async with fresh_pg_schema() as (url, schema):
        real = make_url(url)
        proxy = Proxy(real.host or "127.0.0.1", real.port or 5432)
        await proxy.start()
        via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        settings = make_settings(tmp_path, database_url=via_proxy)
        async with open_app(settings, clock=clock, schema=schema) as app:
            await consented(app)
            await proxy.cut()  # PostgreSQL is now unreachable
            out = texts(await app.engine.handle(ME, Text("I have a plan and the rope")))
            assert "couldn't save your last message" in out
            assert "116 123" in out and "999" in out
            out = texts(await app.engine.handle(ME, Text("/sos")))
            assert "Samaritans" in out and "couldn't save" in out
            out = texts(await app.engine.handle(ME, Text("/help")))
            assert "Samaritans" in out
