"""The crisis pause and everything around it, wired into the engine's extension points.

- an interceptor screens every free-text message before any dialog sees it; on a match the
  `crisis` dialog is pushed on top of wherever the person was (its first message names their
  country's helpline and emergency number), and "I'm safe" returns them to that exact step;
- `/sos` opens the same pause on request, `/help` adds the contacts, `/country XX` chooses
  whose contacts to show;
- actions for the safety plan (shown inside the crisis dialog) and the crisis record.

The words that matched are never stored as an answer and never logged: only the category,
the level and the dialog step are recorded (`safety_events`), and only with consent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.engine.catalog import LOCALE_FOLDER, DialogsInvalid
from bot.engine.events import Message
from bot.engine.runner import Engine, Frame, Turn
from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml
from bot.safety.helplines import (
    Country,
    Helplines,
    contact_list,
    describe,
    emergency_of,
    load_helplines,
    resolve_country,
)
from bot.safety.screen import PATTERN_FILE, Screen, load_screen
from storage import repo

log = logging.getLogger(__name__)

CRISIS = "crisis"
SOS = "sos"
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

    def screen(self, locale: str) -> Screen:
        return self.screens.get(locale) or self.screens[self.default_locale]

    def country(self, turn: Turn) -> Country:
        tag = turn.ref.language_tag if turn.ref else None
        return self.helplines.get(resolve_country(turn.user.country, tag, self.default_country))

    def crisis_params(self, turn: Turn, category: str, level: str) -> dict[str, str]:
        """What the crisis texts quote: helpline(s), emergency number, the full list."""
        country = self.country(turn)
        primary = country.primary(category)
        return {
            "level": level,
            "category": category,
            "helpline": "\n".join(describe(h, turn.text) for h in primary),
            "emergency": emergency_of(country, turn.text),
            "contacts": contact_list(country, turn.text),
        }


# -- loading ---------------------------------------------------------------------------------
def validate_safety(root: Path, *, default: str = "en") -> list[SourceError]:
    """Every problem in the pattern files, helpline files and safety messages (with lines)."""
    errors, _ = _load(root, default=default)
    return errors


def load_safety(root: Path, *, default: str = "en", default_country: str | None = None) -> Safety:
    errors, safety = _load(root, default=default)
    if errors or safety is None:
        raise DialogsInvalid(errors)
    safety.default_country = default_country.upper() if default_country else None
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


def install(engine: Engine, safety: Safety, *, checkin_params: dict[str, int]) -> None:
    """Wire the screen, commands and actions into `engine`."""

    async def screen_text(turn: Turn, text: str) -> bool:
        """Runs on every free-text message before the dialog sees it."""
        found = safety.screen(turn.locale.code).check_text(text)
        if found is None:
            return False
        await record_event(turn, category=found.category, level=found.level)
        top = turn.top
        if top is not None and top.dialog == CRISIS:
            # Already paused: the crisis dialog answers (its texts repeat the helpline).
            return False
        await turn.start_dialog(CRISIS, safety.crisis_params(turn, found.category, found.level))
        return True

    async def sos(turn: Turn, args: str) -> None:
        """/sos: crisis contacts now, from anywhere; their place is kept underneath."""
        await record_event(turn, category=SOS, level=SOS)
        params = safety.crisis_params(turn, SOS, SOS)
        top = turn.top
        if top is not None and top.dialog == CRISIS:
            turn.say("sos_again", **params)
            turn.reprompt()
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
        elif (found := safety.helplines.lookup(args)) is not None:
            turn.user.country = found
            turn.say("country_set", country=safety.helplines.get(found).name)
        elif len(code) != 2 or not code.isalpha() or not code.isascii():
            turn.say("country_bad_code", code=args.strip()[:16])
        else:
            turn.user.country = code
            turn.say("country_set_unknown", code=code)
        if code:
            _refresh_contacts(turn)
        turn.reprompt()

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

    engine.interceptors.insert(0, screen_text)
    engine.screens.insert(0, screen_text)
    engine.commands["sos"] = sos
    engine.commands["help"] = help_command
    engine.commands["country"] = country
    engine.actions["show_safety_plan"] = show_safety_plan
    engine.actions["save_safety_plan"] = save_safety_plan
    engine.actions["check_safety_plan"] = check_safety_plan
    engine.actions["checkin_contacts"] = checkin_contacts
    engine.dialog_params["checkin"] = {"very_high": CHECKIN_CONTACTS_FROM, **checkin_params}


def _plain(text: str) -> str:
    return " ".join("".join(ch for ch in text.casefold() if ch.isalnum() or ch.isspace()).split())


def _words(items: Iterable[str]) -> set[str]:
    return {_plain(item) for item in items if item.strip()}


# Action names the dialogs may use (for validation before an engine exists).
SAFETY_ACTIONS = frozenset(
    {"show_safety_plan", "save_safety_plan", "check_safety_plan", "checkin_contacts"}
)
