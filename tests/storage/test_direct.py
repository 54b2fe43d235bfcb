"""The step's direct statements on SQLite (storage/direct.py) read and write exactly what
SQLAlchemy would, in the step's transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from bot.app import App
from bot.engine.events import Text, UserRef
from bot.engine.turn import Turn
from storage import repo

ME = UserRef("console", "direct")


async def consented(app: App) -> None:
    await app.engine.handle(ME, Text("/start"))
    await app.engine.handle(ME, Text("1"))


async def through_sqlalchemy(app: App) -> tuple[dict[str, Any], dict[str, Any]]:
    """The person's columns as the SQLAlchemy path reads them."""
    async with app.db.engine.connect() as conn:
        person = {"channel": ME.channel, "external_id": ME.external_id}
        row = (await conn.execute(repo.person_core_query(lock=False), person)).one()
    values = row._asdict()
    keys = list(values)
    n = len(repo.USER_COLUMNS)
    return {k: values[k] for k in keys[:n]}, {k: values[k] for k in keys[n:]}


async def test_steps_on_sqlite_use_the_direct_statements(app: App) -> None:
    async with app.db.step() as unit:
        assert unit.direct is not None  # a SQLAlchemy upgrade must not turn it off silently


async def test_the_direct_load_reads_what_sqlalchemy_reads(app: App) -> None:
    await consented(app)
    async with app.db.step() as unit:  # counters (JSON), consent and a blocked time (dates)
        await unit.conn.execute(
            update(repo.USERS)
            .where(repo.USERS.c.external_id == ME.external_id)
            .values(country="NZ", blocked_at=datetime(2026, 5, 1, 12, 30, 15, 123456))
        )
        await unit.commit()
    query = repo.person_core_query(lock=False)
    async with app.db.step() as unit:
        assert unit.direct is not None
        (found,) = await unit.run(query, {"channel": ME.channel, "external_id": ME.external_id})
        assert await unit.run(query, {"channel": ME.channel, "external_id": "nobody"}) == []
    user, conversation = await through_sqlalchemy(app)
    assert found == (*user.values(), *conversation.values())
    assert isinstance(user["consented_at"], datetime) and user["counters"]["onboarding"] == 1
    assert user["blocked_at"] == datetime(2026, 5, 1, 12, 30, 15, 123456)
    assert isinstance(conversation["seen_seqs"], list) and conversation["step"] > 0


async def test_the_direct_save_writes_what_sqlalchemy_writes(app: App) -> None:
    await consented(app)
    _, before = await through_sqlalchemy(app)
    at = datetime(2026, 6, 2, 8, 0, 1, 5, tzinfo=UTC)
    values = {
        "uid": before["user_id"],
        "b_state_enc": before["state_enc"],
        "b_step": before["step"] + 5,
        "b_seen_seqs": [7, 8, 9],
        "b_updated_at": at,
    }
    async with app.db.step() as unit:
        assert unit.direct is not None
        await unit.run(repo.conversation_update(), values)
        await unit.commit()
    _, direct = await through_sqlalchemy(app)
    async with app.db.engine.begin() as conn:
        stored = await conn.scalar(text("SELECT updated_at FROM conversations"))
        await conn.execute(repo.conversation_update(), values)  # the SQLAlchemy path
        assert await conn.scalar(text("SELECT updated_at FROM conversations")) == stored
    assert direct == (await through_sqlalchemy(app))[1]
    assert (direct["step"], direct["seen_seqs"]) == (before["step"] + 5, [7, 8, 9])


async def test_a_step_that_fails_after_a_direct_write_leaves_nothing(app: App) -> None:
    await consented(app)
    _, before = await through_sqlalchemy(app)

    async def write_then_fail() -> None:
        async with app.db.step() as unit:
            assert unit.direct is not None
            garbage = {"b_state_enc": "garbage", "b_step": 999, "b_seen_seqs": []}
            await unit.run(
                repo.conversation_update(),
                {"uid": before["user_id"], "b_updated_at": datetime.now(UTC), **garbage},
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert (await through_sqlalchemy(app))[1] == before
    await app.engine.handle(ME, Text("/reframe"))  # the shared connection carries on clean
    after = (await through_sqlalchemy(app))[1]
    assert before["step"] < after["step"] < 999
    assert "reframe" in app.db.cipher.decrypt(after["state_enc"])


async def test_session_writes_and_direct_writes_commit_together(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/reframe writes an entry and the user's counters through SQLAlchemy, then the
    conversation directly: all or nothing."""
    await consented(app)

    async def fails_late(turn: Turn, args: str) -> None:
        await turn.start_dialog("reframe")
        turn.user.country = "IE"

    app.engine.commands["late"] = fails_late
    real = repo.save_conversation

    async def save_then_fail(*args: Any, **kwargs: Any) -> None:
        await real(*args, **kwargs)
        raise RuntimeError("after the direct UPDATE")

    user, conversation = await through_sqlalchemy(app)
    async with app.db.engine.connect() as conn:
        entries = await conn.scalar(text("SELECT count(*) FROM entries"))
    with monkeypatch.context() as patch:
        patch.setattr(repo, "save_conversation", save_then_fail)
        await app.engine.handle(ME, Text("/late"))
    assert await through_sqlalchemy(app) == (user, conversation)
    async with app.db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM entries")) == entries
    await app.engine.handle(ME, Text("/late"))
    after_user, after = await through_sqlalchemy(app)
    assert after_user["country"] == "IE" and after["step"] > conversation["step"]
    async with app.db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM entries")) == entries + 1


async def test_a_direct_statement_waits_off_the_loop_for_another_writer(app: App) -> None:
    """Another connection (a reminder, another process) holds SQLite's write lock: the
    step's UPDATE waits on aiosqlite's thread, the loop runs on, and nothing is lost."""
    await consented(app)
    await app.engine.handle(ME, Text("/reframe"))
    async with app.db.engine.connect() as other:
        await other.execute(text("UPDATE users SET country = 'FR'"))  # holds the write lock
        step = asyncio.create_task(app.engine.handle(ME, Text("I never get anything right")))
        await asyncio.sleep(0.1)
        assert not step.done()
        await other.commit()
    assert await step
    user, conversation = await through_sqlalchemy(app)
    assert user["country"] == "FR"
    state = app.db.cipher.decrypt(conversation["state_enc"])
    assert "I never get anything right" in state


async def test_entries_written_directly_read_back_through_the_orm(app: App) -> None:
    await consented(app)
    user, _ = await through_sqlalchemy(app)
    started = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    async with app.db.step() as unit:
        assert unit.direct is not None
        kept = await repo.create_entry(
            unit,
            user_id=user["id"],
            kind="reframe",
            dialog="reframe",
            cipher=app.db.cipher,
            started_at=started,
        )
        gone = await repo.create_entry(
            unit, user_id=user["id"], kind="reframe", dialog="reframe", cipher=app.db.cipher
        )
        answers = {"thought": "I’m never enough 🌧", "rating_before": 8, "sure": True}
        await repo.record_entry(
            unit,
            user_id=user["id"],
            entry_id=kept,
            answers=answers,
            status="finished",
            cipher=app.db.cipher,
            finished_at=started,
        )
        await repo.delete_entry(unit, user_id=user["id"], entry_id=gone)
        # someone else's step cannot touch the entry, whatever id it names
        stranger = user["id"] + 1000
        await repo.delete_entry(unit, user_id=stranger, entry_id=kept)
        await repo.record_entry(
            unit,
            user_id=stranger,
            entry_id=kept,
            answers={},
            status="stopped",
            cipher=app.db.cipher,
        )
        await unit.commit()
    async with app.db.session() as session:
        (entry,) = await repo.list_entries(session, user_id=user["id"])
    assert entry.id == kept and entry.status == "finished" and entry.scores == {"rating_before": 8}
    assert entry.started_at.replace(tzinfo=UTC) == started
    assert repo.entry_answers(entry, cipher=app.db.cipher) == answers


def committed_to_the_file(app: App) -> int:
    """Users in the database file itself, ignoring its WAL (`immutable`: what a checkpoint
    has copied there so far)."""
    import sqlite3

    path = app.settings.data_dir / "kindbot.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])
    except sqlite3.OperationalError:  # not even the tables are in the file yet
        return 0
    finally:
        conn.close()


async def test_steps_checkpoint_the_wal_off_the_loop_every_so_often(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps' connection never checkpoints inside a commit on the loop (that syncs the
    disk); every CHECKPOINT_EVERY-th commit does, on aiosqlite's thread."""
    from storage import sqlite

    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 10_000)
    before = committed_to_the_file(app)
    for n in range(3):
        await app.engine.handle(UserRef("console", f"wal{n}"), Text("/start"))
    assert committed_to_the_file(app) == before  # still only in the WAL
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 1)
    await app.engine.handle(UserRef("console", "wal3"), Text("/start"))
    assert committed_to_the_file(app) >= before + 4


async def test_the_busy_timeout_changes_only_when_the_side_changes(app: App) -> None:
    """Statements on the loop run with busy timeout 0 and SQLAlchemy's with the patient one,
    switched when the side changes, not around every statement (two PRAGMAs per statement
    were a third of a step's SQLite calls)."""
    from storage import sqlite

    await consented(app)
    async with app.db.step() as unit:
        assert unit.direct is not None
        raw = unit.direct.connection.raw
        seen: list[str] = []
        raw.set_trace_callback(seen.append)
        try:
            query = repo.person_core_query(lock=False)
            person = {"channel": ME.channel, "external_id": ME.external_id}
            for _ in range(3):
                await unit.run(query, person)
            await unit.commit()
            on_loop = [s for s in seen if "busy_timeout" in s]
            assert on_loop == ["PRAGMA busy_timeout=0"] or on_loop == []  # once, or already 0
            seen.clear()
            # SQLAlchemy's next statement, on aiosqlite's thread, finds the patient timeout
            timeout = await unit.conn.scalar(text("PRAGMA busy_timeout"))
            assert timeout == sqlite.BUSY_TIMEOUT_MS
            assert [s for s in seen if "busy_timeout=" in s] == [
                f"PRAGMA busy_timeout={sqlite.BUSY_TIMEOUT_MS}"
            ]
            seen.clear()
            await unit.run(query, person)  # back on the loop: impatient again, once
            await unit.run(query, person)
            assert [s for s in seen if "busy_timeout" in s] == ["PRAGMA busy_timeout=0"]
        finally:
            raw.set_trace_callback(None)
