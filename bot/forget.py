"""`/forget`: after the `forget` dialog's confirmation, delete every row about the person.

The next message from them finds no user row, so kindbot meets them as someone new. Only a
late copy of an update sent before the erasure (a redelivery after a crash) is turned away,
for a day, by a salted hash of who they were (storage.outbox.bury): it must not bring them
back without their consent.
"""

from __future__ import annotations

import logging

from bot.engine.feature import Action
from bot.engine.frame import Frame
from bot.engine.turn import Turn
from storage.outbox import bury
from storage.personal import erase_person

log = logging.getLogger(__name__)


async def forget_everything(turn: Turn, frame: Frame) -> None:
    """Delete them from every table, in this event's transaction, and save no state after."""
    assert turn.user.id is not None
    counts = await erase_person(turn.session, user_id=turn.user.id)
    if turn.ref is not None:
        await bury(
            turn.unit,
            channel=turn.ref.channel,
            external_id=turn.ref.external_id,
            up_to_seq=turn.seq,
            now=turn.now,
        )
    turn.erase()
    log.info("erased a person on request: %d rows", sum(counts.values()))


FORGET_ACTIONS: dict[str, Action] = {"forget_everything": forget_everything}
