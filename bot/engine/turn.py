"""The turn: everything one event works on, saved as a whole when the event is done.

A `Turn` holds the person's rows and their conversation (a stack of dialog frames, and the
frames they stopped), reads the dialog a frame is in, and writes outputs. Where the
conversation goes next is the flow's job (`bot/engine/flow.py`); a turn only starts,
resumes, finishes and stops dialogs, and hands over to the flow to show what comes next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine.catalog import Catalog, Locale
from bot.engine.events import DialogEnded, Message, Option, Output, Pause, Scale, UserRef
from bot.engine.frame import EARLIER_RUNS, Frame
from bot.engine.machine import DialogMachine
from bot.engine.parsing import (
    is_go_ahead,
    match_alias,
    match_choice,
    named_choice,
    near_choice,
    ordinal_choice,
    without_filler,
)
from bot.engine.schema import StateSpec
from bot.engine.texts import fill, pick
from storage import repo
from storage.crypto import Cipher
from storage.db import Step
from storage.models import Conversation, User

# The counter (User.counters) that remembers a "Not now" to storage.
DECLINED = "consent_declined"
# The frame param holding what a dialog's `remembered` answers were at its start, so a run
# stopped before the person wrote anything new leaves no "unfinished" entry behind.
REMEMBERED = "remembered"


def state_options(
    state: StateSpec, values: dict[str, Any], made: Sequence[tuple[str, str]] = ()
) -> tuple[Option, ...]:
    """The options a state offers: those made in code (`choices_from`) first, then its own
    choices, each numbered only if a typed number may pick it."""
    numbers = state.numbers and state.expect != "scale"  # at a scale a number is a rating
    own = tuple(
        Option(c.value, fill(c.label, values), numbers and c.by_number) for c in state.choices
    )
    if not state.choices_from:
        return own
    return tuple(Option(v, label, state.numbers) for v, label in made) + own


class Moves(Protocol):
    """The flow as a turn and the features see it through `turn.engine`: the dialog rules
    they read and the moves they may make. `bot.engine.flow.Flow` is the implementation;
    the turn names only this, so it never imports the flow that drives it."""

    catalog: Catalog
    onboarding: str
    menu: str
    first_words: str
    heard: str
    dialog_params: dict[str, dict[str, Any]]

    async def enter(self, turn: Turn) -> None: ...

    async def carry_on(self, turn: Turn) -> None: ...

    async def answer(self, turn: Turn, value: str | int) -> None: ...

    async def jump(self, turn: Turn, frame: Frame, state: str) -> None: ...

    async def open_dialog(self, turn: Turn, dialog: str, text: str = "") -> None: ...

    async def start_with(self, turn: Turn, dialog: str, text: str = "") -> None: ...

    async def hear(self, turn: Turn, text: str) -> bool: ...

    async def take_text(self, turn: Turn, text: str) -> None: ...


class Turn:
    """Everything one event works on; saved as a whole when the event is done."""

    def __init__(
        self,
        engine: Moves,
        cipher: Cipher,
        unit: Step,
        user: User,
        row: Conversation,
        state: dict[str, Any],
        locale: Locale,
        now: datetime,
        ref: UserRef | None = None,
        prepared: dict[str, Any] | None = None,
    ) -> None:
        # the dialog rules and moves (the running `Engine`), for features that move the flow
        self.engine = engine
        self.cipher = cipher
        # what the engine's preparers found for this event, by their names
        self.prepared: dict[str, Any] = prepared or {}
        self.ref = ref
        self.unit = unit
        self.user = user
        self.row = row
        self.stack = [Frame.from_json(f) for f in state.get("stack", [])]
        self.paused = {k: Frame.from_json(v) for k, v in state.get("paused", {}).items()}
        # what the engine remembers about how the person writes (bot/engine/habits.py)
        self.notes: dict[str, Any] = dict(state.get("notes", {}))
        # when the person last did something here (the engine's clock), if known; an event
        # that is not theirs (a reminder) sets `by_person` False and leaves it as it was
        self.last_at = _when(state.get("at"))
        self.by_person = True
        self.step = row.step
        self.locale = locale
        self.now = now
        self.outputs: list[Output] = []
        # the last message a `join` state made, and the text it was joined onto
        self._joined: tuple[Message, str] | None = None
        self.prompts = 0
        self.erased = False
        # the event's id at its source (a Telegram update id), if it has one
        self.seq: int | None = None

    # -- reading -------------------------------------------------------------------------
    @property
    def session(self) -> AsyncSession:
        """An AsyncSession in this event's transaction, opened on first use (most events
        never need one; see storage.db.Step)."""
        return self.unit.session

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    @property
    def consented(self) -> bool:
        return self.user.consented_at is not None

    @property
    def declined(self) -> bool:
        """The person said "Not now" to storage (and has not agreed since)."""
        return not self.consented and bool((self.user.counters or {}).get(DECLINED))

    def decline(self) -> None:
        counters = dict(self.user.counters or {})
        counters[DECLINED] = 1
        self.user.counters = counters

    def needs_consent(self, name: str) -> bool:
        """Whether dialog `name` must wait for the person's okay to storage (an unknown one
        does); an `unrecorded` one runs, keeping nothing, once they have said "Not now"."""
        machine = self.engine.catalog.dialog(name, self.locale.code)
        if machine is None:
            return True
        spec = machine.spec
        return (
            spec.requires_consent and not self.consented and not (spec.unrecorded and self.declined)
        )

    def machine(self, frame: Frame) -> DialogMachine:
        # the person's locale first, then the default's (called several times per step)
        found = self.locale.dialogs.get(frame.dialog) or self.engine.catalog.dialog(frame.dialog)
        if found is None:
            raise LookupError(f"dialog {frame.dialog!r} is not loaded")
        return found

    def spec(self, frame: Frame) -> StateSpec:
        return self.machine(frame).spec.states[frame.state]

    def values(self, frame: Frame) -> dict[str, Any]:
        values = {EARLIER_RUNS: frame.run, **frame.params, **frame.answers}
        for name, derived in self.machine(frame).spec.derived.items():
            before, after = (values.get(n) for n in derived.difference)
            if isinstance(before, int) and isinstance(after, int):
                values[name] = after - before
        return values

    def state_json(self) -> dict[str, Any]:
        return {
            "stack": [f.to_json() for f in self.stack],
            "paused": {k: f.to_json() for k, f in self.paused.items()},
            "notes": self.notes,
            **({"at": self.now.isoformat()} if self.by_person else _at(self.last_at)),
        }

    # -- writing -------------------------------------------------------------------------
    def emit(self, output: Output) -> None:
        self.outputs.append(output)

    def joined(self, message: Message, how: str | None) -> Message:
        """`message` shown in place of the plain message just emitted (`how`: "append" or
        "replace", a state's `join`), carrying the whole text; as it is when there is
        nothing to join (no `how`, or the last output is not a plain message of this step)."""
        last = next(
            (o for o in reversed(self.outputs) if not isinstance(o, Pause | DialogEnded)), None
        )
        if how is None or not isinstance(last, Message) or last.options or last.scale:
            return message
        if how == "append":
            base = last.text
        else:
            joined = self._joined
            base = joined[1] if joined is not None and joined[0] is last else ""
        text = f"{base}\n\n{message.text}" if base else message.text
        result = replace(message, text=text, edits=True)
        self._joined = (result, base)
        return result

    def text(self, key: str, **values: Any) -> str:
        return fill(self.locale.message(key, run=self.step), values)

    def say(self, key: str, **values: Any) -> None:
        self.emit(Message(self.text(key, **values)))

    def bump_counter(self, name: str) -> int:
        counters = dict(self.user.counters or {})
        value = counters.get(name, 0)
        counters[name] = value + 1
        self.user.counters = counters
        return value

    def render(self, frame: Frame, hint: str | None = None) -> Message:
        """The prompt of the frame's current state; `hint` replaces the text on a re-ask."""
        state = self.spec(frame)
        values = self.values(frame)
        text = hint or fill(
            pick(state.say, run=frame.run, salt=f"{frame.dialog}.{frame.state}"), values
        )
        options = state_options(state, values, frame.options)
        scale = Scale(state.scale.low, state.scale.high) if state.expect == "scale" else None
        waiting = state.expect in ("choice", "scale") or bool(options)
        location = fill(state.location, values) if state.location else ""
        return Message(text, options, scale, self.step if waiting else None, location=location)

    def typed_choice(self, frame: Frame, text: str) -> str | None:
        """The choice of the frame's current state that `text` names: its number in the list,
        its label or value, one of its aliases, its label with a slip, or its label's own words
        or an alias in a short answer ("breathing pls", "free pls"), or its place ("the second
        one"); None if none."""
        options = self.render(frame).options
        filler = self.text("choice_filler_words").split(",")
        found = (
            match_choice(text, options)
            or match_alias(text, self.spec(frame))
            or near_choice(text, options)
            or named_choice(text, options, filler)
            or ordinal_choice(text, options, self.text("ordinal_words").split(","), filler)
            or match_alias(without_filler(text, filler), self.spec(frame))
        )
        single = len(options) == 1 and options[0].numbered
        if found is None and single and is_go_ahead(text, self.text("go_ahead_words")):
            return options[0].value  # "ok", "next", "👍" at a step with one button
        return found

    def reprompt(self, hint: str | None = None) -> None:
        """Ask the current question again (state unchanged); nothing if nothing is open."""
        frame = self.top
        if frame is None:
            if hint:
                self.emit(Message(hint))
            return
        if self.spec(frame).expect == "none":
            if hint:
                self.emit(Message(hint))
            return
        self.emit(self.render(frame, hint))
        self.prompts += 1

    async def start_dialog(self, name: str, params: dict[str, Any] | None = None) -> None:
        """Push a dialog and show its first prompt (onboarding first if consent is needed).
        Words the person already wrote for it go through `Flow.start_with`."""
        machine = self.engine.catalog.dialog(name, self.locale.code)
        if machine is None:
            raise LookupError(f"dialog {name!r} is not loaded")
        spec = machine.spec
        if spec.requires_consent and spec.unrecorded and self.declined and not self.consented:
            self.say("unrecorded_note")
        elif spec.requires_consent and not self.consented:
            self.say("consent_first")
            if not (self.top and self.top.dialog == self.engine.onboarding):
                await self.start_dialog(self.engine.onboarding, {"then": name})
            else:
                self.reprompt()
            return
        defaults = self.engine.dialog_params.get(name, {})
        frame = Frame(
            dialog=name,
            state=spec.start,
            run=self.bump_counter(name),
            params={**defaults, **(params or {})},
        )
        if spec.entry and self.consented:  # without consent it runs, but nothing is kept
            if spec.remembered:
                found = await repo.latest_answers(
                    self.session,
                    user_id=self._uid,
                    kind=spec.entry,
                    names=spec.remembered,
                    cipher=self.cipher,
                )
                frame.answers.update(found)
                frame.params[REMEMBERED] = found
            frame.entry_id = await repo.create_entry(
                self.unit,
                user_id=self._uid,
                kind=spec.entry,
                dialog=name,
                cipher=self.cipher,
                started_at=self.now,
            )
        self.paused.pop(name, None)
        self.stack.append(frame)
        self.step += 1
        await self.engine.enter(self)

    async def resume(self, frame: Frame) -> None:
        """Put a paused frame back on top and ask its question again."""
        self.paused.pop(frame.dialog, None)
        await self._record(frame, "in_progress")
        self.stack.append(frame)
        self.step += 1
        if self.spec(frame).call:
            await self.engine.carry_on(self)
        else:
            self.reprompt()

    async def finish_top(self) -> Frame:
        frame = self.stack.pop()
        await self._record(frame, "finished", finished_at=self.now)
        self.emit(DialogEnded(frame.dialog, completed=True))
        return frame

    def erase(self) -> None:
        """The person's rows were deleted: clear the conversation and save nothing for them."""
        self.stack.clear()
        self.paused.clear()
        self.erased = True
        for obj in (self.user, self.row):
            self.unit.forget(obj)

    async def stop_all(self) -> bool:
        """Stop every open dialog; recorded ones are kept as unfinished and can be resumed,
        except a dialog about the moment (see `_stop_frame`)."""
        kept = False
        while self.stack:
            kept = await self._stop_frame(self.stack.pop()) or kept
        self.step += 1
        return kept

    async def stop_through(self, frame: Frame) -> bool:
        """Stop `frame` and whatever runs on top of it (asked for again: it is set aside for
        a fresh start); whether it is kept to be continued."""
        kept = False
        while any(f is frame for f in self.stack):
            kept = await self._stop_frame(self.stack.pop())
        self.step += 1
        return kept

    async def _stop_frame(self, frame: Frame) -> bool:
        """Close one stopped frame's entry; whether it is kept to be continued. A dialog that
        is about the moment (`resumable: false`, the check-in) keeps what it recorded as it
        stands, closed, and is never offered to continue."""
        kept = False
        carried = frame.params.get(REMEMBERED) or {}
        written = {k: v for k, v in frame.answers.items() if carried.get(k) != v}
        if frame.entry_id is not None and not written:
            # nothing written yet (what was remembered from an earlier run is kept there): an
            # empty "unfinished" entry would only clutter history
            await repo.delete_entry(self.unit, user_id=self._uid, entry_id=frame.entry_id)
        elif frame.entry_id is not None and not self.machine(frame).spec.resumable:
            await self._record(frame, "finished", finished_at=self.now)
        elif frame.entry_id is not None:
            await self._record(frame, "stopped")
            self.paused[frame.dialog] = frame
            kept = True
        self.emit(DialogEnded(frame.dialog, completed=False))
        return kept

    async def _record(
        self, frame: Frame, status: str, *, finished_at: datetime | None = None
    ) -> None:
        """Write a recorded dialog's answers so far to its entry (nothing for unrecorded)."""
        if frame.entry_id is not None:
            await repo.record_entry(
                self.unit,
                user_id=self._uid,
                entry_id=frame.entry_id,
                answers=frame.answers,
                status=status,
                cipher=self.cipher,
                finished_at=finished_at,
            )

    @property
    def _uid(self) -> int:
        assert self.user.id is not None
        return self.user.id


def _when(value: Any) -> datetime | None:
    """A stored ISO time back as a datetime; None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _at(when: datetime | None) -> dict[str, str]:
    return {} if when is None else {"at": when.isoformat()}
