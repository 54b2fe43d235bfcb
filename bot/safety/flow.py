"""The crisis pause and everything around it, plugged into the engine as one `Feature`.

- a preparer screens every free-text message before its step, in a worker thread, with the
  person's last few messages (`assess.py`: patterns and the semantic model); the feature's
  screen acts on the verdict before any interceptor or dialog sees the text; on a match the
  `crisis` dialog is pushed on top of wherever the person was (its first message names their
  country's helpline and emergency number), and "I'm safe" returns them to that exact step;
- `/sos` opens the same pause on request, `/help` adds the contacts, `/country XX` chooses
  whose contacts to show;
- actions for the safety plan (shown inside the crisis dialog) and the crisis record;
- a fallback for when the database is down: a crisis message, `/sos` and `/help` still get
  the helplines (they are in memory), with a plain word that the message was not saved.

The words that matched are never stored as an answer and never logged: only the category,
the level and the dialog step are recorded (`safety_events`), and only with consent.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import metrics
from bot.engine.catalog import LOCALE_FOLDER, Catalog, DialogsInvalid
from bot.engine.core import carried
from bot.engine.events import Command, Event, Message, Output, Text, UserRef
from bot.engine.feature import Feature
from bot.engine.frame import Frame
from bot.engine.parsing import clean_text, parse_command, screenable
from bot.engine.routing import HEARD_WORDS
from bot.engine.texts import fill
from bot.engine.turn import Turn
from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml
from bot.safety.assess import Assessor
from bot.safety.helplines import (
    Country,
    Helplines,
    contact_list,
    describe,
    emergency_of,
    load_helplines,
    region_of,
    resolve_country,
)
from bot.safety.screen import PATTERN_FILE, Screen, ScreenResult, load_screen
from storage import repo

log = logging.getLogger(__name__)

CRISIS = "crisis"
SOS = "sos"
COUNTRY_OFFERS = frozenset({"offer", "offer_plain"})
# The question a crisis pause comes back to, and the choice that ends it (dialogs/en/crisis.yaml).
PAUSE_QUESTION = "after"
SAFE_CHOICE = "safe"
# Asked once after consent, skippable: which country's contacts to show.
CHOOSE_COUNTRY = "choose_country"
# A pause opened gently (check, someone else's crisis) reopens with the direct words when
# the person then writes about a crisis of their own; any pause does for immediate danger.
CRISIS_LEVEL = "crisis"
WORRIED = "worried"  # someone else in danger: what to do for them, then the person
CHECK = "check"  # unsure: "are you safe right now?"
GENTLE_LEVELS = frozenset({CHECK, WORRIED, "concern"})
IMMEDIATE_DANGER = "immediate_danger"
# Commands that run at once in a crisis pause: they help, or say where help is, or leave it.
# Any other dialog's command waits until the person says they are safe (`pause_first`).
PAUSE_COMMANDS = frozenset(
    {"sos", "help", "country", "cancel", "stop", "start", "breathe", "grounding", "safetyplan"}
)
# The key of the screen's verdicts in `turn.prepared` ({text: ScreenResult | None}).
PREPARED = "safety"
# People whose country is remembered in memory, for crisis help when the database is down.
REMEMBERED_COUNTRIES = 10_000
# A check-in rated this high or higher shows the crisis contacts before grounding.
CHECKIN_CONTACTS_FROM = 9
PLAN_PARTS = (
    "warning_signs",
    "helps",
    "distractions",
    "people",
    "professionals",
    "safer_space",
)
# Keys this module reads from each locale's messages.yaml.
SAFETY_MESSAGES = frozenset(
    {
        "help_contacts",
        "helpline_call",
        "helpline_text",
        "helpline_text_keyword",
        "helpline_line",
        "helpline_or",
        "helpline_hours",
        "emergency_unknown",
        "sos_again",
        "checkin_contacts",
        "country_current",
        "country_current_none",
        "country_set",
        "country_set_unknown",
        "country_reset",
        "country_reset_none",
        "country_bad_code",
        "safety_plan_shown",
        "safety_plan_none",
        "safety_plan_skip_words",
        "offline_crisis",
        "offline_sos",
        "pause_still_here",
        "pause_heard",
        "pause_heard_worried",
        "sos_again_question",
        "country_skip_words",
        "country_lead_words",
        *(f"plan_part_{part}" for part in PLAN_PARTS),
    }
)


@dataclass
class Safety:
    """Loaded safety data plus the operator's settings for it."""

    screens: dict[str, Screen]
    default_locale: str
    helplines: Helplines
    default_country: str | None = None
    assessor: Assessor = field(init=False)
    # why the semantic layer is off (None: it is on)
    semantic_problem: str | None = None
    # each person's country as last seen, for crisis help without the database
    _countries: OrderedDict[str, str | None] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.assessor = Assessor(self.screens, self.default_locale)

    def screen(self, locale: str) -> Screen:
        return self.screens.get(locale) or self.screens[self.default_locale]

    def country(self, turn: Turn) -> Country:
        tag = turn.ref.language_tag if turn.ref else None
        code = resolve_country(turn.user.country, tag, self.default_country)
        if turn.ref is not None:
            self._countries[turn.ref.key] = code
            self._countries.move_to_end(turn.ref.key)
            while len(self._countries) > REMEMBERED_COUNTRIES:
                self._countries.popitem(last=False)
        return self.helplines.get(code)

    def remembered_country(self, ref: UserRef) -> Country:
        """The person's country without the database: as last seen, else from their tag."""
        code = self._countries.get(ref.key) or resolve_country(
            None, ref.language_tag, self.default_country
        )
        return self.helplines.get(code)

    def crisis_params(self, turn: Turn, category: str, level: str) -> dict[str, str]:
        """What the crisis texts quote: helpline(s), emergency number, the full list."""
        return self.params_for(self.country(turn), turn.text, category, level)

    def params_for(
        self, country: Country, text: Callable[..., str], category: str, level: str
    ) -> dict[str, str]:
        primary = country.primary(category)
        return {
            "level": level,
            "category": category,
            "helpline": "\n".join(describe(h, text) for h in primary),
            "emergency": emergency_of(country, text),
            "contacts": contact_list(country, text),
        }


# -- loading ---------------------------------------------------------------------------------
def validate_safety(root: Path, *, default: str = "en") -> list[SourceError]:
    """Every problem in the pattern files, helpline files and safety messages (with lines)."""
    errors, _ = _load(root, default=default)
    return errors


def load_safety(
    root: Path,
    *,
    default: str = "en",
    default_country: str | None = None,
    semantic: bool = True,
    examples: Path | None = None,
) -> Safety:
    """Patterns, helplines and (unless `semantic` is off) the semantic model.

    If the model cannot load, the screen runs on patterns only and says so loudly, on
    standard error and in the log: it never starts silently weaker. The model's module (and
    numpy) is imported only when it is loaded. `examples`: its folder (default: the shipped
    one)."""
    errors, safety = _load(root, default=default)
    if errors or safety is None:
        raise DialogsInvalid(errors)
    safety.default_country = default_country.upper() if default_country else None
    if not semantic:
        safety.semantic_problem = "turned off by the operator (SEMANTIC_SCREEN=false)"
    else:
        from bot.safety.semantic import EXAMPLES, ExamplesInvalid, ModelUnavailable, load_semantic

        try:
            safety.assessor.semantic = load_semantic(examples or EXAMPLES)
        except (ModelUnavailable, ExamplesInvalid, OSError) as exc:
            safety.semantic_problem = str(exc)
    if safety.semantic_problem:
        warning = (
            "WARNING: the crisis screen's semantic layer is OFF "
            f"({safety.semantic_problem}); screening on patterns only"
        )
        log.error("%s", warning)
        print(f"kindbot: {warning}", file=sys.stderr)
    return safety


def _load(root: Path, *, default: str) -> tuple[list[SourceError], Safety | None]:
    errors: list[SourceError] = []
    screens: dict[str, Screen] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and LOCALE_FOLDER.match(p.name)):
        path = folder / PATTERN_FILE
        display = f"{root.name}/{folder.name}/{PATTERN_FILE}"
        if path.exists():
            screen, found = load_screen(path, display)
            errors.extend(found)
            if screen is not None:
                screens[folder.name] = screen
        elif folder.name == default:
            errors.append(SourceError(display, 0, "missing: the default locale needs a screen"))
        errors.extend(_check_messages(folder, root))
    helplines, found = load_helplines(root)
    errors.extend(found)
    if errors or helplines is None or default not in screens:
        return errors, None
    return [], Safety(screens=screens, default_locale=default, helplines=helplines)


def _check_messages(folder: Path, root: Path) -> list[SourceError]:
    path = folder / "messages.yaml"
    if not path.exists():
        return []  # the dialog validator reports that
    display = f"{root.name}/{folder.name}/messages.yaml"
    raw, errors = load_yaml(path, display)
    if errors or not isinstance(raw, LineDict) or not isinstance(raw.get("messages"), dict):
        return []  # the dialog validator reports that too
    missing = sorted(SAFETY_MESSAGES - set(raw["messages"]))
    if not missing:
        return []
    return [
        SourceError(
            display, line_of(raw, ["messages"]), f"missing safety text for: {', '.join(missing)}"
        )
    ]


# -- the crisis pause ------------------------------------------------------------------------
async def record_event(turn: Turn, *, category: str, level: str) -> None:
    """Note that it happened (never the words), for the person's history and counts."""
    where = turn.top
    log.info("safety event: category=%s level=%s", category, level)
    metrics.crisis_event(level)  # counted even when nothing is stored: counts only
    if not turn.consented:
        return  # nothing is stored for someone who has not agreed to storage
    assert turn.user.id is not None
    await repo.add_safety_event(
        turn.session,
        user_id=turn.user.id,
        category=category,
        level=level,
        dialog=where.dialog if where else None,
        state=where.state if where else None,
        at=turn.now,
    )


def safety_feature(safety: Safety, catalog: Catalog, *, checkin_params: dict[str, int]) -> Feature:
    """The screen, the crisis pause's commands and actions, and the offline fallback."""

    async def prepare(ref: UserRef, event: Event) -> dict[str, ScreenResult | None]:
        """Screen the event's text before its step: off the event loop and outside the
        transaction, so no one waits behind the model."""
        locale = ref.locale or safety.default_locale
        return {
            text: await safety.assessor.screen_async(ref.key, locale, text)
            for text in screenable(event)
        }

    async def screen_text(turn: Turn, text: str) -> bool:
        """Runs on every free-text message before the dialog sees it."""
        verdicts: dict[str, ScreenResult | None] = turn.prepared.get(PREPARED, {})
        if text in verdicts:
            found = verdicts[text]
        else:  # not prepared (an engine driven without preparers): screen here
            key = turn.ref.key if turn.ref else f"user:{turn.user.id}"
            found = safety.assessor.screen(key, turn.locale.code, text)
        safety.country(turn)  # remembered for crisis help without the database
        top = turn.top
        if found is not None and found.source == "model" and top is not None:
            if turn.machine(top).spec.screen == "patterns":
                found = None  # e.g. the safety plan: its answers are about the crisis itself
            elif _answers(turn, top, text):
                # the words of one of the question's own options ("yes delete everything"
                # at /forget, p 0.63): the dialog's vocabulary, not the person's danger; the
                # patterns still hear it
                found = None
        if found is None:
            return False
        await record_event(turn, category=found.category, level=found.level)
        top = turn.top
        if top is not None and top.dialog == CRISIS:
            # Already paused. The screen reads recent messages together, so an answer to the
            # pause ("I'm fine", a button's words, a country) can be heard again: the pause
            # takes it. Anything else gets a short word and the pause's buttons, not the
            # whole block again (the contacts are one tap away), unless it is graver than
            # what opened the pause: then its opening words, for this.
            if _answers(turn, top, text) or safety.helplines.lookup(text) is not None:
                return False
            if turn.spec(top).expect == "text" and (
                safety.assessor.screen_alone(turn.locale.code, text) is None
            ):
                return False  # a name typed for "Choose my country", heard only in context
            params = safety.crisis_params(turn, found.category, found.level)
            if _graver(top.params, found):
                top.params.update(params)
                await turn.engine.jump(turn, top, turn.machine(top).spec.start)
                return True
            level, category = top.params.get("level"), top.params.get("category")
            top.params.update(params, level=level, category=category)
            _to_question(turn, top)
            heard = "pause_heard_worried" if found.level == WORRIED else "pause_heard"
            turn.reprompt(_rotating(turn, top, heard, emergency=params["emergency"]))
            return True
        params = safety.crisis_params(turn, found.category, found.level)
        if found.level == CHECK and _would_be_heard(turn, text):
            # a gentle check on words written with nothing open or at the menu ("this week
            # was awful… I feel like such a failure"): once they say they are safe, their
            # words are heard, not dropped for the menu
            params["heard_text"] = text
        elif (
            found.level == CHECK
            and turn.consented
            and top is not None
            and turn.spec(top).expect == "text"
        ):
            # a gentle check on an answer (a thought, a journal entry): once they say they
            # are safe, it answers the question it was written for, not typed again (kept,
            # encrypted with the conversation, only for someone who agreed to storage)
            params["answer_text"] = text
            params["answer_to"] = f"{top.dialog}.{top.state}"
        await turn.start_dialog(CRISIS, params)
        return True

    async def sos(turn: Turn, args: str) -> None:
        """/sos: crisis contacts now, from anywhere; their place is kept underneath."""
        await record_event(turn, category=SOS, level=SOS)
        params = safety.crisis_params(turn, SOS, SOS)
        top = turn.top
        if top is not None and top.dialog == CRISIS:
            # One list, then a short question with the buttons (not the state's own text,
            # which may hold the list again).
            turn.say("sos_again", **params)
            _to_question(turn, top)
            turn.reprompt(turn.text("sos_again_question"))
            return
        await turn.start_dialog(CRISIS, params)

    async def help_command(turn: Turn, args: str) -> None:
        """/help: what kindbot is, the commands, and who to call."""
        params = safety.crisis_params(turn, SOS, SOS)
        turn.say("help")
        turn.say("help_contacts", **params)
        turn.reprompt()

    async def country(turn: Turn, args: str) -> None:
        """/country [XX|auto]: whose crisis contacts to show."""
        code = args.strip().upper()
        if not code:
            current = safety.country(turn)
            known = ", ".join(sorted(safety.helplines.countries))
            if safety.helplines.known(current.code):
                turn.say("country_current", country=current.name, known=known)
            else:
                turn.say("country_current_none", known=known)
        elif code == "AUTO":
            turn.user.country = None
            now = safety.country(turn)
            if safety.helplines.known(now.code):
                turn.say("country_reset", country=now.name)
            else:
                turn.say("country_reset_none")
        elif (found := _named_country(turn, safety.helplines, args)) is not None:
            turn.user.country = found
            if safety.helplines.known(found):
                turn.say("country_set", country=safety.helplines.get(found).name)
            else:  # a real country without a list of ours yet
                turn.say("country_set_unknown", country=safety.helplines.name_of(found))
        elif (
            len(args.split()) >= HEARD_WORDS
            and not (turn.top and turn.top.dialog == CRISIS)  # the pause's buttons stay
            and await turn.engine.hear(turn, args.strip())
        ):
            # "/country I'm in a bad place and I don't know": how they are, not a country
            return
        else:
            turn.say("country_bad_code", code=_shortened(args.strip(), 24))
        if code:
            _refresh_contacts(turn)
            safety.country(turn)  # remembered for crisis help without the database
        turn.reprompt()

    async def still_here(turn: Turn, text: str) -> bool:
        """A typed message in a crisis pause that is not one of its choices gets a short,
        varied word (the states' `retry: "{still_here}"`) with the same buttons. Someone
        worried about another person ("what do i do", "he won't pick up") gets what to do
        for them again, briefly, with the question about themselves."""
        top = turn.top
        if top is not None and top.dialog == CRISIS and turn.spec(top).expect == "choice":
            worried = top.params.get("level") == WORRIED
            key = "pause_heard_worried" if worried else "pause_still_here"
            emergency = str(top.params.get("emergency", ""))
            top.params["still_here"] = _rotating(turn, top, key, emergency=emergency)
        return False

    async def pause_first(turn: Turn, name: str, args: str) -> bool:
        """A command that would open another dialog over a crisis pause (/reframe right after
        "I want to die"): ask first, gently, and go there once they say they are safe
        (`go_on_after_safe`); the pause and its contacts stay until then."""
        top = turn.top
        if top is None or top.dialog != CRISIS or name in PAUSE_COMMANDS:
            return False  # (every command passes here: the common case decides first)
        dialog = catalog.command_dialogs().get(name)
        if dialog is None:
            return False
        top.params["then"] = dialog
        top.params["then_text"] = args
        _to_question(turn, top)
        turn.reprompt(turn.text("pause_command", command=name))
        return True

    async def go_on_after_safe(turn: Turn, frame: Frame) -> None:
        """ "I'm safe": open what they asked for during the pause, if anything; else go on
        with the words the gentle check paused: heard (`heard_text`), or the answer to the
        question they were written for (`answer_text`), if that question is still open."""
        dialog = frame.params.get("then")
        words = frame.params.get("heard_text")
        answer = frame.params.get("answer_text")
        below = turn.top
        if isinstance(dialog, str) and dialog:
            await turn.engine.open_dialog(turn, dialog, str(frame.params.get("then_text") or ""))
        elif isinstance(words, str) and words:
            await turn.engine.hear(turn, words)
        elif (
            isinstance(answer, str)
            and answer
            and below is not None
            and frame.params.get("answer_to") == f"{below.dialog}.{below.state}"
        ):
            await turn.engine.take_text(turn, answer)

    def _rotating(turn: Turn, frame: Frame, key: str, **values: Any) -> str:
        """The next phrasing of `key` in this pause: two messages in a row get different ones."""
        heard = int(frame.params.get("heard", 0))
        frame.params["heard"] = heard + 1
        return fill(turn.locale.message(key, run=frame.run + heard), values)

    def _to_question(turn: Turn, frame: Frame) -> None:
        """Bring a pause that is elsewhere (grounding choice, typing a country) back to its
        question, so the buttons under the next message are the pause's own."""
        if not any(c.value == SAFE_CHOICE for c in turn.spec(frame).choices):
            frame.state = PAUSE_QUESTION
            turn.step += 1

    async def consent_then_country(turn: Turn, frame: Frame) -> None:
        """Onboarding said yes: record consent now, then ask (skippably) for the country
        before going where the person was headed."""
        turn.user.consented_at = turn.now
        carry = {"then": frame.params.get("then"), "thought": frame.params.get("thought")}
        await turn.start_dialog(CHOOSE_COUNTRY, carry)

    async def suggest_country(turn: Turn, frame: Frame) -> None:
        """A country button from the language tag's region (`suggested`: yes/no)."""
        code = region_of(turn.ref.language_tag if turn.ref else None)
        frame.params["suggested"] = "yes" if code else "no"
        if code:
            frame.params["suggested_code"] = code
            frame.params["suggested_name"] = _capitalized(safety.helplines.name_of(code))

    async def choose_suggested_country(turn: Turn, frame: Frame) -> None:
        _choose(turn, frame, str(frame.params.get("suggested_code", "")) or None)

    async def set_country(turn: Turn, frame: Frame) -> None:
        """The country typed as `typed_country` (`country_found`: set, no_list, unknown or
        skip; `country_name`); an open crisis pause shows its contacts from now on."""
        typed = str(frame.answers.get("typed_country", ""))
        if _plain(typed) in _words(turn.text("country_skip_words").split(",")):
            frame.params["country_found"] = "skip"
            return
        _choose(turn, frame, _named_country(turn, safety.helplines, typed))
        if frame.params["country_found"] == "unknown":
            tries = int(frame.params.get("tries", 0)) + 1
            frame.params["tries"] = tries
            if tries >= 2 or len(typed.split()) > 4:
                # a second miss, or a sentence: they are somewhere else; don't hold them here
                frame.params["country_found"] = "gave_up"

    async def typed_country(turn: Turn, text: str) -> bool:
        """A country's name typed where the question offers buttons ("Poland", "I live in
        Poland" instead of tapping "Another country"): taken as the answer."""
        top = turn.top
        if top is None or top.dialog != CHOOSE_COUNTRY or top.state not in COUNTRY_OFFERS:
            return False
        if _named_country(turn, safety.helplines, text) is None:
            return False
        top.answers["typed_country"] = text
        await turn.engine.jump(turn, top, "check")
        return True

    def _choose(turn: Turn, frame: Frame, code: str | None) -> None:
        if code is None:
            frame.params["country_found"] = "unknown"
            return
        turn.user.country = code
        _refresh_contacts(turn)
        safety.country(turn)  # remembered for crisis help without the database
        frame.params["country_name"] = safety.helplines.name_of(code)
        frame.params["country_found"] = "set" if safety.helplines.known(code) else "no_list"

    async def after_country(turn: Turn, frame: Frame) -> None:
        """The onboarding country question is done: where the person was headed, or the menu."""
        then = str(frame.params.get("then") or turn.engine.menu)
        await turn.engine.open_dialog(turn, then, carried(frame))

    def _refresh_contacts(turn: Turn) -> None:
        """An open crisis pause shows the person's current country from now on."""
        for frame in [*turn.stack, *turn.paused.values()]:
            if frame.dialog == CRISIS:
                level = str(frame.params.get("level", SOS))
                category = str(frame.params.get("category", SOS))
                frame.params.update(safety.crisis_params(turn, category, level))

    async def show_safety_plan(turn: Turn, frame: Frame) -> None:
        """The person's own plan, in their words; a kind note if there is none yet."""
        plan: dict[str, str] = {}
        if turn.consented and turn.user.id is not None:
            plan = await repo.get_safety_plan(
                turn.session, user_id=turn.user.id, cipher=turn.cipher
            )
        parts = [
            f"{turn.text(f'plan_part_{part}')}\n{plan[part]}"
            for part in PLAN_PARTS
            if plan.get(part)
        ]
        if parts:
            turn.emit(Message(turn.text("safety_plan_shown", plan="\n\n".join(parts))))
        else:
            turn.say("safety_plan_none")

    async def save_safety_plan(turn: Turn, frame: Frame) -> None:
        """Store the parts written so far (encrypted); "skip" leaves a part as it was."""
        assert turn.user.id is not None
        skip = _words(turn.text("safety_plan_skip_words").split(","))
        parts = {
            part: str(frame.answers[part]).strip()
            for part in PLAN_PARTS
            if isinstance(frame.answers.get(part), str)
            and _plain(str(frame.answers[part])) not in skip
        }
        await repo.save_safety_plan(
            turn.session, user_id=turn.user.id, parts=parts, cipher=turn.cipher, at=turn.now
        )

    async def check_safety_plan(turn: Turn, frame: Frame) -> None:
        """Let the dialog branch on whether a plan exists (`has_plan`: yes/no)."""
        plan: dict[str, str] = {}
        if turn.user.id is not None:
            plan = await repo.get_safety_plan(
                turn.session, user_id=turn.user.id, cipher=turn.cipher
            )
        frame.params["has_plan"] = "yes" if any(plan.values()) else "no"

    async def checkin_contacts(turn: Turn, frame: Frame) -> None:
        """A very distressed check-in: the person's helpline and emergency number, kindly."""
        turn.say("checkin_contacts", **safety.crisis_params(turn, SOS, "check"))

    def offline(ref: UserRef, event: Event, prepared: dict[str, Any]) -> list[Output] | None:
        """The step could not run (the database is down). Crisis help still goes out, from
        memory, with a plain word that the message was not saved; other events get None."""
        locale = catalog.locale(ref.locale)

        def text(key: str, **values: Any) -> str:
            return fill(locale.message(key), values)

        verdicts: dict[str, ScreenResult | None] = prepared.get(PREPARED, {})
        found = next((v for v in verdicts.values() if v is not None), None)
        command = _command_of(event)
        country = safety.remembered_country(ref)
        if found is not None:
            metrics.crisis_event(found.level)
            params = safety.params_for(country, text, found.category, found.level)
            return [Message(text("offline_crisis", **params))]
        if command in ("sos", "help"):
            if command == SOS:  # as online: /help shows the contacts, but is no event
                metrics.crisis_event(SOS)
            params = safety.params_for(country, text, SOS, SOS)
            return [Message(text("offline_sos", **params))]
        return None

    return Feature(
        "safety",
        # Before every other hook: the screen sees each message before anything may take it.
        screens=[screen_text],
        interceptors=[still_here, typed_country],
        command_guards=[pause_first],
        preparers={PREPARED: prepare},
        fallbacks=[offline],
        commands={"sos": sos, "help": help_command, "country": country},
        actions={
            "show_safety_plan": show_safety_plan,
            "save_safety_plan": save_safety_plan,
            "check_safety_plan": check_safety_plan,
            "checkin_contacts": checkin_contacts,
            "consent_then_country": consent_then_country,
            "suggest_country": suggest_country,
            "choose_suggested_country": choose_suggested_country,
            "set_country": set_country,
            "after_country": after_country,
            "go_on_after_safe": go_on_after_safe,
        },
        gives_way=frozenset({CHOOSE_COUNTRY}),  # a command instead of an answer is a skip
        dialog_params={"checkin": {"very_high": CHECKIN_CONTACTS_FROM, **checkin_params}},
    )


def _command_of(event: Event) -> str | None:
    if isinstance(event, Command):
        return event.name.lower()
    if isinstance(event, Text):
        found = parse_command(clean_text(event.text))
        return found[0] if found else None
    return None


def _graver(params: dict[str, Any], found: ScreenResult) -> bool:
    """Whether a new verdict inside a pause needs the pause's opening words again."""
    if found.level != CRISIS_LEVEL:
        return False
    if found.category == IMMEDIATE_DANGER and params.get("category") != IMMEDIATE_DANGER:
        return True
    return params.get("level") in GENTLE_LEVELS


def _answers(turn: Turn, frame: Frame, text: str) -> bool:
    """Whether `text` picks one of the current state's choices, as the engine reads typed
    choices (`Turn.typed_choice`)."""
    return turn.spec(frame).expect == "choice" and turn.typed_choice(frame, text) is not None


def _capitalized(name: str) -> str:
    """A country's name for a button: "the United Kingdom" → "United Kingdom"."""
    return name.removeprefix("the ")


def _shortened(text: str, limit: int) -> str:
    """`text`, or its words up to `limit` characters and "…" (never cut mid-word)."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _would_be_heard(turn: Turn, text: str) -> bool:
    """Whether `text` came where words about how a person is are heard (nothing open, or the
    menu, for someone who agreed to storage) and says something (three words or more)."""
    top = turn.top
    return (
        turn.consented
        and (top is None or top.dialog == turn.engine.menu)
        and len(text.split()) >= 3
    )


def _named_country(turn: Turn, helplines: Helplines, text: str) -> str | None:
    """The country (ISO code) `text` names: the text itself ("Poland", "PL"), or what follows
    an opening of `country_lead_words` ("I live in Poland", "im from the UK", "it's Germany").
    None when it names none: "I'm in so much pain" is never read as a country."""
    code = helplines.lookup(text)
    if code is not None:
        return code
    words = text.split()
    leads = sorted(
        (lead.split() for lead in _words(turn.text("country_lead_words").split(","))),
        key=len,
        reverse=True,
    )
    for lead in leads:
        opening, rest = words[: len(lead)], " ".join(words[len(lead) :])
        if rest and _plain(" ".join(opening)).split() == lead:
            return helplines.lookup(rest)  # the longest opening that fits decides
    return None


def _plain(text: str) -> str:
    return " ".join("".join(ch for ch in text.casefold() if ch.isalnum() or ch.isspace()).split())


def _words(items: Iterable[str]) -> set[str]:
    return {_plain(item) for item in items if item.strip()}


# Action names the dialogs may use (for validation before an engine exists).
SAFETY_ACTIONS = frozenset(
    {
        "show_safety_plan",
        "save_safety_plan",
        "check_safety_plan",
        "checkin_contacts",
        "consent_then_country",
        "suggest_country",
        "choose_suggested_country",
        "set_country",
        "after_country",
        "go_on_after_safe",
    }
)
