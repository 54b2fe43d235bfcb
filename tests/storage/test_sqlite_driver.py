"""The one-trip aiosqlite cursor (storage/sqlite_driver.py) behaves like the stock one;
statements run on the loop unless they would wait for a lock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.app import App
from bot.engine.events import Text, UserRef
from bot.engine.turn import Turn
from storage import repo, sqlite_driver
from storage.models import Entry, Meta


async def test_sqlite_uses_one_thread_trip_per_statement(app: App) -> None:
    """A SQLAlchemy upgrade that drops the internals it needs would fall back silently."""
    assert type(app.db.engine.dialect.dbapi).__name__ == "OneTripDBAPI"
    assert app.db.engine.pool._reset_on_return.name == "reset_none"


async def test_rows_rowcounts_and_many(app: App) -> None:
    meta = Meta.__table__  # type: ignore[attr-defined]
    async with app.db.engine.begin() as conn:
        await conn.execute(insert(meta), [{"key": f"k{i}", "value": str(i)} for i in range(5)])
        rows = (await conn.execute(text("SELECT key FROM meta WHERE key LIKE 'k_'"))).all()
        assert sorted(r.key for r in rows) == [f"k{i}" for i in range(5)]
        changed = await conn.execute(text("UPDATE meta SET value = 'x' WHERE key LIKE 'k_'"))
        assert changed.rowcount == 5
        none = await conn.execute(text("SELECT key FROM meta WHERE key = 'nope'"))
        assert none.first() is None
    async with app.db.engine.connect() as conn:  # rolled back on close, no pool reset needed
        await conn.execute(text("DELETE FROM meta WHERE key LIKE 'k_'"))
    async with app.db.engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM meta WHERE key LIKE 'k_'"))
        assert count == 5


async def test_a_statement_waiting_for_a_lock_waits_off_the_loop(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statements try the loop with busy timeout 0; one that would wait for another
    connection's lock is run again on aiosqlite's thread, and the loop keeps running."""
    meta = Meta.__table__  # type: ignore[attr-defined]
    trips: list[str] = []
    patient = sqlite_driver._patiently

    def spy(fn: Any, conn: Any, operation: str, parameters: Any) -> Any:
        trips.append(operation.split()[0])
        return patient(fn, conn, operation, parameters)

    monkeypatch.setattr(sqlite_driver, "_patiently", spy)
    async with app.db.engine.begin() as conn:
        await conn.execute(insert(meta).values(key="lock", value="0"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def second_writer() -> None:
        async with app.db.engine.begin() as conn:
            await conn.execute(text("UPDATE meta SET value = value || 'b' WHERE key = 'lock'"))

    ticking = asyncio.create_task(ticker())
    try:
        async with app.db.engine.connect() as first:
            await first.execute(text("UPDATE meta SET value = value || 'a' WHERE key = 'lock'"))
            waiting = asyncio.create_task(second_writer())  # blocked by `first`'s write lock
            await asyncio.sleep(0.1)
            assert not waiting.done()
            before = ticks
            await asyncio.sleep(0.05)
            assert ticks > before  # the loop is not blocked by the waiting statement
            await first.commit()
        await waiting
    finally:
        ticking.cancel()
    assert trips == ["UPDATE"]  # only the statement that met the lock left the loop
    async with app.db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT value FROM meta WHERE key = 'lock'")) == "0ab"


async def test_errors_other_than_busy_are_raised_as_usual(app: App) -> None:
    meta = Meta.__table__  # type: ignore[attr-defined]
    async with app.db.engine.begin() as conn:
        await conn.execute(insert(meta).values(key="dup", value="1"))
    with pytest.raises(IntegrityError):
        async with app.db.engine.begin() as conn:
            await conn.execute(insert(meta).values(key="dup", value="2"))


async def test_checkpoints_run_on_the_thread_every_so_many_commits(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No automatic checkpoint (it would sync the disk inside a commit on the loop)."""
    checkpoints: list[None] = []
    real = sqlite_driver._commit_and_checkpoint

    def spy(conn: Any) -> None:
        checkpoints.append(None)
        real(conn)

    monkeypatch.setattr(sqlite_driver, "_commit_and_checkpoint", spy)
    monkeypatch.setattr(sqlite_driver, "CHECKPOINT_EVERY", 4)
    meta = Meta.__table__  # type: ignore[attr-defined]
    async with app.db.engine.connect() as conn:
        assert await conn.scalar(text("PRAGMA wal_autocheckpoint")) == 0
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 0
        for i in range(8):
            await conn.execute(insert(meta).values(key=f"c{i}", value=str(i)))
            await conn.commit()
    assert len(checkpoints) == 2  # whatever the pooled connection's count was before
    async with app.db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM meta WHERE key LIKE 'c_'")) == 8


async def test_concurrent_steps_queue_in_the_process_not_on_sqlites_lock(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps of many people at once: one SQLite writer at a time (Database.step), so none
    meets SQLite's lock and waits on a thread; a failing step leaves the others alone."""
    trips: list[str] = []
    patient = sqlite_driver._patiently

    def spy(fn: Any, conn: Any, operation: str, parameters: Any) -> Any:
        trips.append(operation.split()[0])
        return patient(fn, conn, operation, parameters)

    monkeypatch.setattr(sqlite_driver, "_patiently", spy)

    async def boom(turn: Turn, args: str) -> None:
        await turn.start_dialog("reframe")  # writes an entry, then fails
        raise RuntimeError("boom")

    app.engine.commands["boom"] = boom
    people = [UserRef("console", f"p{i}") for i in range(20)]

    async def person(ref: UserRef, index: int) -> None:
        await app.engine.handle(ref, Text("/start"))
        await app.engine.handle(ref, Text("1"))
        await app.engine.handle(ref, Text("/boom" if index % 4 == 0 else "/reframe"))
        await app.engine.handle(ref, Text("I always let people down"))

    await asyncio.gather(*(person(ref, i) for i, ref in enumerate(people)))
    assert trips == []
    async with app.db.session() as session:
        entries = (await session.execute(select(Entry))).scalars().all()
    assert len(entries) == 15  # the five failed /boom steps left nothing behind
    async with app.db.session() as session:
        for index, ref in enumerate(people):
            user, _, state = await repo.load_person(
                session,
                channel=ref.channel,
                external_id=ref.external_id,
                locale=None,
                cipher=app.db.cipher,
                lock=False,
            )
            mine = [e for e in entries if e.user_id == user.id]
            if index % 4 == 0:  # the failed step: still where consent left them
                assert mine == [] and [f["dialog"] for f in state["stack"]] == ["choose_country"]
            else:
                (frame,) = state["stack"]
                assert len(mine) == 1 and frame["entry_id"] == mine[0].id
                assert frame["answers"] == {"thought": "I always let people down"}
