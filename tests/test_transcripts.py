"""Every conversation in tests/transcripts/ replayed through the real engine and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import App, open_app
from tests.conftest import Clock, make_settings
from tests.transcript import load, replay

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("*.yaml"))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
async def test_transcript(path: Path, tmp_path: Path, clock: Clock) -> None:
    data = load(path)
    settings = make_settings(tmp_path, **data.get("settings", {}))

    @asynccontextmanager
    async def opened() -> AsyncIterator[App]:
        async with open_app(settings, clock=clock) as app:
            yield app

    await replay(data, opened, clock)
