"""The core feature: the actions of the engine's own dialogs (onboarding and the resume offer)."""

from __future__ import annotations

from bot.engine.feature import Feature
from bot.engine.frame import Frame
from bot.engine.parsing import asks_what_i_am, has_words
from bot.engine.turn import Turn


async def give_consent(turn: Turn, frame: Frame) -> None:
    """Record consent, then go where the person was headed (or to the menu)."""
    turn.user.consented_at = turn.now
    then = str(frame.params.get("then") or turn.engine.menu)
    await turn.engine.open_dialog(turn, then, carried(frame))


def carried(frame: Frame) -> str:
    """The first words a person wrote before agreeing to storage, if onboarding carries them
    ("" if not)."""
    thought = frame.params.get("thought")
    return str(thought) if thought else ""


async def open_with_words(turn: Turn, frame: Frame) -> None:
    """Words written with nothing open, offered and accepted: the dialog they go to (the
    reframe) starts with them as the answer to its first question."""
    await turn.engine.open_dialog(turn, turn.engine.first_words, carried(frame))


async def decline_consent(turn: Turn, frame: Frame) -> None:
    """Onboarding said "Not now": remember it (so the welcome is not said again, and
    `unrecorded` dialogs run), and keep nothing they wrote before it."""
    turn.decline()
    frame.params.pop("thought", None)


async def resume_paused(turn: Turn, frame: Frame) -> None:
    target = turn.paused.get(str(frame.params.get("target")))
    if target is None:
        turn.say("nothing_to_stop")
        return
    await turn.resume(target)


async def start_fresh(turn: Turn, frame: Frame) -> None:
    target = str(frame.params.get("target"))
    turn.paused.pop(target, None)
    # "/reframe I'm a failure", then "Start fresh": the words answer its first question
    await turn.engine.start_with(turn, target, str(frame.params.get("text") or ""))


async def ask_again(turn: Turn, frame: Frame) -> None:
    """After a long gap, "carry on": the question left open is asked again."""
    turn.reprompt()


async def start_afresh(turn: Turn, frame: Frame) -> None:
    """After a long gap, "start with what's on my mind now": the dialog left open is stopped
    (a recorded one is kept as unfinished) and the same dialog starts again."""
    below = turn.top
    if below is None:
        await turn.start_dialog(turn.engine.menu)
        return
    await turn.stop_all()
    await turn.start_dialog(below.dialog)


async def what_i_am(turn: Turn, text: str) -> bool:
    """ "Are you a real person?", anywhere: answered plainly (kindbot never lets anyone think
    it is a person or a therapist), then the question open goes on."""
    if not asks_what_i_am(text, turn.text("what_i_am_questions")):
        return False
    turn.say("what_i_am")
    turn.reprompt()
    return True


async def more_words(turn: Turn, text: str) -> bool:
    """Typed at the offer for words written with nothing open: more of the same words (the
    rest of a message sent in pieces), kept with them and said so; the offer stays."""
    top = turn.top
    if top is None or top.dialog != turn.engine.heard or not text.strip():
        return False
    if turn.typed_choice(top, text) is not None or not has_words(text):
        return False
    top.params["thought"] = f"{carried(top)} {text}".strip()
    turn.say("split_added")
    turn.reprompt()
    return True


CORE = Feature(
    "core",
    interceptors=[what_i_am, more_words],
    actions={
        "give_consent": give_consent,
        "open_with_words": open_with_words,
        "decline_consent": decline_consent,
        "resume_paused": resume_paused,
        "start_fresh": start_fresh,
        "start_afresh": start_afresh,
        "ask_again": ask_again,
    },
)
