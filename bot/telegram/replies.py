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
        # paced replies going out in the background, one per chat at most
        self._pacing: dict[int, tuple[asyncio.Task[None], Shown]] = {}

    def pace(self, chat_id: int, ref: UserRef, reply: Reply) -> None:
        """Send a reply that pauses (a paced exercise) in the background, so the update that
        asked for it is finished (confirmed to Telegram) at once: a slow update would hold
        the polling offset, and with it everyone else's updates, or a webhook connection.
        The reply is in the outbox already; a restart sends its rest (`flush`)."""
        shown = Shown()
        task = asyncio.ensure_future(self._paced(chat_id, ref, reply, shown))
        self._pacing[chat_id] = (task, shown)

        def forget(done: asyncio.Task[None]) -> None:
            pacing = self._pacing.get(chat_id)
            if pacing is not None and pacing[0] is done:
                del self._pacing[chat_id]

        task.add_done_callback(forget)

    async def settle(self, chat_id: int) -> None:
        """Before anything else goes to this chat: a paced reply still going out is hurried
        (the rest at once) and finished, so the person's next message is neither held up
        behind its pauses nor answered in the middle of it."""
        pacing = self._pacing.get(chat_id)
        if pacing is not None:
            task, shown = pacing
            shown.hurry_up()
            await asyncio.wait({task})

    async def idle(self, *, hurry: bool = False) -> None:
        """Wait until no paced reply is going out (`hurry`: hurry them all first, at a stop)."""
        while self._pacing:
            if hurry:
                for _, shown in self._pacing.values():
                    shown.hurry_up()
            await asyncio.wait({task for task, _ in self._pacing.values()})

    async def _paced(self, chat_id: int, ref: UserRef, reply: Reply, shown: Shown) -> None:
        try:
            await self.send(chat_id, ref, reply, shown=shown)
        except Unreachable:
            if self.on_unreachable is not None:
                await self.on_unreachable(ref)
        except Exception as exc:  # the rest waits in the outbox for the sweep
            log.warning("a paced reply stopped: %s", type(exc).__name__)

    async def send(
        self,
        chat_id: int,
        ref: UserRef,
        reply: Reply,
        *,
        hurry: bool = False,
        shown: Shown | None = None,
    ) -> None:
        """Send what is left of `reply`; the outbox forgets it once all of it is out.

        Paced outputs change one message in place, pausing between them. In a hurry (a
        reply sent after a restart, or `shown` hurried meanwhile) the pauses are skipped and
        only the last of a run of in-place changes is shown.

        A reply Telegram refuses for good (400: a message it will never take) is skipped so
        it cannot block the ones after it; a 403 (blocked) drops the rest and is re-raised as
        `Unreachable`. Anything else (network, flood control after retries) leaves the rest
        in the outbox, where a sweep picks it up once this sender's lease has lapsed.
        """
        last_visible = max(
            (i for i, o in enumerate(reply.outputs) if visible(o)), default=len(reply.outputs)
        )
        shown = shown or Shown()
        if hurry:
            shown.hurry_up()
        await self._send(chat_id, ref, reply, shown, last_visible)

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
