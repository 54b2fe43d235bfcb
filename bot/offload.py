"""Slow work (charts, exports) in a process of its own, at a lower CPU priority.

A person's chart or export is made after their step has committed (a `Later` output), and
not in the bot's process: measured with bench/stall.py (1,000 entries, SQLite), making
them there in a worker thread after the step still held other people's replies up by
170–360 ms at p99 (here: within 2 ms of idle). A thread shares the GIL and, worse, the
garbage collector: reading and drawing a long history makes tens of thousands of objects,
which set off full collections over the whole bot's heap (~150k objects: 75–175 ms during
which no thread runs). So the worker process reads the person's rows itself, with its own
connection (`storage.source.DatabaseSource`), does the decrypting, drawing and formatting,
and hands back only the finished files.

One worker process, started on first use (~1.5 s: it imports matplotlib and the storage
code) and then kept: jobs queue behind each other, never in front of anyone's reply, and
`nice` keeps them from taking a CPU a reply needs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from typing import Any, TypeVar

from bot.engine.events import Output, UserRef
from bot.engine.feature import Producer
from storage.source import DatabaseSource as DatabaseSource  # also bot.app's import

T = TypeVar("T")
NICENESS = 10  # lower CPU priority for the worker (Unix); replies come first


def _lower_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(NICENESS)


class Offload:
    """Runs slow jobs in the worker process; `executor` replaces it (tests hold a job open
    in a thread). Jobs are plain functions of picklable arguments, run in the worker."""

    def __init__(self, source: DatabaseSource, executor: Executor | None = None) -> None:
        self.source = source
        self._given = executor
        self._pool: Executor | None = executor

    def executor(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
            )
        return self._pool

    async def run(self, job: Callable[..., T], *args: object) -> T:
        """`job(*args)` in the worker, awaited without blocking the event loop."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor(), job, *args)
        except BrokenExecutor:
            self._pool = self._given  # the worker died (killed, out of memory): a new one next
            raise

    def close(self) -> None:
        """Let the worker go (a job under way is left to finish on its own)."""
        if self._pool is not None and self._pool is not self._given:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._given


# What a worker job makes: the person's files from their rows (read with its own connection).
Make = Callable[[DatabaseSource, str, str, dict[str, Any]], Coroutine[Any, Any, list[Output]]]


def in_worker(
    make: Make, source: DatabaseSource, channel: str, external_id: str, data: dict[str, Any]
) -> list[Output]:
    """In the worker process: `make` on an event loop of its own."""
    return asyncio.run(make(source, channel, external_id, data))


def producer(offload: Offload, make: Make) -> Producer:
    """A producer for `Engine.producers` that runs `make` in the worker process."""

    async def produce(ref: UserRef, data: dict[str, Any]) -> list[Output]:
        return await offload.run(
            in_worker, make, offload.source, ref.channel, ref.external_id, data
        )

    return produce
