"""The runner: one input event for one person in, a list of outputs out.

Per event: lock the person's conversation row, restore their frames, run the safety
interceptors (free text only), then the command, choice or answer, save, commit. Everything
a person could type wrong is answered gently and leaves their state unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine.catalog import Catalog, Locale
from bot.engine.events import (
    ChoiceMade,
    Command,
    DialogEnded,
    Edited,
    Event,
    Later,
    Location,
    Message,
    Option,
    Output,
    Pause,
    Reminder,
    Scale,
    Text,
    Unsupported,
    UserRef,
)
from bot.engine.machine import DialogMachine, Position
from bot.engine.outbox import Outbox, Reply
from bot.engine.schema import StateSpec
from bot.engine.texts import fill, pick
from storage import outbox as outbox_store
from storage import repo
from storage.db import Database, Step
from storage.models import Conversation, User, utcnow

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"stop", "cancel", "quit", "exit", "/stop"})
NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_SCALE = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*10|out of 10)?\s*[.!]?\s*$", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
MAX_AUTO_STEPS = 100
_APOSTROPHES = re.compile(r"['’‘`]")
# "/name" or "/name@bot", optionally followed by arguments ("/country GB").
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32}(?:@\w+)?)(?:\s+(.*))?$", re.DOTALL)


@dataclass
class Frame:
    """One running dialog in a person's conversation."""

    dialog: str
    state: str
    run: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    entry_id: int | None = None
    # (value, label) choices made in code for the current state (see StateSpec.choices_from).
    options: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dialog": self.dialog,
            "state": self.state,
            "run": self.run,
            "answers": self.answers,
            "params": self.params,
            "entry_id": self.entry_id,
            "options": [list(o) for o in self.options],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frame:
        return cls(
            dialog=data["dialog"],
            state=data["state"],
            run=data.get("run", 0),
            answers=dict(data.get("answers", {})),
            params=dict(data.get("params", {})),
            entry_id=data.get("entry_id"),
            options=[(str(v), str(label)) for v, label in data.get("options", [])],
        )


Action = Callable[["Turn", Frame], Awaitable[None]]
CommandHandler = Callable[["Turn", str], Awaitable[None]]
Interceptor = Callable[["Turn", str], Awaitable[bool]]
ReminderHandler = Callable[["Turn", Reminder], Awaitable[None]]
LocationHandler = Callable[["Turn", Location], Awaitable[None]]
# Work for an event done before its step, outside the transaction (the crisis screen runs in a
# worker thread here, so no one waits behind it under a lock); the result is `turn.prepared`.
Preparer = Callable[[UserRef, Event], Awaitable[Any]]
# Makes the outputs a `Later` stands for, after the step (see Engine.produce).
Producer = Callable[[UserRef, dict[str, Any]], Awaitable[list[Output]]]
# Answers for an event whose step could not run (the database is down): crisis help from memory.
Fallback = Callable[[UserRef, Event, dict[str, Any]], list[Output] | None]


def parse_command(text: str) -> tuple[str, str] | None:
    """("name", "args") for "/name args" or "/name@bot args"; None for anything else."""
    found = _COMMAND.match(text)
    if found is None:
        return None
    return found.group(1).split("@")[0].lower(), (found.group(2) or "").strip()


def screenable(event: Event) -> list[str]:
    """The free text in an event that the crisis screen reads: a message (a command's words
    after its name), an edit, a caption. Cleaned exactly as the dispatcher cleans it."""
    if isinstance(event, Text | Edited):
        text = clean_text(event.text)
        command = parse_command(text) if isinstance(event, Text) else None
        if command is not None:
            text = command[1]
        return [text] if text else []
    if isinstance(event, Unsupported):
        caption = clean_text(event.caption)
        return [caption] if caption else []
    if isinstance(event, Command):
        return [event.args.strip()] if event.args.strip() else []
    return []


def clean_text(text: str) -> str:
    """Normalize what a person typed: NFC, no invisible direction marks, trimmed."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return text.strip()


def has_words(text: str) -> bool:
    """True if the text has a letter or an emoji: a bare "." or "8" is not an answer in words."""
    return any(
        unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "So" for ch in text
    )


def parse_scale(text: str, scale: Scale) -> int | None:
    """A rating typed as `7`, `7/10`, `7 out of 10` or `seven`; None if it is not one."""
    word = text.strip().strip(".!").lower()
    if word in NUMBER_WORDS:
        value = NUMBER_WORDS[word]
    else:
        match = _SCALE.match(text)
        if not match:
            return None
        value = int(match.group(1))
    return value if scale.low <= value <= scale.high else None


class Turn:
    """Everything one event works on; saved as a whole when the event is done."""

    def __init__(
        self,
        engine: Engine,
        unit: Step,
        user: User,
        row: Conversation,
        state: dict[str, Any],
        locale: Locale,
        now: datetime,
        ref: UserRef | None = None,
        prepared: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        # what the engine's preparers found for this event, by their names
        self.prepared: dict[str, Any] = prepared or {}
        self.ref = ref
        self.unit = unit
        self.user = user
        self.row = row
        self.stack = [Frame.from_json(f) for f in state.get("stack", [])]
        self.paused = {k: Frame.from_json(v) for k, v in state.get("paused", {}).items()}
        self.step = row.step
        self.locale = locale
        self.now = now
        self.outputs: list[Output] = []
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
    def cipher(self) -> Any:
        return self.engine.db.cipher

    def machine(self, frame: Frame) -> DialogMachine:
        # the person's locale first, then the default's (called several times per step)
        found = self.locale.dialogs.get(frame.dialog) or self.engine.catalog.dialog(frame.dialog)
        if found is None:
            raise LookupError(f"dialog {frame.dialog!r} is not loaded")
        return found

    def spec(self, frame: Frame) -> StateSpec:
        return self.machine(frame).spec.states[frame.state]

    def values(self, frame: Frame) -> dict[str, Any]:
        values = {**frame.params, **frame.answers}
        for name, derived in self.machine(frame).spec.derived.items():
            before, after = (values.get(n) for n in derived.difference)
            if isinstance(before, int) and isinstance(after, int):
                values[name] = after - before
        return values

    def state_json(self) -> dict[str, Any]:
        return {
            "stack": [f.to_json() for f in self.stack],
            "paused": {k: f.to_json() for k, f in self.paused.items()},
        }

    # -- writing -------------------------------------------------------------------------
    def emit(self, output: Output) -> None:
        self.outputs.append(output)

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
        options = tuple(Option(c.value, fill(c.label, values)) for c in state.choices)
        if state.choices_from:
            options = tuple(Option(v, label) for v, label in frame.options) + options
        scale = Scale(state.scale.low, state.scale.high) if state.expect == "scale" else None
        waiting = state.expect in ("choice", "scale") or bool(options)
        return Message(text, options, scale, self.step if waiting else None)

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
        """Push a dialog and show its first prompt (onboarding first if consent is needed)."""
        machine = self.engine.catalog.dialog(name, self.locale.code)
        if machine is None:
            raise LookupError(f"dialog {name!r} is not loaded")
        spec = machine.spec
        if spec.requires_consent and not self.consented:
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
        """Stop every open dialog; recorded ones are kept as unfinished and can be resumed."""
        kept = False
        while self.stack:
            frame = self.stack.pop()
            if frame.entry_id is not None and not frame.answers:
                # nothing written yet: an empty "unfinished" entry would only clutter history
                await repo.delete_entry(self.unit, user_id=self._uid, entry_id=frame.entry_id)
            elif frame.entry_id is not None:
                await self._record(frame, "stopped")
                self.paused[frame.dialog] = frame
                kept = True
            self.emit(DialogEnded(frame.dialog, completed=False))
        self.step += 1
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


class Engine:
    """Runs dialogs for people; adapters call `handle`."""

    def __init__(
        self,
        catalog: Catalog,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_text_chars: int = 1000,
    ) -> None:
        self.catalog = catalog
        self.db = db
        self.clock = clock
        self.max_text_chars = max_text_chars
        self.onboarding = "onboarding"
        self.menu = "menu"
        self.resume_dialog = "resume"
        # Dialogs that step aside (are closed) when the person opens another one, like the menu.
        self.gives_way: set[str] = set()
        self.actions: dict[str, Action] = {}
        self.commands: dict[str, CommandHandler] = {}
        self.interceptors: list[Interceptor] = []
        # the subset of interceptors that screen for crisis language (also run on edits
        # and captions, where nothing else may act on the text)
        self.screens: list[Interceptor] = []
        # Params every start of a dialog gets (such as thresholds from settings).
        self.dialog_params: dict[str, dict[str, Any]] = {}
        self.reminders: dict[str, ReminderHandler] = {}
        # run in order before every event's step; see Preparer and Fallback
        self.preparers: dict[str, Preparer] = {}
        self.fallbacks: list[Fallback] = []
        # what makes each kind of `Later` output, after the step has committed
        self.producers: dict[str, Producer] = {}
        self.on_location: LocationHandler | None = None
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.outbox = Outbox(db)

    # -- public --------------------------------------------------------------------------
    async def handle(self, ref: UserRef, event: Event, *, seq: int | None = None) -> list[Output]:
        """Process one event for one person, strictly after their previous one; its outputs.

        `seq` identifies the event at its source (a Telegram update id). An event whose seq
        this person's conversation has already handled — a redelivery after a crash, which
        at-least-once delivery allows — is not processed again: no outputs, no state change.
        The check and the record of the seq are in the same transaction as the step itself.
        Nothing is kept for sending later: adapters that can lose a reply use `reply`.
        """
        return (await self._respond(ref, event, seq, keep=False)).outputs

    async def reply(self, ref: UserRef, event: Event, *, seq: int | None = None) -> Reply:
        """`handle`, with the outputs kept in the outbox in the step's own transaction.

        The adapter sends `reply.pending` and reports to `self.outbox` as it goes. A
        redelivered event (its seq already handled) gets back whatever of its reply is still
        unsent, so it is answered once, whether or not the crash came before the send.
        """
        return await self._respond(ref, event, seq, keep=True)

    async def produce(self, ref: UserRef, outputs: Sequence[Output]) -> list[Output]:
        """`outputs` with every `Later` replaced by what its producer makes.

        Called by adapters after the step has committed (no lock, no transaction held). A
        producer that fails is logged (never its content) and answered with a short apology,
        so the rest of the reply still goes out.
        """
        made: list[Output] = []
        for output in outputs:
            if not isinstance(output, Later):
                made.append(output)
                continue
            producer = self.producers.get(output.kind)
            try:
                if producer is None:
                    raise LookupError(f"no producer for {output.kind!r}")
                made.extend(await producer(ref, output.data))
            except Exception as exc:
                _log_failure(f"could not make {output.kind}", exc)
                made.append(
                    Message(self.catalog.locale(ref.locale).message("something_went_wrong"))
                )
        return made

    # -- internals -----------------------------------------------------------------------
    async def _respond(self, ref: UserRef, event: Event, seq: int | None, keep: bool) -> Reply:
        async with self.person_lock(ref.key):
            prepared = {name: await prepare(ref, event) for name, prepare in self.preparers.items()}
            for attempt in range(5):
                try:
                    return await self._handle_once(ref, event, seq, prepared, keep)
                except DBAPIError as exc:
                    if attempt == 4 or not _retryable(exc):
                        _log_failure("database error", exc)
                        break
                    await asyncio.sleep(0.05 * (2**attempt))
                except Exception as exc:
                    _log_failure("error while handling an event", exc)
                    break
            for fallback in self.fallbacks:
                outputs = fallback(ref, event, prepared)
                if outputs:
                    return Reply(outputs)
        locale = self.catalog.locale(ref.locale)
        return Reply([Message(locale.message("something_went_wrong"))])

    @asynccontextmanager
    async def person_lock(self, key: str) -> AsyncIterator[None]:
        """This process's lock on one person (`UserRef.key`): their steps, and anything sent
        to them out of turn (a reply left over from a crash), one at a time."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _handle_once(
        self, ref: UserRef, event: Event, seq: int | None, prepared: dict[str, Any], keep: bool
    ) -> Reply:
        """One step in one transaction: load (and lock) the rows, dispatch, save, commit.

        Three statements on the way for most steps (load, save, commit), run with Core on
        one connection; an ORM session is opened only if the step's own work asks for
        `turn.session` (entries, actions), in the same transaction. The outputs are
        returned only once the state that produced them is committed.
        """
        async with self.db.step() as unit:
            lock = self.db.is_postgres
            cipher = self.db.cipher
            found = await repo.load_person_core(
                unit,
                channel=ref.channel,
                external_id=ref.external_id,
                cipher=cipher,
                lock=lock,
            )
            if found is None and not await self._may_create(unit, ref, event, seq):
                return Reply()
            if found is None:  # first contact: rows are created through the session
                found = await repo.load_person(
                    unit.session,
                    channel=ref.channel,
                    external_id=ref.external_id,
                    locale=ref.locale,
                    cipher=cipher,
                    lock=lock,
                )
            user, row, state = found
            unit.keep(user)
            if seq is not None and seq in row.seen_seqs:
                log.info("an event already handled was delivered again")
                return await self._unsent(unit, user, seq) if keep else Reply()
            locale = self.catalog.locale(user.locale or ref.locale)
            turn = Turn(self, unit, user, row, state, locale, self.clock(), ref, prepared)
            turn.seq = seq
            await self._dispatch(turn, event)
            reply = Reply(turn.outputs)
            if not turn.erased:
                assert user.id is not None
                if unit.session_opened:
                    await unit.flush()  # entries, and the user's changed fields (kept)
                else:
                    await repo.save_user_changes(unit, user)
                await repo.save_conversation(
                    unit,
                    user_id=user.id,
                    state=turn.state_json(),
                    step=turn.step,
                    seen_seqs=row.seen_seqs if seq is None else [*row.seen_seqs, seq],
                    cipher=cipher,
                )
                if keep and turn.outputs:
                    reply.outbox_id = await outbox_store.add(
                        unit,
                        user_id=user.id,
                        seq=seq,
                        payload_enc=self.outbox.seal(turn.outputs),
                        now=turn.now,
                        lease=self.outbox.lease,
                        owner=self.outbox.owner,
                    )
            await unit.commit()
            return reply

    async def _may_create(self, unit: Step, ref: UserRef, event: Event, seq: int | None) -> bool:
        """Whether an event for someone without a conversation may create their rows. A
        reminder never creates a person (one for an unknown person was set by someone just
        forgotten); nor does a late copy of an update sent before the person's /forget
        (see storage.outbox.bury)."""
        if isinstance(event, Reminder):
            return await repo.user_exists(unit, channel=ref.channel, external_id=ref.external_id)
        if seq is None:
            return True
        return not await outbox_store.buried(
            unit, channel=ref.channel, external_id=ref.external_id, seq=seq
        )

    async def _unsent(self, unit: Step, user: User, seq: int) -> Reply:
        """What is left of the reply to a redelivered event, now held by this sender; an
        empty reply if it was all sent, or if a live sender still holds it."""
        assert user.id is not None
        stored = await outbox_store.for_seq(unit, user_id=user.id, seq=seq)
        if stored is None:
            return Reply()
        if not await self.outbox.take(unit, stored, self.clock(), force=False):
            return Reply()
        await unit.commit()
        return Reply(self.outbox.open(stored.payload_enc), stored.id, stored.sent)

    async def _dispatch(self, turn: Turn, event: Event) -> None:
        if isinstance(event, Text):
            text = clean_text(event.text)
            command = parse_command(text)
            if command:
                await self._command(turn, *command)
                return
            for interceptor in self.interceptors:
                if await interceptor(turn, text):
                    return
            if text.lower().strip(".! ") in STOP_WORDS:
                await self._stop(turn)
                return
            await self._text(turn, text)
        elif isinstance(event, Edited):
            # only the safety screens look at an edit; the dialog never takes it as an answer
            edited = clean_text(event.text)
            for screen in self.screens if edited else ():
                if await screen(turn, edited):
                    return
        elif isinstance(event, Command):
            await self._command(turn, event.name.lower(), event.args.strip())
        elif isinstance(event, ChoiceMade):
            await self._choice(turn, event)
        elif isinstance(event, Unsupported):
            caption = clean_text(event.caption)
            for interceptor in self.screens if caption else ():
                if await interceptor(turn, caption):
                    return
            turn.reprompt(turn.text("unsupported_input"))
        elif isinstance(event, Reminder):
            handler = self.reminders.get(event.kind)
            if handler is not None:
                await handler(turn, event)
            elif self.catalog.dialog(event.kind, turn.locale.code) and turn.top is None:
                await turn.start_dialog(event.kind)
        elif isinstance(event, Location):
            if self.on_location is None:
                turn.reprompt(turn.text("unsupported_input"))
            else:
                await self.on_location(turn, event)

    async def _command(self, turn: Turn, name: str, args: str) -> None:
        if args:
            # Words after a command are screened like any message ("/reframe I want to die").
            for interceptor in self.interceptors:
                if await interceptor(turn, args):
                    return
        if name in self.commands:
            top = turn.top
            if top and (
                top.dialog in (self.menu, self.resume_dialog) or top.dialog in self.gives_way
            ):
                turn.stack.pop()
            await self.commands[name](turn, args)
            return
        if name == "start":
            if not turn.consented:
                if turn.top and turn.top.dialog == self.onboarding:
                    turn.reprompt()
                else:
                    await turn.start_dialog(self.onboarding)
                return
            turn.say("welcome_back")
            if turn.top:
                turn.reprompt()
            else:
                await turn.start_dialog(self.menu)
            return
        if name == "help":
            turn.say("help")
            turn.reprompt()
            return
        if name in ("cancel", "stop"):
            await self._stop(turn)
            return
        dialog = self.catalog.command_dialogs().get(name)
        if dialog is None:
            turn.reprompt(turn.text("unknown_command", command=name[:32]))
            return
        await self.open_dialog(turn, dialog)

    async def open_dialog(self, turn: Turn, dialog: str) -> None:
        """Start a dialog on request: resume offer, already-here, or on top of the current."""
        top = turn.top
        if top and top.dialog == dialog:
            turn.say("already_here")
            turn.reprompt()
            return
        machine = self.catalog.dialog(dialog, turn.locale.code)
        needs_consent = machine is None or machine.spec.requires_consent
        if top and top.dialog == self.onboarding and not turn.consented and needs_consent:
            turn.say("consent_first")
            turn.reprompt()
            return
        self._step_aside(turn)
        if dialog in turn.paused and turn.consented:
            title = machine.spec.title if machine else dialog
            await turn.start_dialog(self.resume_dialog, {"target": dialog, "title": title})
            return
        await turn.start_dialog(dialog)

    def _step_aside(self, turn: Turn) -> None:
        """Close a menu-like dialog on top (menu, resume offer, history) for what comes next."""
        top = turn.top
        if top and (top.dialog in (self.menu, self.resume_dialog) or top.dialog in self.gives_way):
            turn.stack.pop()

    async def _stop(self, turn: Turn) -> None:
        if turn.top is None and not turn.consented:
            await turn.start_dialog(self.onboarding)  # a first contact still gets the introduction
            return
        if turn.top is None:
            turn.say("nothing_to_stop")
            return
        kept = await turn.stop_all()
        turn.say("stopped_saved" if kept else "stopped")

    async def _choice(self, turn: Turn, event: ChoiceMade) -> None:
        frame = turn.top
        if frame is None or (event.step is not None and event.step != turn.step):
            turn.emit(Message(turn.text("step_passed")))
            return
        state = turn.spec(frame)
        if state.expect == "scale":  # a pressed rating button
            rating = parse_scale(event.value, Scale(state.scale.low, state.scale.high))
            if rating is not None:
                await self.answer(turn, rating)
                return
        offered = {c.value for c in state.choices}
        if state.choices_from:
            offered.update(value for value, _ in frame.options)
        if state.expect == "text" and event.value in offered:
            # A shortcut under a question that wants words (e.g. "check in first"): the
            # other dialog opens on top, and this question is asked again when it ends.
            shortcut = next(c for c in state.choices if c.value == event.value)
            assert shortcut.start is not None  # the validator requires it
            await turn.start_dialog(shortcut.start)
            return
        if state.expect != "choice" or event.value not in offered:
            log.warning("ignored a choice that the current step does not offer")
            turn.emit(Message(turn.text("step_passed")))
            return
        await self.answer(turn, event.value)

    async def _text(self, turn: Turn, text: str) -> None:
        frame = turn.top
        if frame is None:
            if not turn.consented:
                await turn.start_dialog(self.onboarding)
            else:
                turn.say("idle")
                await turn.start_dialog(self.menu)
            return
        state = turn.spec(frame)
        if state.expect == "text":
            if not text:
                turn.say("empty_text")
            elif turn.machine(frame).spec.entry and not has_words(text):
                turn.say("need_words")  # a journal answer needs words; settings may not
            elif len(text) > self.max_text_chars:
                turn.say("too_long", limit=self.max_text_chars, length=len(text))
            else:
                await self.answer(turn, text)
        elif state.expect == "choice":
            value = typed_choice(turn, frame, text)
            if value is None:
                turn.reprompt(_retry(turn, frame) or turn.text("pick_an_option"))
            else:
                await self.answer(turn, value)
        elif state.expect == "scale":
            scale = Scale(state.scale.low, state.scale.high)
            rating = parse_scale(text, scale)
            if rating is None:
                hint = _retry(turn, frame)
                turn.reprompt(hint or turn.text("scale_hint", low=scale.low, high=scale.high))
            else:
                await self.answer(turn, rating)
        else:
            turn.reprompt()

    async def answer(self, turn: Turn, value: str | int) -> None:
        """Store the answer to the current state and move on."""
        frame = turn.top
        assert frame is not None
        state = turn.spec(frame)
        if state.store:
            frame.answers[state.store] = value
        if state.expect == "choice":
            choice = next((c for c in state.choices if c.value == value), None)
            if choice is not None and choice.start:
                await turn.finish_top()
                await self.open_dialog(turn, choice.start)
                return
        position = Position(
            frame.state, turn.values(frame), choice=value if isinstance(value, str) else None
        )
        if not turn.machine(frame).advance(position):
            raise RuntimeError(f"no transition from {frame.dialog}.{frame.state}")
        frame.state = position.state
        turn.step += 1
        await self.enter(turn)

    async def enter(self, turn: Turn) -> None:
        """Show the state just entered; run through states that wait for nothing."""
        for _ in range(MAX_AUTO_STEPS):
            frame = turn.top
            if frame is None:
                return
            state = turn.spec(frame)
            frame.answers.update(state.record)
            if state.choices_from:
                await self.actions[state.choices_from](turn, frame)
            if state.say:
                turn.emit(turn.render(frame))
                turn.prompts += 1
            if state.pause:
                turn.emit(Pause(state.pause))
            if state.end:
                await turn.finish_top()
                before = turn.prompts
                if state.action:
                    await self.actions[state.action](turn, frame)
                if state.start:
                    await self.open_dialog(turn, state.start)
                below = turn.top
                if turn.prompts == before and below is not None:
                    if turn.spec(below).call:
                        await self.carry_on(turn)
                    else:
                        turn.say("back_to_previous")
                        turn.reprompt()
                return
            if state.action:
                await self.actions[state.action](turn, frame)
                if turn.top is not frame:
                    return
            if state.call:
                await turn.start_dialog(state.call)
                if turn.top is not frame:
                    return
            if state.expect != "none":
                return
            position = Position(frame.state, turn.values(frame))
            if not turn.machine(frame).advance(position):
                raise RuntimeError(f"no transition from {frame.dialog}.{frame.state}")
            frame.state = position.state
            turn.step += 1
        raise RuntimeError("too many steps without waiting for the person")

    async def carry_on(self, turn: Turn) -> None:
        """The top frame waited at a `call` state for a dialog that has ended: move on."""
        frame = turn.top
        assert frame is not None
        position = Position(frame.state, turn.values(frame))
        if not turn.machine(frame).advance(position):
            raise RuntimeError(f"no transition from {frame.dialog}.{frame.state}")
        frame.state = position.state
        turn.step += 1
        await self.enter(turn)


def match_choice(text: str, options: tuple[Option, ...]) -> str | None:
    """A choice typed instead of pressed: its number in the list, or its label."""
    wanted = _plain(text)
    if wanted.isdigit():
        index = int(wanted) - 1
        return options[index].value if 0 <= index < len(options) else None
    for option in options:
        if wanted and (_plain(option.label) == wanted or option.value == wanted):
            return str(option.value)
    return None


def typed_choice(turn: Turn, frame: Frame, text: str) -> str | None:
    """The choice of the frame's current state that `text` names: its number in the list,
    its label or value, or one of its aliases; None if it names none."""
    return match_choice(text, turn.render(frame).options) or match_alias(text, turn.spec(frame))


def _plain(text: str) -> str:
    """Letters, digits and single spaces, case-folded: "Older ▶" and "older" match."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.casefold())
    return " ".join(kept.split())


def match_alias(text: str, state: StateSpec) -> str | None:
    """A typed answer listed among a choice's `aliases` ("no", "not really"); apostrophes
    are dropped first, so "I'm safe" matches the alias "im safe" and the other way round."""
    wanted = _plain(_APOSTROPHES.sub("", text))
    for choice in state.choices:
        if any(_plain(_APOSTROPHES.sub("", alias)) == wanted for alias in choice.aliases):
            return choice.value
    return None


def _retry(turn: Turn, frame: Frame) -> str | None:
    """The state's own words for an answer it did not understand, if it has any."""
    state = turn.spec(frame)
    if not state.retry:
        return None
    salt = f"{frame.dialog}.{frame.state}.retry"
    return fill(pick(state.retry, run=frame.run, salt=salt), turn.values(frame))


def _retryable(exc: DBAPIError) -> bool:
    text = type(exc.orig).__name__ + str(exc.orig)
    return any(
        s in text for s in ("locked", "busy", "Deadlock", "Serialization", "could not serialize")
    )


def _log_failure(what: str, exc: BaseException) -> None:
    """Log where it failed, never the message (it may quote what a person wrote)."""
    frames = "".join(
        f"  {f.filename}:{f.lineno} in {f.name}\n" for f in traceback.extract_tb(exc.__traceback__)
    )
    log.error("%s: %s\n%s", what, type(exc).__name__, frames)


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


CORE_ACTIONS: dict[str, Action] = {
    "give_consent": give_consent,
    "resume_paused": resume_paused,
    "start_fresh": start_fresh,
}
