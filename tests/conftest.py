"""Shared fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import App, open_app
from bot.config import REPO_ROOT, Settings
from storage.crypto import new_key

PG_ENV = "KINDBOT_TEST_POSTGRES_URL"
PG_URL = os.environ.get(PG_ENV)
DIALOGS = REPO_ROOT / "dialogs"


class Clock:
    """A settable clock for the engine (and anything else that asks for the time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "dialogs_dir": DIALOGS,
        "encryption_key": new_key(),
        "_env_file": None,
        # The test clock stands still, so every message would arrive at the same instant:
        # joining quick messages and spacing corrections are off unless a test turns them on.
        "split_seconds": 0,
        "quiet_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def need_postgres() -> str:
    if not PG_URL:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} "
            "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    return PG_URL


@asynccontextmanager
async def fresh_pg_schema() -> AsyncIterator[tuple[str, str]]:
    """A fresh, empty PostgreSQL schema; dropped afterwards. Skips without PostgreSQL."""
    url = need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def pg_schema() -> AsyncIterator[tuple[str, str]]:
    async with fresh_pg_schema() as found:
        yield found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_app(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[App]:
    """kindbot on each database kind in turn: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        async with open_app(make_settings(tmp_path), clock=clock) as opened:
            yield opened
        return
    async with (
        fresh_pg_schema() as (url, schema),
        open_app(make_settings(tmp_path, database_url=url), clock=clock, schema=schema) as opened,
    ):
        yield opened


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    """kindbot on a fresh SQLite database in a temporary folder."""
    async with open_app(settings, clock=clock) as opened:
        yield opened
