"""Sending the engine's replies to Telegram, durably: output by output, progress recorded.

Every reply a step makes is in the outbox once the step commits (bot/engine/outbox.py). This
module sends it and reports how far it got, so that after a crash the rest — and only the
rest — goes out: at start (`flush`), when the update is redelivered (the engine hands back
what is unsent), and from a periodic sweep for replies whose sender died (`sweep`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram.error import BadRequest

from bot.engine.events import Later, Message, Output, Pause, UserRef
from bot.engine.outbox import Reply, visible
from bot.engine.runner import Engine
from bot.telegram.errors import Unreachable
from bot.telegram.render import Renderer, Shown

log = logging.getLogger(__name__)

CHANNEL = "telegram"
OnUnreachable = Callable[[UserRef], Awaitable[None]]


class ReplySender:
    """Delivers replies from the outbox to private chats (chat id = the person's id)."""

    def __init__(
        self, engine: Engine, renderer: Renderer, on_unreachable: OnUnreachable | None = None
    ) -> None:
        self.engine = engine
        self.renderer = renderer
        self.on_unreachable = on_unreachable
        # the reply going out to each chat right now, so the person's next update can hurry it
        self._live: dict[int, Shown] = {}

    def hurry(self, chat_id: int) -> None:
        """The person wrote again: the reply still going out to them (a paced exercise)
        shows the rest at once, so their new message is not held up behind its pauses."""
        shown = self._live.get(chat_id)
        if shown is not None:
            shown.hurry_up()

    async def send(self, chat_id: int, ref: UserRef, reply: Reply, *, hurry: bool = False) -> None:
        """Send what is left of `reply`; the outbox forgets it once all of it is out.

        Paced outputs change one message in place, pausing between them. In a hurry (a
        reply sent after a restart, or `hurry` called meanwhile) the pauses are skipped and
        only the last of a run of in-place changes is shown.

        A reply Telegram refuses for good (400: a message it will never take) is skipped so
        it cannot block the ones after it; a 403 (blocked) drops the rest and is re-raised as
        `Unreachable`. Anything else (network, flood control after retries) leaves the rest
        in the outbox, where a sweep picks it up once this sender's lease has lapsed.
        """
        last_visible = max(
            (i for i, o in enumerate(reply.outputs) if visible(o)), default=len(reply.outputs)
        )
        shown = Shown(hurry=hurry)
        previous = self._live.get(chat_id)
        self._live[chat_id] = shown
        try:
            await self._send(chat_id, ref, reply, shown, last_visible)
        finally:
            if self._live.get(chat_id) is shown:
                if previous is None:
                    del self._live[chat_id]
                else:
                    self._live[chat_id] = previous

    async def _send(
        self, chat_id: int, ref: UserRef, reply: Reply, shown: Shown, last_visible: int
    ) -> None:
        outbox = self.engine.outbox
        for index in range(reply.start, len(reply.outputs)):
            output = reply.outputs[index]
            if shown.hurry and superseded(reply.outputs, index):
                continue
            made = (
                await self.engine.produce(ref, [output]) if isinstance(output, Later) else [output]
            )
            try:
                await self.renderer.show(chat_id, made, shown)
            except BadRequest as exc:
                log.warning("Telegram refused an output (%s); skipped", type(exc).__name__)
            except Unreachable:
                await outbox.done(reply)
                raise
            if visible(output) and index < last_visible:
                await outbox.progress(reply, index + 1, self.engine.clock())
        await outbox.done(reply)

    async def flush(self, *, force: bool = False) -> int:
        """Send every reply whose sender is gone (`force`: every unsent reply); how many.

        Each person's leftovers are sent under their engine lock, so a new step of theirs
        does not overtake them."""
        count = 0
        tried: set[int | None] = set()
        while True:
            batch = await self.engine.outbox.waiting(CHANNEL, self.engine.clock(), force=force)
            batch = [(ref, reply) for ref, reply in batch if reply.outbox_id not in tried]
            if not batch:
                return count  # (forced, a reply that failed is met again: tried once is enough)
            for ref, reply in batch:
                tried.add(reply.outbox_id)
                count += 1
                try:
                    async with self.engine.person_lock(ref.key):
                        # out of turn, after a restart: no pauses, only where things ended
                        await self.send(int(ref.external_id), ref, reply, hurry=True)
                except Unreachable:
                    if self.on_unreachable is not None:
                        await self.on_unreachable(ref)
                except Exception as exc:  # left in the outbox for the next sweep
                    log.warning("a waiting reply could not be sent yet: %s", type(exc).__name__)

    async def sweep(self, every: float = 5.0) -> None:
        """Run `flush` forever (until cancelled), every `every` seconds; once an hour, also
        let go of /forget tombstones older than a day."""
        pruned = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            try:
                if loop.time() - pruned > 3600:
                    await self.engine.outbox.prune(self.engine.clock())
                    pruned = loop.time()
                sent = await self.flush()
            except Exception as exc:
                log.warning("outbox sweep failed: %s", type(exc).__name__)
                continue
            if sent:
                log.info("sent %d waiting repl%s", sent, "y" if sent == 1 else "ies")


def superseded(outputs: list[Output], index: int) -> bool:
    """Whether a hurried reply can leave `outputs[index]` out: a pause, or a paced message
    that a later in-place change replaces (it asks nothing, and the next message shown is
    another change of the same message)."""
    output = outputs[index]
    if isinstance(output, Pause):
        return True
    if not (isinstance(output, Message) and output.edits):
        return False
    if output.options or output.scale is not None:
        return False
    following = next((o for o in outputs[index + 1 :] if visible(o)), None)
    return isinstance(following, Message) and following.edits
