"""The core feature: the actions of the engine's own dialogs (onboarding and the resume offer)."""

from __future__ import annotations

from bot.engine.feature import Feature
from bot.engine.frame import Frame
from bot.engine.turn import Turn


async def give_consent(turn: Turn, frame: Frame) -> None:
    """Record consent, then go where the person was headed (or to the menu)."""
    turn.user.consented_at = turn.now
    await turn.engine.open_dialog(turn, str(frame.params.get("then") or turn.engine.menu))


async def resume_paused(turn: Turn, frame: Frame) -> None:
    target = turn.paused.get(str(frame.params.get("target")))
    if target is None:
        turn.say("nothing_to_stop")
        return
    await turn.resume(target)


async def start_fresh(turn: Turn, frame: Frame) -> None:
    target = str(frame.params.get("target"))
    turn.paused.pop(target, None)
    await turn.start_dialog(target)


CORE = Feature(
    "core",
    actions={
        "give_consent": give_consent,
        "resume_paused": resume_paused,
        "start_fresh": start_fresh,
    },
)
