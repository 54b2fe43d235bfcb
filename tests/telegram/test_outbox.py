"""Replies kept in the outbox from their step's commit until Telegram has them.

The "crashes" here stop the work at the exact point a SIGKILL would: the step has committed
but nothing was sent (the engine is called without the adapter), or part of a reply went out
before the network failed. What a new process does next is then run for real: the start-up
flush, the redelivered update, the sweep of a dead worker's replies.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select, text

from bot.app import App
from bot.engine.events import Reminder, Text, UserRef
from bot.telegram.errors import Delivery
from bot.telegram.render import Renderer
from bot.telegram.replies import ReplySender
from bot.testing.botapi import BotAPI
from bot.testing.harness import Harness, harness
from storage.models import OutboxReply
from tests.conftest import Clock

ANN = 301


def ref_of(user_id: int) -> UserRef:
    return UserRef("telegram", str(user_id), "en", "en")


def sender(h: Harness) -> ReplySender:
    """What a freshly started process sends waiting replies with."""

    async def no_wait(seconds: float) -> None:
        pass

    renderer = Renderer(h.application.bot, Delivery(backoff=0.0, sleep=no_wait), sleep=no_wait)
    return ReplySender(h.app.engine, renderer)


async def waiting(app: App) -> int:
    async with app.db.session() as session:
        return await session.scalar(select(func.count()).select_from(OutboxReply)) or 0


async def consented(h: Harness, user: int = ANN) -> None:
    await h.say(user, "/start")
    await h.press(user, "Yes, that's okay")
    await h.press(user, "Skip")


async def crash_before_send(h: Harness, user: int, said: str) -> dict[str, Any]:
    """The update's step commits, and the process dies before sending its reply; what runs
    next is another process (its own owner id)."""
    update = h.updates.text(user, said)
    await h.app.engine.reply(ref_of(user), Text(said), seq=update["update_id"])
    h.app.engine.outbox.owner = secrets.randbits(31)
    return update


async def test_a_sent_reply_leaves_nothing_behind(app: App) -> None:
    async with harness(app) as h:
        await consented(h)
        assert await waiting(app) == 0


async def test_a_reply_committed_but_never_sent_goes_out_at_start_once(app: App) -> None:
    async with harness(app) as h:
        await consented(h)
        h.api.clear()
        update = await crash_before_send(h, ANN, "/breathe")
        assert h.api.texts(ANN) == [] and await waiting(app) == 1

        # the new process: leftovers first (force: a polling bot is the only sender) ...
        assert await sender(h).flush(force=True) == 1
        sent = h.api.texts(ANN)
        assert sent and "breathe" in sent[0]
        # ... then Telegram redelivers the unconfirmed update: answered already, not again
        again = await h.process(update)
        assert [c for c in again if c.method == "sendMessage"] == []
        assert h.api.texts(ANN) == sent
        assert await waiting(app) == 0


async def test_a_redelivered_update_is_answered_with_its_unsent_reply(app: App) -> None:
    async with harness(app) as h:
        await consented(h)
        app.engine.outbox.exclusive = True  # as a polling bot runs
        h.api.clear()
        update = await crash_before_send(h, ANN, "/breathe")
        again = await h.process(update)
        sent = [c.text for c in again if c.method == "sendMessage"]
        assert sent and "breathe" in sent[0]
        assert await h.process(update) == []  # a third copy: nothing
        assert h.api.texts(ANN) == sent


async def test_a_live_senders_reply_is_left_to_it_until_its_lease_lapses(
    app: App, clock: Clock
) -> None:
    """Several webhook workers: a sweep must not send what another worker is sending."""
    async with harness(app) as h:
        await consented(h)
        h.api.clear()
        update = await crash_before_send(h, ANN, "/breathe")
        assert await sender(h).flush() == 0
        assert await h.process(update) == []  # redelivered to another worker: still held
        assert h.api.texts(ANN) == []

        clock.advance(seconds=31)  # the worker that held it is gone
        assert await sender(h).flush() == 1
        assert "breathe" in h.api.texts(ANN)[0]
        assert await sender(h).flush() == 0
        assert await waiting(app) == 0


async def test_a_reply_cut_off_midway_resumes_after_the_last_output_sent(app: App) -> None:
    api = BotAPI()

    async def network_goes_down(seconds: float) -> None:
        for method in ("sendMessage", "editMessageText"):
            api.fail(f"network:{method}", "network", times=8)  # outlasts the retries

    async with harness(app, api, sleep=network_goes_down) as h:
        await consented(h)
        api.clear()
        await h.say(ANN, "/breathe")  # intro, then a pause, and the network is gone
        first = api.texts(ANN)
        assert len(first) == 1 and "breathe" in first[0].lower()
        assert await waiting(app) == 1
        api.failures.clear()

    async with harness(app, api) as h:  # the next process
        app.engine.outbox.owner = secrets.randbits(31)
        api.clear()
        assert await sender(h).flush(force=True) == 1
        # not the intro again, and not the counts the person missed (a restart hurries):
        # only where the exercise ended, its question
        rest = api.texts(ANN)
        assert len(rest) == 1 and "few more breaths" in rest[0] and "together" not in rest[0]
        assert api.sent("sendChatAction") == [] and api.sent("editMessageText") == []
        assert await waiting(app) == 0


async def test_a_blocked_person_s_reply_is_dropped(app: App) -> None:
    async with harness(app) as h:
        await consented(h)
        await crash_before_send(h, ANN, "/breathe")
        h.api.fail("sendMessage", "forbidden")
        assert await sender(h).flush(force=True) == 1
        assert await waiting(app) == 0


async def test_a_waiting_reply_is_encrypted(app: App) -> None:
    async with harness(app) as h:
        await consented(h)
        await h.say(ANN, "/reframe")
        await crash_before_send(h, ANN, "I am a purple elephant of failure")
        async with app.db.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT payload_enc FROM outbox"))).scalars().all()
        assert len(stored) == 1
        assert "purple elephant" not in stored[0]
        ref = ref_of(ANN)
        [(_, reply)] = await app.engine.outbox.waiting(ref.channel, app.engine.clock(), force=True)
        assert any("purple elephant" in getattr(o, "text", "") for o in reply.outputs)


async def test_forgetting_removes_waiting_replies(app: App, clock: Clock) -> None:
    async with harness(app) as h:
        await consented(h)
        await crash_before_send(h, ANN, "/breathe")
        clock.advance(seconds=31)
        await h.say(ANN, "/forget")
        await h.press(ANN, "Yes, delete everything")
        assert await waiting(app) == 0


async def test_the_sweeper_lets_old_tombstones_go(app: App, clock: Clock) -> None:
    async with harness(app) as h:
        await consented(h)
        await h.say(ANN, "/forget")
        await h.press(ANN, "Yes, delete everything")
        async with app.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM forgotten"))).scalar() == 1
        clock.advance(hours=23)
        await app.engine.outbox.prune(clock.now)
        async with app.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM forgotten"))).scalar() == 1
        clock.advance(hours=2)
        await app.engine.outbox.prune(clock.now)
        async with app.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM forgotten"))).scalar() == 0


# -- /forget is final ------------------------------------------------------------------------
async def people(app: App) -> int:
    async with app.db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM users"))).scalar() or 0)


async def forgotten(h: Harness, user: int = ANN) -> dict[str, Any]:
    """A consented person who said something, then /forget; the update sent before it."""
    await consented(h, user)
    before = h.updates.text(user, "/breathe")
    await h.process(before)
    await h.say(user, "stop")
    await h.say(user, "/forget")
    await h.press(user, "Yes, delete everything")
    assert await people(h.app) == 0
    return before


async def test_a_reminder_due_as_a_person_is_forgotten_does_not_bring_them_back(
    app: App,
) -> None:
    async with harness(app) as h:
        await forgotten(h)
        assert await app.engine.handle(ref_of(ANN), Reminder("reflection")) == []
        assert await app.engine.handle(ref_of(ANN), Reminder("checkin_ping")) == []
        assert await people(app) == 0


async def test_a_late_copy_of_an_update_from_before_forget_is_turned_away(app: App) -> None:
    async with harness(app) as h:
        before = await forgotten(h)
        h.api.clear()
        assert await h.process(before) == []  # redelivered after a crash: nobody comes back
        assert await people(app) == 0
        # their next message is a new first contact: the introduction and consent again
        hello = await h.say(ANN, "hello")
        assert "kindbot" in hello[0].text
        assert hello[-1].labels == ["Yes, that's okay", "Not now"]
        assert await people(app) == 1


async def test_someone_else_is_not_turned_away_by_a_tombstone(app: App) -> None:
    async with harness(app) as h:
        before = await forgotten(h)
        other = h.updates.text(ANN + 1, "hello")
        other["update_id"] = before["update_id"] - 100  # an old id, from someone else
        first = await h.process(other)
        assert "kindbot" in first[0].text
