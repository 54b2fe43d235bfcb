"""The one-trip aiosqlite cursor (storage/sqlite_driver.py) behaves like the stock one."""

from __future__ import annotations

from sqlalchemy import insert, text

from bot.app import App
from storage.models import Meta


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
