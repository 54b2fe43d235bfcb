"""Concurrent for different people, strictly in order for one person.

PTB's own concurrent mode runs every update as soon as it arrives, so two quick messages from
one person can reach the engine in either order. This processor queues each person's updates
behind one another (a chain of futures per person) and lets different people run side by side,
up to a limit.

The place in a person's queue is taken synchronously when PTB hands the update over, before
anything is awaited: PTB starts one task per update in arrival order and its own semaphore
never makes us wait (we give it an effectively unbounded size and do the limiting here, after
the ordering), so queue order is arrival order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

_UNBOUNDED = 2**31 - 1


def order_key(update: object) -> int | None:
    """Whose queue an update joins: the person's id, else the chat's; None runs at once."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None


class PerUserOrder(BaseUpdateProcessor):
    """At most `max_running` updates at a time; one person's updates one after another."""

    def __init__(self, max_running: int = 256) -> None:
        super().__init__(_UNBOUNDED)
        if max_running < 1:
            raise ValueError("max_running must be a positive integer")
        self.max_running = max_running
        self._slots = asyncio.Semaphore(max_running)
        self._tails: dict[int, asyncio.Future[None]] = {}

    @property
    def waiting_people(self) -> int:
        """How many people have updates queued or running (for tests and metrics)."""
        return len(self._tails)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = order_key(update)
        previous = self._tails.get(key) if key is not None else None
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key is not None:
            self._tails[key] = mine  # taken before any await: this is the arrival order
        started = False
        try:
            if previous is not None and not previous.done():
                await _after(previous)
            async with self._slots:
                started = True
                await coroutine
        finally:
            if not started and isinstance(coroutine, Coroutine):
                coroutine.close()  # cancelled while waiting: never started, never will
            mine.set_result(None)
            if key is not None and self._tails.get(key) is mine:
                del self._tails[key]

    async def initialize(self) -> None:
        """Nothing to set up: queues are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: PTB waits for running updates before it shuts us down."""


async def _after(previous: asyncio.Future[None]) -> None:
    """Wait for `previous` to finish without cancelling it if we are cancelled.

    A future of our own and one callback: `asyncio.wait([previous])` does the same with a set,
    a timeout and callbacks added and removed, once per update."""
    waiter = asyncio.get_running_loop().create_future()

    def wake(_: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    previous.add_done_callback(wake)
    try:
        await waiter
    finally:
        previous.remove_done_callback(wake)
