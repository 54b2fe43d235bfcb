"""The worker process for slow work: another process, at a lower priority, replaced if it dies."""

from __future__ import annotations

import os
from concurrent.futures import BrokenExecutor

import pytest

from bot.offload import NICENESS, Offload
from storage.source import DatabaseSource


async def test_jobs_run_in_a_process_of_their_own_at_a_lower_priority() -> None:
    offload = Offload(DatabaseSource("sqlite+aiosqlite:///unused.db", "not used"))
    try:
        assert await offload.run(os.getpid) != os.getpid()
        if hasattr(os, "nice"):
            assert await offload.run(os.nice, 0) >= os.nice(0) + NICENESS
    finally:
        offload.close()


async def test_a_worker_that_dies_is_replaced() -> None:
    offload = Offload(DatabaseSource("sqlite+aiosqlite:///unused.db", "not used"))
    try:
        first = await offload.run(os.getpid)
        with pytest.raises(BrokenExecutor):
            await offload.run(os._exit, 1)
        assert await offload.run(os.getpid) not in (first, os.getpid())
    finally:
        offload.close()


def test_the_source_never_shows_its_keys() -> None:
    source = DatabaseSource("postgresql+asyncpg://kb:secret@db/kb", "c2VjcmV0LWtleQ==", "s1")
    assert "secret" not in repr(source)
    assert "c2VjcmV0" not in repr(source)
