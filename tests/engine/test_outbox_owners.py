"""Who may send a reply left in the outbox: its owner while it lives, anyone once it is gone.

On PostgreSQL a process is known to be alive by an advisory lock it holds on a connection
of its own (`Outbox.hold`); when it dies the server lets go, and another worker takes its
unsent replies over at once. Elsewhere the lease decides.
"""

from __future__ import annotations

import pytest

from bot.app import App
from bot.engine.events import Text, UserRef
from bot.engine.outbox import Outbox
from tests.conftest import Clock

ME = UserRef("telegram", "4711", "en", "en")


async def left_unsent(app: App, worker: Outbox) -> int:
    """A step handled by `worker`, whose reply it never sends."""
    app.engine.outbox = worker
    reply = await app.engine.reply(ME, Text("/breathe"), seq=7)
    assert reply.outbox_id is not None and reply.outputs
    return reply.outbox_id


async def test_a_live_workers_reply_is_left_alone_and_a_dead_ones_taken_at_once(
    any_app: App, clock: Clock
) -> None:
    first, second = Outbox(any_app.db), Outbox(any_app.db)
    await first.hold()
    await second.hold()
    try:
        await left_unsent(any_app, first)
        assert await second.waiting("telegram", clock.now) == []  # first is still running

        await first.release()  # first dies (its connection closes)
        taken = await second.waiting("telegram", clock.now)
        if any_app.db.is_postgres:
            assert len(taken) == 1  # at once: the server says first is gone
        else:
            assert taken == []  # SQLite cannot tell: the lease decides
            clock.advance(seconds=31)
            assert len(await second.waiting("telegram", clock.now)) == 1
        assert await second.waiting("telegram", clock.now) == []  # now held by second
    finally:
        await first.release()
        await second.release()


async def test_a_redelivered_update_takes_over_a_dead_workers_reply(
    any_app: App, clock: Clock
) -> None:
    if not any_app.db.is_postgres:
        pytest.skip("only PostgreSQL can tell that another process is gone")
    first, second = Outbox(any_app.db), Outbox(any_app.db)
    await first.hold()
    await second.hold()
    try:
        await left_unsent(any_app, first)
        any_app.engine.outbox = second
        assert (await any_app.engine.reply(ME, Text("/breathe"), seq=7)).pending == []
        await first.release()
        again = await any_app.engine.reply(ME, Text("/breathe"), seq=7)
        assert again.pending and again.start == 0
    finally:
        await first.release()
        await second.release()
