"""How people really write: one thought in several quick messages, bursts of the same wrong
answer, throwaway answers ("k", "idk", "👍") and text over the length limit.

Everything here decides from what is kept with the conversation (`turn.notes`, encrypted
with it): when the last text answer was stored and which question followed it, when a
question was last corrected, which step's keypad is the latest one sent, a long text waiting
for the person's choice. No timer lives in the process, so a restart or a second worker
decides exactly as this one would. Times are when the person sent a message (`Text.at`, from
Telegram) where the adapter knows it, else the engine's clock.

Each note is tied to the step it was made at (`turn.step`): `after_step` drops the ones of
a step that has passed, so nothing outlives the question it belongs to.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.engine.events import Message, Option, Scale
from bot.engine.frame import Frame
from bot.engine.parsing import has_words, is_throwaway, parse_scale
from bot.engine.turn import Turn
from storage import repo

# Buttons the engine offers on its own (not a dialog's): their values, as sent back.
EXAMPLES = "_examples"
FIRST_PART = "_first_part"
SHORTER = "_shorter"
OWN_CHOICES = frozenset({EXAMPLES, FIRST_PART, SHORTER})
# How much of a text over the limit is kept while the person chooses, in limits.
KEPT = 4


# -- bookkeeping ----------------------------------------------------------------------------
def after_step(turn: Turn) -> None:
    """Remember which keypad is now the latest sent, and forget notes of a passed step."""
    for output in reversed(turn.outputs):
        if isinstance(output, Message) and (output.options or output.scale is not None):
            turn.notes["keypad"] = output.step
            break
    for key in ("answer", "saved", "said", "nudged", "long"):
        note = turn.notes.get(key)
        if isinstance(note, dict) and note.get("step") != turn.step:
            del turn.notes[key]


def _within(turn: Turn, key: str, at: datetime, seconds: float) -> bool:
    """Whether the note `key` is of this step and was made less than `seconds` before `at`."""
    note = turn.notes.get(key)
    if seconds <= 0 or not isinstance(note, dict) or note.get("step") != turn.step:
        return False
    return at - datetime.fromisoformat(str(note["at"])) < timedelta(seconds=seconds)


def _said(turn: Turn, at: datetime) -> None:
    turn.notes["said"] = {"step": turn.step, "at": at.isoformat()}


def ask_again(turn: Turn, frame: Frame, hint: str | None = None) -> None:
    """The current question again; without its buttons if they are the latest on screen."""
    message = turn.render(frame, hint)
    has_keypad = bool(message.options) or message.scale is not None
    if has_keypad and turn.notes.get("keypad") == turn.step:
        message = Message(message.text)
    turn.emit(message)
    turn.prompts += 1


# -- floods ---------------------------------------------------------------------------------
def correct(turn: Turn, hint: str, brief: str, at: datetime, quiet: float) -> None:
    """A wrong answer's correction: at most one per question in `quiet` seconds (a burst of
    wrong answers gets one reply), and, while the question's keypad is still the latest on
    screen, `brief` alone instead of the keypad again. A state with its own `retry` words
    (the crisis pause's "are you safe?") is always asked again in full, buttons and all."""
    frame = turn.top
    if frame is not None and turn.spec(frame).retry:
        turn.reprompt(hint)
        return
    if _within(turn, "said", at, quiet):
        return
    if frame is None or turn.spec(frame).expect == "none":
        turn.emit(Message(hint))
    else:
        message = turn.render(frame, hint)
        keypad = bool(message.options) or message.scale is not None
        if keypad and turn.notes.get("keypad") == turn.step:
            turn.emit(Message(brief))
        else:
            turn.emit(message)
            turn.prompts += 1
    _said(turn, at)


# -- split messages -------------------------------------------------------------------------
def remember_answer(turn: Turn, frame: Frame, key: str | None, at: datetime) -> None:
    """A text answer was stored under `key` in a dialog that keeps the person's words (a
    journal answer; a setting or a safety plan part has already been acted on, and a piece
    added afterwards would be lost): note it. If the dialog asks something next, a piece sent
    quickly joins the answer (`join_split`); if the answer ended it and it was saved, the
    piece is added to the saved entry (`add_to_saved`: the evening reflection's one question)."""
    if not key or not turn.machine(frame).spec.keeps_words:
        return
    note = {"key": key, "step": turn.step, "at": at.isoformat()}
    if turn.top is frame:
        turn.notes["answer"] = {"dialog": frame.dialog, "run": frame.run, **note}
    elif frame.entry_id is not None and all(f is not frame for f in turn.stack):
        turn.notes["saved"] = {"entry": frame.entry_id, **note}


async def add_to_saved(turn: Turn, text: str, at: datetime, *, window: float, limit: int) -> bool:
    """Whether `text` is the rest of the answer that just ended a journal dialog (sent within
    `window` seconds of it, nothing else in between): then it is added to the saved entry,
    rather than being met as a new message with no question open."""
    note = turn.notes.get("saved")
    if not has_words(text) or not _within(turn, "saved", at, window) or not isinstance(note, dict):
        return False
    if is_throwaway(text, turn.text("throwaway_words").split(",")):
        return False  # "k" after an answer is not more of it
    user_id = turn.user.id
    assert user_id is not None
    entry = await repo.get_entry(turn.unit.session, user_id=user_id, entry_id=int(note["entry"]))
    if entry is None or entry.id is None:
        return False  # deleted in between (/forget)
    answers = repo.entry_answers(entry, cipher=turn.cipher)
    before = answers.get(note["key"])
    joined = f"{before} {text}"
    if not isinstance(before, str) or len(joined) > limit:
        return False
    answers[note["key"]] = joined
    await repo.record_entry(
        turn.unit,
        user_id=user_id,
        entry_id=entry.id,
        answers=answers,
        status=entry.status,
        cipher=turn.cipher,
        finished_at=entry.finished_at,
    )
    note["at"] = at.isoformat()
    if not _within(turn, "said", at, window):
        turn.say("split_added_saved")
        _said(turn, at)
    return True


def join_split(
    turn: Turn, frame: Frame, text: str, at: datetime, *, window: float, limit: int
) -> bool:
    """Whether `text` is the rest of the text answer just stored (sent within `window`
    seconds of it, before the next question was answered): then it is added to that answer
    and the current question is asked again with it. A message that answers the current
    question as it stands (a rating, a choice) is not joined."""
    note = turn.notes.get("answer")
    if not text or not _within(turn, "answer", at, window) or not isinstance(note, dict):
        return False
    if is_throwaway(text, turn.text("throwaway_words").split(",")):
        return False  # "k" after an answer is not more of it
    if (note["dialog"], note["run"]) != (frame.dialog, frame.run):
        return False
    state = turn.spec(frame)
    if state.expect == "scale":
        filler = turn.text("scale_filler_words").split(",")
        if parse_scale(text, _scale(turn, frame), filler) is not None:
            return False
    if state.expect == "choice" and turn.typed_choice(frame, text) is not None:
        return False
    before = frame.answers.get(note["key"])
    joined = f"{before} {text}"
    if not isinstance(before, str) or len(joined) > limit:
        return False
    frame.answers[note["key"]] = joined
    note["at"] = at.isoformat()
    if not _within(turn, "said", at, window):
        turn.say("split_added")
        ask_again(turn, frame)
        _said(turn, at)
    return True


def _scale(turn: Turn, frame: Frame) -> Scale:
    spec = turn.spec(frame).scale
    return Scale(spec.low, spec.high)


# -- throwaway answers ----------------------------------------------------------------------
def nudge_throwaway(turn: Turn, text: str) -> bool:
    """Whether `text` is a throwaway answer ("k", "idk", "🙂") met for the first time at this
    question: then ask gently for a little more, with a button for examples. The second
    throwaway answer to the same question is taken as it is."""
    words = turn.text("throwaway_words").split(",")
    if not is_throwaway(text, words):
        return False
    nudged = turn.notes.get("nudged")
    if isinstance(nudged, dict) and nudged.get("step") == turn.step:
        return False
    turn.notes["nudged"] = {"step": turn.step}
    option = Option(EXAMPLES, turn.text("say_more_examples_button"))
    turn.emit(Message(turn.text("say_more"), (option,), step=turn.step))
    return True


def show_examples(turn: Turn, frame: Frame) -> None:
    """Examples for the question open now: its own (`examples_<dialog>_<state>` in the
    messages), or the general ones."""
    key = f"examples_{frame.dialog}_{frame.state}"
    known = key in turn.locale.messages or key in turn.engine.catalog.locale(None).messages
    turn.say(key if known else "examples_general")


# -- text over the limit --------------------------------------------------------------------
def first_part(text: str, limit: int) -> str:
    """The start of `text` within `limit` characters, ended at a sentence or a word."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    for marks in ((". ", "! ", "? ", "\n"), (" ",)):
        cut = max(head.rfind(mark) for mark in marks)
        if cut >= limit // 2:
            return head[: cut + 1].strip()
    return head.strip()


def offer_first_part(turn: Turn, text: str, at: datetime, limit: int) -> None:
    """Text over the limit: kept (with the conversation, encrypted) until the person picks
    "use the first part" or "I'll write it shorter". Only its start can become the answer,
    so no more than `KEPT` times the limit is kept (a pasted book stays out of the state)."""
    kept = text[: KEPT * limit]
    turn.notes["long"] = {"step": turn.step, "text": kept, "at": at.isoformat(), "cut": True}
    end = " ".join(first_part(text, limit).split()[-6:])[-40:].strip()
    options = (
        Option(FIRST_PART, turn.text("too_long_use_first")),
        Option(SHORTER, turn.text("too_long_write_shorter")),
    )
    turn.emit(Message(turn.text("too_long_offer", limit=limit, end=end), options, step=turn.step))


def grow_long(turn: Turn, text: str, at: datetime, window: float, limit: int) -> bool:
    """Whether `text` is the next piece of a long text still waiting (Telegram cuts a long
    paste into messages of 4096 characters): then it is added to it, and the offer stands.
    Only a piece over the limit is followed by another; a short one is the last."""
    note = turn.notes.get("long")
    if not text or not isinstance(note, dict) or not note.get("cut"):
        return False
    if not _within(turn, "long", at, window):
        return False
    note["text"] = f"{note['text']}\n{text}"[: KEPT * limit]
    note["at"] = at.isoformat()
    note["cut"] = len(text) > limit
    return True


async def chosen(turn: Turn, frame: Frame, value: str, limit: int) -> None:
    """One of the engine's own buttons was pressed at the current step."""
    if value == EXAMPLES:
        show_examples(turn, frame)
        return
    note = turn.notes.pop("long", None)
    if not isinstance(note, dict) or note.get("step") != turn.step:
        turn.emit(Message(turn.text("step_passed")))
        return
    if value == SHORTER:
        turn.say("too_long_shorter")
        return
    await turn.engine.answer(turn, first_part(str(note["text"]), limit))
