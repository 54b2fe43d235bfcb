"""Routing: which move an event makes — a command, a screen's pause, a choice, an answer.

Everything a person could type wrong is answered gently here and leaves their state as it
was: a button from an old message, a rating out of range, a word where a choice is wanted.
Free text passes the screens (the crisis screen) first, then the other interceptors, and
only then reaches the dialog.
"""

from __future__ import annotations

import logging
import string
from datetime import datetime

from bot.engine import habits
from bot.engine.catalog import Catalog
from bot.engine.events import (
    ChoiceMade,
    Command,
    Edited,
    Event,
    Location,
    Message,
    Reminder,
    Scale,
    Text,
    Unsupported,
)
from bot.engine.feature import (
    CommandGuard,
    CommandHandler,
    Interceptor,
    LocationHandler,
    ReminderHandler,
)
from bot.engine.flow import Flow
from bot.engine.frame import Frame
from bot.engine.parsing import (
    clean_text,
    has_words,
    is_stop,
    match_alias,
    match_choice,
    parse_command,
    parse_scale,
)
from bot.engine.schema import DialogSpec
from bot.engine.texts import fill, pick
from bot.engine.turn import Turn

log = logging.getLogger(__name__)

# Words from which a sentence typed at a list or the country question is someone telling how
# they are, heard as such (the `heard` dialog) instead of "please pick one".
HEARD_WORDS = 7
# Joiners and variation selectors inside an emoji ("☹️" is ☹ + U+FE0F), and skin tones.
_EMOJI_GLUE = frozenset("\u200d\ufe0f\ufe0e") | frozenset(map(chr, range(0x1F3FB, 0x1F400)))


class Router(Flow):
    """Turns one event into moves of the flow; the `Engine` runs it inside a step."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_text_chars: int = 1000,
        split_seconds: float = 0.0,
        quiet_seconds: float = 0.0,
    ) -> None:
        super().__init__(catalog)
        self.max_text_chars = max_text_chars
        # see bot/engine/habits.py: quick messages joined into one answer, corrections spaced
        self.split_seconds = split_seconds
        self.quiet_seconds = quiet_seconds
        self.commands: dict[str, CommandHandler] = {}
        # crisis screens: run before the interceptors, and alone on edits and captions, where
        # nothing else may act on the text
        self.screens: list[Interceptor] = []
        self.interceptors: list[Interceptor] = []
        self.command_guards: list[CommandGuard] = []
        self.reminders: dict[str, ReminderHandler] = {}
        self.on_location: LocationHandler | None = None

    async def dispatch(self, turn: Turn, event: Event) -> None:
        """Make the move `event` asks for, or answer why none can be made."""
        if isinstance(event, Text):
            text = clean_text(event.text)
            command = parse_command(text)
            if command:
                await self._command(turn, *command)
            elif await self._intercepted(turn, text):
                return
            elif is_stop(text):
                await self._stop(turn)
            elif not await self._after_gap(turn, text):
                await self._text(turn, text, event.at or turn.now)
        elif isinstance(event, Edited):
            # only the safety screens look at an edit; the dialog never takes it as an answer
            edited = clean_text(event.text)
            if edited:
                await self._intercepted(turn, edited, screens_only=True)
        elif isinstance(event, Command):
            await self._command(turn, event.name.lower(), event.args.strip())
        elif isinstance(event, ChoiceMade):
            await self._choice(turn, event)
        elif isinstance(event, Unsupported):
            caption = clean_text(event.caption)
            if not (caption and await self._intercepted(turn, caption, screens_only=True)):
                hint = turn.text("unsupported_input")
                habits.correct(turn, hint, hint, turn.now, self.quiet_seconds)
        elif isinstance(event, Reminder):
            turn.by_person = False  # a reminder is not the person coming back
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

    async def _intercepted(self, turn: Turn, text: str, *, screens_only: bool = False) -> bool:
        """Whether a screen, or then (unless `screens_only`) an interceptor, took the text."""
        for hook in self.screens if screens_only else (*self.screens, *self.interceptors):
            if await hook(turn, text):
                return True
        return False

    async def _command(self, turn: Turn, name: str, args: str) -> None:
        # Words after a command are screened like any message ("/reframe I want to die").
        if args and await self._intercepted(turn, args):
            return
        for guard in self.command_guards:
            if await guard(turn, name, args):
                return
        if name in self.commands:
            self.step_aside(turn)
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
        await self.open_dialog(turn, dialog, args)

    async def take_text(self, turn: Turn, text: str) -> None:
        """Words written with a command ("/checkin 7"), or first words carried through the
        consent question, as the answer to the question its dialog just asked; already
        screened when they came, so only the other features' interceptors (a typed time in
        the settings) and the dialog read them."""
        for hook in self.interceptors:
            if await hook(turn, text):
                return
        await self._text(turn, text, turn.now)

    async def _stop(self, turn: Turn) -> None:
        if turn.top is None and turn.declined:
            turn.say("declined_idle")
            return
        if turn.top is None and not turn.consented:
            await turn.start_dialog(self.onboarding)  # a first contact still gets the introduction
            return
        if turn.top is None:
            turn.say("nothing_to_stop")
            return
        moment = _about_the_moment(turn)
        kept_by = _kept_by(turn)
        kept = await turn.stop_all()
        if moment is not None and moment.command:  # never "saved as unfinished"
            turn.say("stopped_now", title=moment.title, command=moment.command)
        elif moment is not None:  # a practice about the moment, opened from a library
            turn.say("stopped_now_plain")
        elif kept and kept_by is not None and kept_by.command:
            turn.say("stopped_saved", command=kept_by.command)
        else:
            # one without a command of its own (a practice, opened from /practices)
            turn.say("stopped_saved_again" if kept else "stopped")

    async def _choice(self, turn: Turn, event: ChoiceMade) -> None:
        frame = turn.top
        if frame is None or (event.step is not None and event.step != turn.step):
            if not await self._stale_start(turn, event):
                turn.emit(Message(turn.text("step_passed")))
            return
        if event.value in habits.OWN_CHOICES:  # the engine's own buttons (examples, long text)
            await habits.chosen(turn, frame, event.value, self.limit(turn, frame))
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
        if state.expect in ("text", "scale") and event.value in offered:
            await self._text_button(turn, frame, event.value)
            return
        if state.expect != "choice" or event.value not in offered:
            if await self._stale_start(turn, event):
                return
            log.warning("ignored a choice that the current step does not offer")
            turn.emit(Message(turn.text("step_passed")))
            return
        await self.answer(turn, event.value)

    def limit(self, turn: Turn, frame: Frame) -> int:
        """The longest text the question open now takes: its own `max_chars` where a dialog
        asks for long writing (a journal), else the MAX_TEXT_CHARS setting."""
        return turn.spec(frame).max_chars or self.max_text_chars

    def _first_words(self, turn: Turn, text: str) -> bool:
        """Whether a first message says something worth carrying ("I feel like such a
        failure today"), not a greeting ("hi there") or a word or two."""
        words = text.split()
        if len(words) < 3 or not has_words(text) or len(text) > self.max_text_chars:
            return False
        greetings = {w.strip().lower() for w in turn.text("greeting_words").split(",")}
        opening = " ".join(words[:2]).lower().strip(string.punctuation)
        return not any(opening == g or opening.startswith(g + " ") for g in greetings if g)

    def _unburdening(self, turn: Turn, frame: Frame, text: str) -> bool:
        """Whether `text`, typed at a choice of a dialog that gives way, is someone telling
        how they are ("I'm in so much pain right now"): first words of `HEARD_WORDS` words
        or more. Shorter ones ("hmm not sure", "I don't know which one") are about the
        question and get its hint."""
        return (
            frame.dialog in self.gives_way
            and len(text.split()) >= HEARD_WORDS
            and self._first_words(turn, text)
            and self.catalog.dialog(self.heard) is not None
        )

    def _hard_feeling(self, turn: Turn, text: str) -> bool:
        """Whether `text` is only emoji of a hard feeling ("😭😭😭", "💔"), from the dialog
        files' `feeling_emoji`."""
        shown = "".join(ch for ch in text if not ch.isspace() and ch not in _EMOJI_GLUE)
        if not shown:
            return False
        signs = {
            glued
            for sign in turn.text("feeling_emoji").split(",")
            if (glued := "".join(ch for ch in sign.strip() if ch not in _EMOJI_GLUE))
        }
        longest = max(map(len, signs), default=0)
        i = 0
        while i < len(shown):  # each emoji in turn, the longest sign first (😮‍💨 before 😮)
            size = next((n for n in range(longest, 0, -1) if shown[i : i + n] in signs), 0)
            if not size:
                return False
            i += size
        return True

    def _writing(self, turn: Turn, text: str) -> bool:
        """Whether `text` is someone writing (three words or more, not a greeting), at any
        length: a choice's `typed` question takes what is too long for first words."""
        return self._first_words(turn, text[: self.max_text_chars])

    async def _typed_instead(
        self, turn: Turn, frame: Frame, target: str, text: str, at: datetime
    ) -> None:
        """Words written where a choice was asked: the answer to the choice's `typed` text
        question, as if it had been picked and answered; its question is not shown too."""
        mark = len(turn.outputs)
        await self.jump(turn, frame, target)
        shown = len(turn.outputs)
        await self._text(turn, text, at)
        if turn.top is not frame or frame.state != target:
            said = [i for i in range(mark, shown) if isinstance(turn.outputs[i], Message)]
            if said:
                del turn.outputs[said[-1]]

    async def _stale_start(self, turn: Turn, event: ChoiceMade) -> bool:
        """A button from an earlier message that starts a dialog ("Work with a harsh
        thought" in an old menu) still does what it says, as its command would: starting a
        dialog is always safe. Any other old button changes nothing."""
        if event.value not in self._starting_buttons():
            return False
        self.step_aside(turn)
        await self.open_dialog(turn, event.value)
        return True

    def _starting_buttons(self) -> set[str]:
        """Values of buttons that start the dialog of the same name (menu, shortcuts)."""
        return {
            choice.value
            for machine in self.catalog.locales[self.catalog.default].dialogs.values()
            for state in machine.spec.states.values()
            for choice in state.choices
            if choice.start == choice.value
        }

    async def _after_gap(self, turn: Turn, text: str) -> bool:
        """Typed after hours away, into a journal dialog left open: not taken as the answer
        to the old question. Greet, and offer to carry on or start afresh (the
        `returning` dialog, on top; the old one waits below)."""
        frame = turn.top
        last = turn.last_at
        if frame is None or last is None or turn.now - last < self.gap or not text:
            return False
        spec = turn.machine(frame).spec
        if spec.entry is None or self.catalog.dialog(self.returning) is None:
            return False
        params = {"title": spec.title, "thought": str(frame.answers.get("thought") or "")}
        await turn.start_dialog(self.returning, params)
        return True

    async def _text(self, turn: Turn, text: str, at: datetime) -> None:
        frame = turn.top
        if frame is None:
            if await habits.add_to_saved(
                turn, text, at, window=self.split_seconds, limit=self.max_text_chars
            ):
                return
            if turn.declined:
                turn.say("declined_idle")  # what works without storage, not the welcome again
            elif not turn.consented and self._first_words(turn, text):
                # words that matter, before anything else: heard first, and carried through
                # the consent question to where they belong
                turn.say("heard_you")
                await turn.start_dialog(
                    self.onboarding, {"then": self.first_words, "thought": text}
                )
            elif not turn.consented:
                await turn.start_dialog(self.onboarding)
            elif self._first_words(turn, text) and self.catalog.dialog(self.heard):
                await turn.start_dialog(self.heard, {"thought": text})
            elif self._hard_feeling(turn, text) and self.catalog.dialog(self.menu):
                mark = len(turn.outputs)
                await turn.start_dialog(self.menu)
                if len(turn.outputs) == mark + 1:  # the menu's question: asked with the hint
                    del turn.outputs[mark]
                    turn.reprompt(turn.text("feeling_heard"))
            else:
                turn.say("idle")
                await turn.start_dialog(self.menu)
            return
        split, limit = self.split_seconds, self.limit(turn, frame)
        if habits.grow_long(turn, text, at, split, limit) or habits.join_split(
            turn, frame, text, at, window=split, limit=limit
        ):
            return
        state = turn.spec(frame)
        if state.expect == "text" and state.choices:
            # A button's number (as the terminal lists them), its exact label or one of its
            # aliases ("no thanks" for a skip), typed; a ready answer's label typed is simply
            # the person's own words.
            value = match_choice(text, turn.render(frame).options) or match_alias(text, state)
            button = next((c for c in state.choices if c.value == value), None)
            if button and (button.start or button.next or text.strip().isdigit()):
                await self._text_button(turn, frame, button.value)
                return
        if state.expect == "text":
            journal = turn.machine(frame).spec.keeps_words
            if not text:
                turn.say("empty_text")
            elif journal and not has_words(text):
                turn.say("need_words")  # a journal answer needs words; settings may not
            elif len(text) > limit:
                habits.offer_first_part(turn, text, at, limit)
            elif journal and habits.nudge_throwaway(turn, text):
                return
            else:
                await self.answer(turn, text)
                habits.remember_answer(turn, frame, state.store, at)
        elif state.expect == "choice":
            value = turn.typed_choice(frame, text)
            if (
                value is None
                and frame.dialog == self.menu
                and self._first_words(turn, text)
                and self.catalog.dialog(self.heard)
            ):
                # what's on their mind, typed at the menu rather than picked: heard first
                await self.hear(turn, text)
            elif value is None and state.typed and self._writing(turn, text):
                await self._typed_instead(turn, frame, state.typed, text, at)
            elif value is None and self._unburdening(turn, frame, text):
                # a sentence about how they are, where a dialog that gives way (the country
                # question, a list) asked for a pick: heard, not "please pick one"
                await self.hear(turn, text)
            elif value is None and frame.dialog == self.menu and self._hard_feeling(turn, text):
                turn.reprompt(turn.text("feeling_heard"))  # "😭😭" at the menu
            elif value is None and _names_unnumbered(turn, frame, text):
                turn.reprompt(turn.text("not_by_number"))
            elif value is None:
                # "typing its number works too" where most options have a number (a week's
                # days beside "Back"), not at a deletion's "Yes" / "No, keep it"
                options = turn.render(frame).options
                by_number = 2 * sum(o.numbered for o in options) > len(options)
                hint = _retry(turn, frame) or turn.text(
                    "pick_an_option" if by_number else "pick_by_words"
                )
                brief = turn.text("pick_above" if by_number else "pick_above_by_words")
                habits.correct(turn, hint, brief, at, self.quiet_seconds)
            else:
                await self.answer(turn, value)
        elif state.expect == "scale":
            scale = Scale(state.scale.low, state.scale.high)
            rating = parse_scale(text, scale, turn.text("scale_filler_words").split(","))
            way_round = None if rating is not None else turn.typed_choice(frame, text)
            if way_round is not None:
                await self._text_button(turn, frame, way_round)  # "skip", in words
            elif rating is None:
                values = {"low": scale.low, "high": scale.high}
                hint = _retry(turn, frame) or turn.text("scale_hint", **values)
                brief = turn.text("scale_above", **values)
                habits.correct(turn, hint, brief, at, self.quiet_seconds)
            else:
                await self.answer(turn, rating)
        else:
            turn.reprompt()

    async def _text_button(self, turn: Turn, frame: Frame, value: str) -> None:
        """A button under a text question, pressed (or its number typed), or under a scale
        (pressed, or its words typed), where it can only go round the question."""
        button = next(c for c in turn.spec(frame).choices if c.value == value)
        if button.start:
            # A shortcut (e.g. "check in first"): the other dialog opens on top, and this
            # question is asked again when it ends.
            await turn.start_dialog(button.start)
        elif button.next:
            # A way round the question ("skip", "this feels fake"): nothing is stored.
            await self.jump(turn, frame, button.next)
        else:
            # A ready answer beside free text (a feeling word): as if its label were typed.
            await self.answer(turn, button.label)


def _about_the_moment(turn: Turn) -> DialogSpec | None:
    """The recorded dialog about the moment (the check-in) a stop would close, if any."""
    for frame in reversed(turn.stack):
        spec = turn.machine(frame).spec
        if spec.entry is not None:
            return None if spec.resumable else spec
    return None


def _kept_by(turn: Turn) -> DialogSpec | None:
    """The recorded dialog nearest the top, whose words a stop keeps as unfinished."""
    for frame in reversed(turn.stack):
        spec = turn.machine(frame).spec
        if spec.entry is not None:
            return spec
    return None


def _names_unnumbered(turn: Turn, frame: Frame, text: str) -> bool:
    """Whether a typed number is the place of a button no number picks ("8" for "Turn it
    off"), so the person is told to tap it or use words instead."""
    typed = text.strip().rstrip(".")
    if not typed.isdigit():
        return False
    options = turn.render(frame).options
    index = int(typed) - 1
    return 0 <= index < len(options) and not options[index].numbered


def _retry(turn: Turn, frame: Frame) -> str | None:
    """The state's own words for an answer it did not understand, if it has any."""
    state = turn.spec(frame)
    if not state.retry:
        return None
    salt = f"{frame.dialog}.{frame.state}.retry"
    return fill(pick(state.retry, run=frame.run, salt=salt), turn.values(frame))
