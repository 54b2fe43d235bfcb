"""The engine side of reminders: what a fired reminder starts, and the settings dialog's
actions (reading times, days and zones a person types), plus a shared location.

Sentences live in dialogs/<locale>/reminder_settings.yaml (whole messages) and
reminder_texts.yaml (pieces combined here). Actions pass values to the dialog through the
frame's params and branch on `*_ok` flags, so every bad input is answered by a dialog state
and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from bot.engine.events import Location, Message, Reminder
from bot.engine.feature import Action, Feature
from bot.engine.frame import Frame
from bot.engine.parsing import match_choice
from bot.engine.turn import Turn
from bot.localtime import person_zone
from bot.progress import rated_answers
from bot.reminders import store
from bot.reminders.parse import parse_days, parse_time
from bot.reminders.schedule import (
    EVERY_DAY,
    WEEKDAYS,
    WEEKENDS,
    format_hhmm,
    is_zone,
    local_now,
)
from bot.reminders.texts import ReminderTexts
from bot.reminders.weekly import WeekEntry, look_back, week_window
from bot.reminders.zones import zone_choices, zone_from_location, zone_of_country
from storage import repo
from storage.models import ReminderSchedule, as_utc

SETTINGS_DIALOG = "reminder_settings"
REFLECTION_DIALOG = "reflection"
PING_DIALOG = "checkin_ping"
CHECKIN_DIALOG = "checkin"
REMINDER_DIALOGS = {store.REFLECTION: REFLECTION_DIALOG, store.CHECKIN: PING_DIALOG}
# A person who wrote within this window is mid-conversation: a reminder does not interrupt.
ACTIVE_WINDOW = timedelta(minutes=30)
# States of the settings dialog where a typed time or days answer a row of buttons.
TYPED_AT_CHOICE = {
    "target_menu": ("time_text", "parse_time", "time"),
    "pick_days": ("days_text", "parse_days", "days"),
    "which_half": ("time_text", "parse_time", "time"),
}
# Where a zone is picked from several: a typed place or time is read as a new answer.
ZONE_PICKS = ("pick_zone", "pick_zone_country", "pick_zone_time")
ZONE_STATES = ("ask_zone", "bad_zone")
# The overview, where a typed time (or "/reminders 9pm") offers to set a reminder for it.
OVERVIEW_STATE = "overview"
TIME_CHOICES = {"t0800": "08:00", "t1200": "12:00", "t1800": "18:00", "t2000": "20:00",
                "t2100": "21:00", "t2200": "22:00"}  # fmt: skip
DAY_CHOICES = {"every": EVERY_DAY, "weekdays": WEEKDAYS, "weekends": WEEKENDS}

ACTION_NAMES = frozenset(
    {
        "reminders_overview",
        "reminders_target_reflection",
        "reminders_checkins",
        "reminders_target_ping",
        "reminders_target_weekly",
        "reminders_weekly_day",
        "reminders_weekly_quote",
        "reminders_parse_time",
        "reminders_parse_days",
        "reminders_save",
        "reminders_keep_zone",
        "reminders_target_off",
        "reminders_parse_zone",
        "reminders_zone_choices",
        "reminders_pick_zone",
        "reminders_pause_day",
        "reminders_pause_week",
        "reminders_resume",
        "reminders_all_off",
        "save_reflection",
        "open_checkin",
    }
)


# The safety pause (bot/safety/flow.py); a shared location never talks over it.
CRISIS_DIALOG = "crisis"


@dataclass
class ReminderTalk:
    """Holds what the actions need besides the turn: the texts and the default zone."""

    texts: ReminderTexts
    default_timezone: str

    # -- words -----------------------------------------------------------------------------
    def t(self, turn: Turn, key: str, **values: Any) -> str:
        return self.texts.get(key, turn.locale.code, **values)

    def zone_of(self, turn: Turn) -> str:
        """The person's timezone; until they set one, their country's when it has one clock
        (someone who said they are in Germany is offered Berlin time, and asked), else the
        operator's default."""
        country = turn.user.country
        return (
            turn.user.timezone
            or (zone_of_country(country) if country else None)
            or self.default_timezone
        )

    def zone_words(self, turn: Turn, name: str) -> str:
        now = local_now(turn.now, name)
        return self.t(turn, "zone_words", zone=display_zone(name), time=format_hhmm(now.time()))

    def until_words(self, turn: Turn, moment: datetime) -> str:
        """A moment on the person's clock with its date: "Tue 8 Dec, 21:00"."""
        when = local_now(moment, self.zone_of(turn))
        return self.t(
            turn,
            "until_words",
            day=self.t(turn, f"day_{when.weekday()}"),
            date=when.strftime(self.t(turn, "date_format")),
            time=format_hhmm(when.time()),
        )

    def days_words(self, turn: Turn, mask: int) -> str:
        named = {EVERY_DAY: "days_every", WEEKDAYS: "days_weekdays", WEEKENDS: "days_weekends"}
        if mask in named:
            return self.t(turn, named[mask])
        names = [self.t(turn, f"day_{i}") for i in range(7) if mask >> i & 1]
        return self.t(turn, "days_some", days=", ".join(names))

    def schedule_words(self, turn: Turn, schedule: ReminderSchedule | None) -> str:
        if schedule is None or not schedule.enabled:
            return self.t(turn, "state_off")
        return self.t(
            turn,
            "state_on",
            time=schedule.local_time,
            days=self.days_words(turn, schedule.days),
        )

    def target_name(self, turn: Turn, kind: str, slot: int) -> str:
        if kind == store.REFLECTION:
            return self.t(turn, "reflection_name")
        if kind == store.WEEKLY:
            return self.t(turn, "weekly_name")
        return self.t(turn, "checkin_name", n=slot + 1)

    async def _schedules(self, turn: Turn) -> list[ReminderSchedule]:
        return await store.list_schedules(turn.session, user_id=_uid(turn))

    # -- the settings dialog ---------------------------------------------------------------
    async def overview(self, turn: Turn, frame: Frame) -> None:
        """Fill the overview: each reminder that is on, any pause, the zone in words."""
        lines = []
        paused_until: datetime | None = None
        for s in await self._schedules(turn):
            if not s.enabled:
                continue  # (a pause of reminders that are off is not worth a line)
            if s.paused_until and as_utc(s.paused_until) > turn.now:
                paused_until = as_utc(s.paused_until)
            days = self.days_words(turn, s.days)
            if s.kind == store.REFLECTION:
                lines.append(self.t(turn, "line_reflection", time=s.local_time, days=days))
            elif s.kind == store.WEEKLY:
                quoting = self.t(turn, "weekly_quoting") if s.quote else ""
                lines.append(
                    self.t(turn, "line_weekly", time=s.local_time, days=days, quoting=quoting)
                )
            else:
                lines.append(
                    self.t(turn, "line_checkin", n=s.slot + 1, time=s.local_time, days=days)
                )
        summary = "\n".join(lines) if lines else self.t(turn, "nothing_set")
        if paused_until is not None:
            summary += "\n\n" + self.t(turn, "paused", when=self.until_words(turn, paused_until))
        frame.params["summary"] = summary
        frame.params["zone_words"] = self.zone_words(turn, self.zone_of(turn))
        for key in ("time_text", "days_text", "zone_text"):
            frame.answers.pop(key, None)
        frame.params["offering"] = "no"

    async def _target(self, turn: Turn, frame: Frame, kind: str, slot: int) -> None:
        frame.params["target_kind"] = kind
        frame.params["target_slot"] = slot
        frame.params["target_name"] = self.target_name(turn, kind, slot)
        found = await store.get_schedule(turn.session, user_id=_uid(turn), kind=kind, slot=slot)
        frame.params["target_now"] = self.schedule_words(turn, found)

    async def target_reflection(self, turn: Turn, frame: Frame) -> None:
        await self._target(turn, frame, store.REFLECTION, 0)

    async def checkins(self, turn: Turn, frame: Frame) -> None:
        """Label the three ping buttons with what each is set to."""
        found = {s.slot: s for s in await self._schedules(turn) if s.kind == store.CHECKIN}
        for slot in range(store.CHECKIN_SLOTS):
            frame.params[f"ping{slot + 1}"] = self.schedule_words(turn, found.get(slot))

    async def target_ping(self, turn: Turn, frame: Frame) -> None:
        chosen = str(frame.answers.get("ping", "ping1"))
        slot = min(max(int(chosen[-1]) - 1, 0), store.CHECKIN_SLOTS - 1)
        await self._target(turn, frame, store.CHECKIN, slot)

    async def target_weekly(self, turn: Turn, frame: Frame) -> None:
        await self._target(turn, frame, store.WEEKLY, 0)

    async def weekly_day(self, turn: Turn, frame: Frame) -> None:
        """The one day of the week the look back comes on (`d0` Monday … `d6` Sunday); the
        time question then shows it, so the person sees their choice was taken."""
        chosen = str(frame.answers.get("weekly_day", ""))
        index = int(chosen[1:]) if chosen[:1] == "d" and chosen[1:].isdigit() else 0
        frame.params["days"] = 1 << min(max(index, 0), 6)
        days = self.days_words(turn, int(frame.params["days"]))  # not saved until the time
        frame.params["target_now"] = self.t(turn, "weekly_day_picked", days=days)

    async def weekly_quote(self, turn: Turn, frame: Frame) -> None:
        frame.params["quote"] = frame.answers.get("quote_choice") == "yes"

    async def parse_time_action(self, turn: Turn, frame: Frame) -> None:
        typed = frame.answers.pop("time_text", None)
        chosen = frame.answers.get("time_choice")
        hour = bare_hour(str(typed)) if typed is not None else None
        if hour is not None:  # "8": in the morning or the evening? (which_half asks)
            frame.params["hour"] = str(hour)
            frame.params["hour_am"] = format_hhmm(time(hour % 12, 0))
            frame.params["hour_pm"] = format_hhmm(time(hour % 12 + 12, 0))
            frame.params["time_ok"] = "hour"
            return
        if typed is not None:
            parsed = parse_time(str(typed))
            value = format_hhmm(parsed) if parsed else None
        elif chosen in ("am", "pm"):  # the answer to "8 in the morning or the evening?"
            value = str(frame.params.get(f"hour_{chosen}") or "") or None
        else:
            value = TIME_CHOICES.get(str(chosen))
        frame.params["time_ok"] = "yes" if value else "no"
        if value:
            frame.params["time"] = value

    async def parse_days_action(self, turn: Turn, frame: Frame) -> None:
        typed = frame.answers.pop("days_text", None)
        mask = parse_days(str(typed)) if typed is not None else None
        if typed is None:
            mask = DAY_CHOICES.get(str(frame.answers.get("days_choice")))
        frame.params["days_ok"] = "yes" if mask else "no"
        if mask:
            frame.params["days"] = mask

    async def save(self, turn: Turn, frame: Frame) -> None:
        """Turn the chosen reminder on; note whether the zone is still only the default."""
        zone = self.zone_of(turn)
        kind = str(frame.params["target_kind"])
        schedule = await store.set_schedule(
            turn.session,
            user_id=_uid(turn),
            kind=kind,
            slot=int(frame.params["target_slot"]),
            local_time=str(frame.params["time"]),
            days=int(frame.params["days"]),
            timezone=zone,
            now=turn.now,
            quote=bool(frame.params.get("quote")) if kind == store.WEEKLY else None,
        )
        frame.params["saved_time"] = schedule.local_time
        frame.params["saved_days"] = self.days_words(turn, schedule.days)
        frame.params["zone_words"] = self.zone_words(turn, zone)
        frame.params["needs_zone"] = "yes" if turn.user.timezone is None else "no"

    async def keep_zone(self, turn: Turn, frame: Frame) -> None:
        await store.set_timezone(
            turn.session, user=turn.user, timezone=self.zone_of(turn), now=turn.now
        )

    async def target_off(self, turn: Turn, frame: Frame) -> None:
        await store.turn_off(
            turn.session,
            user_id=_uid(turn),
            kind=str(frame.params["target_kind"]),
            slot=int(frame.params["target_slot"]),
            now=turn.now,
        )

    async def parse_zone(self, turn: Turn, frame: Frame) -> None:
        """One zone is kept at once; several (a country with several clocks, an abbreviation
        regions share, a time on their clock) are offered: `zone_ok` is "choose_<why>"."""
        typed = str(frame.answers.pop("zone_text", ""))
        found = zone_choices(typed, turn.now)
        if found.why == "none":
            frame.params["zone_ok"] = "no"
        elif found.why == "one":
            await self._set_zone(turn, frame, found.zones[0])
        else:
            frame.params["zone_ok"] = f"choose_{found.why}"
            frame.params["zone_options"] = list(found.zones)
            frame.params["zone_typed"] = found.place or typed.strip()[:40]

    async def _set_zone(self, turn: Turn, frame: Frame, name: str) -> None:
        await store.set_timezone(turn.session, user=turn.user, timezone=name, now=turn.now)
        frame.params["zone_ok"] = "yes"
        frame.params["zone_words"] = self.zone_words(turn, name)

    async def zone_options(self, turn: Turn, frame: Frame) -> None:
        """The zones found, as buttons: each place with the time there now."""
        options = []
        for index, name in enumerate(frame.params.get("zone_options", [])):
            if not is_zone(str(name)):
                continue
            now = local_now(turn.now, str(name))
            label = self.t(
                turn, "zone_choice", zone=place_name(str(name)), time=format_hhmm(now.time())
            )
            options.append((f"z{index}", label))
        frame.options = options

    async def pick_zone(self, turn: Turn, frame: Frame) -> None:
        picked = str(frame.answers.pop("zone_pick", ""))
        zones = [str(z) for z in frame.params.pop("zone_options", [])]
        index = int(picked[1:]) if picked[:1] == "z" and picked[1:].isdigit() else -1
        if 0 <= index < len(zones) and is_zone(zones[index]):
            await self._set_zone(turn, frame, zones[index])
        else:
            frame.params["zone_ok"] = "no"

    async def _pause(self, turn: Turn, frame: Frame, days: int | None) -> None:
        """Pause (or resume) every reminder; `any_on` tells the dialog whether one is on at
        all, so nobody is told their reminders are resting, or back, when they have none."""
        until = turn.now + timedelta(days=days) if days else None
        on = await store.pause_all(turn.session, user_id=_uid(turn), until=until, now=turn.now)
        frame.params["any_on"] = "yes" if on else "no"
        if until is not None:
            frame.params["until"] = self.until_words(turn, until)

    async def pause_day(self, turn: Turn, frame: Frame) -> None:
        await self._pause(turn, frame, 1)

    async def pause_week(self, turn: Turn, frame: Frame) -> None:
        await self._pause(turn, frame, 7)

    async def resume(self, turn: Turn, frame: Frame) -> None:
        await self._pause(turn, frame, None)

    async def all_off(self, turn: Turn, frame: Frame) -> None:
        await store.turn_all_off(turn.session, user_id=_uid(turn), now=turn.now)

    # -- the reminders themselves ------------------------------------------------------------
    async def save_reflection(self, turn: Turn, frame: Frame) -> None:
        """Keep an answered reflection as a journal entry (unanswered ones leave no trace).
        Its id stays with the ended frame, so a piece sent just after the answer is added to
        it (see `habits.add_to_saved`)."""
        answers = {k: v for k, v in frame.answers.items() if v not in (None, "")}
        if not answers:
            return
        frame.entry_id = await repo.create_entry(
            turn.unit,
            user_id=_uid(turn),
            kind="reflection",
            dialog=frame.dialog,
            cipher=turn.cipher,
            started_at=turn.now,
        )
        await repo.record_entry(
            turn.unit,
            user_id=_uid(turn),
            entry_id=frame.entry_id,
            answers=answers,
            status="finished",
            cipher=turn.cipher,
            finished_at=turn.now,
        )

    async def open_checkin(self, turn: Turn, frame: Frame) -> None:
        """The ping's one tap: the distress check-in when this build has it."""
        if turn.engine.catalog.dialog(CHECKIN_DIALOG, turn.locale.code) is not None:
            await turn.start_dialog(CHECKIN_DIALOG)
        else:
            turn.emit(Message(self.t(turn, "checkin_fallback")))

    async def on_reminder(self, turn: Turn, event: Reminder) -> None:
        """Start the reminder's dialog, quietly: never over a conversation in progress."""
        dialog = REMINDER_DIALOGS.get(event.kind)
        if dialog is None or not turn.consented:
            return
        top = turn.top
        if top is not None:
            replaceable = top.dialog in (*REMINDER_DIALOGS.values(), turn.engine.menu)
            updated = as_utc(turn.row.updated_at)
            if not replaceable and updated > turn.now - ACTIVE_WINDOW:
                return  # they are busy with something else; no reminder on top of it
            # An unanswered reminder or an old, left conversation: set it aside (recorded
            # dialogs stay resumable) and start afresh. Nothing is said about it.
            await turn.stop_all()
        await turn.start_dialog(dialog)

    async def on_weekly(self, turn: Turn, event: Reminder) -> None:
        """Send the week's look back as one message. Like the other reminders it never
        lands on a conversation in progress (a crisis pause above all); it leaves the
        person's conversation as it is, since it asks nothing of them."""
        if not turn.consented:
            return
        top = turn.top
        quiet = (*REMINDER_DIALOGS.values(), turn.engine.menu)
        if top is not None and top.dialog not in quiet:
            busy = as_utc(turn.row.updated_at) > turn.now - ACTIVE_WINDOW
            if busy or top.dialog == CRISIS_DIALOG:
                return
        uid = _uid(turn)
        schedule = await store.get_schedule(turn.session, user_id=uid, kind=store.WEEKLY)
        since, until = week_window(turn.now)
        found = await repo.entries_between(turn.session, user_id=uid, since=since, until=until)
        entries = [
            WeekEntry(
                e.kind, e.dialog, as_utc(e.started_at), repo.entry_answers(e, cipher=turn.cipher)
            )
            for e in found
        ]
        text = look_back(
            entries,
            rated_answers(turn.engine.catalog, turn.locale.code),
            turn.text,
            now=turn.now,
            where=person_zone(turn.user.timezone, self.default_timezone),
            quote=schedule is not None and schedule.quote,
        )
        turn.emit(Message(text))

    async def on_location(self, turn: Turn, event: Location) -> None:
        """A shared location sets the timezone; the coordinates go no further than here."""
        found = zone_from_location(event.latitude, event.longitude)
        top = turn.top
        if top is not None and top.dialog == SETTINGS_DIALOG and top.state in ZONE_STATES:
            # Answer the question being asked, as if the zone's name had been typed.
            await turn.engine.answer(turn, found or "")
            return
        if top is not None and top.dialog == CRISIS_DIALOG:
            # Never speak over a crisis pause: keep the zone quietly, ask the question again.
            if found is not None:
                await store.set_timezone(turn.session, user=turn.user, timezone=found, now=turn.now)
            turn.reprompt()
            return
        if found is None:
            turn.emit(Message(self.t(turn, "zone_not_found_from_location")))
        else:
            await store.set_timezone(turn.session, user=turn.user, timezone=found, now=turn.now)
            words = self.zone_words(turn, found)
            turn.emit(Message(self.t(turn, "zone_set_from_location", zone_words=words)))
            if top is not None and top.dialog == SETTINGS_DIALOG:
                top.params["zone_words"] = words
        turn.reprompt()

    async def typed_answer(self, turn: Turn, text: str) -> bool:
        """A time or days typed where buttons are offered in the settings dialog; a bare
        number at a time question is an hour; a time typed at the overview is an offer."""
        frame = turn.top
        if frame is None or frame.dialog != SETTINGS_DIALOG:
            return False
        if frame.state == OVERVIEW_STATE and await self._typed_time(turn, frame, text):
            return True
        if frame.state in ZONE_PICKS:
            if match_choice(text, turn.render(frame).options) is not None:
                return False
            if zone_choices(text, turn.now).why == "none":
                return False  # the engine asks to pick an option; nothing changes
            frame.answers["zone_text"] = text
            await turn.engine.jump(turn, frame, "parse_zone")
            return True
        spec = TYPED_AT_CHOICE.get(frame.state)
        if spec is None or match_choice(text, turn.render(frame).options) is not None:
            return False
        store_as, parse_state, kind = spec
        if kind == "time":  # a bare hour ("8") too: parse_time asks morning or evening
            readable: object = parse_time(text) or bare_hour(text)
        else:
            readable = parse_days(text)
        if readable is None:
            return False  # the engine asks to pick an option; nothing changes
        frame.answers[store_as] = text
        await turn.engine.jump(turn, frame, parse_state)
        return True

    async def _typed_time(self, turn: Turn, frame: Frame, text: str) -> bool:
        """At the overview, a time typed ("9pm", or "/reminders 9pm") offers the evening
        reflection (or a ping) at that time. A bare number there is its button's place."""
        if parse_time(text) is None:
            return False
        await self.target_reflection(turn, frame)
        frame.params["offering"] = "yes"
        frame.answers["time_text"] = text
        await turn.engine.jump(turn, frame, "parse_time")
        return True

    def actions(self) -> dict[str, Action]:
        found: dict[str, Action] = {
            "reminders_overview": self.overview,
            "reminders_target_reflection": self.target_reflection,
            "reminders_checkins": self.checkins,
            "reminders_target_ping": self.target_ping,
            "reminders_target_weekly": self.target_weekly,
            "reminders_weekly_day": self.weekly_day,
            "reminders_weekly_quote": self.weekly_quote,
            "reminders_parse_time": self.parse_time_action,
            "reminders_parse_days": self.parse_days_action,
            "reminders_save": self.save,
            "reminders_keep_zone": self.keep_zone,
            "reminders_target_off": self.target_off,
            "reminders_parse_zone": self.parse_zone,
            "reminders_zone_choices": self.zone_options,
            "reminders_pick_zone": self.pick_zone,
            "reminders_pause_day": self.pause_day,
            "reminders_pause_week": self.pause_week,
            "reminders_resume": self.resume,
            "reminders_all_off": self.all_off,
            "save_reflection": self.save_reflection,
            "open_checkin": self.open_checkin,
        }
        assert set(found) == ACTION_NAMES
        return found


async def _settings_command(turn: Turn, args: str) -> None:
    """/settings and /reminders both open the reminder settings."""
    await turn.engine.open_dialog(turn, SETTINGS_DIALOG)


def reminders_feature(*, texts: ReminderTexts, default_timezone: str) -> Feature:
    """The reminders' handlers, the settings dialog's actions and command, and a shared
    location (it sets the timezone)."""
    talk = ReminderTalk(texts, default_timezone)
    return Feature(
        "reminders",
        actions=talk.actions(),
        commands={"settings": _settings_command},
        interceptors=[talk.typed_answer],
        reminders={
            **dict.fromkeys(REMINDER_DIALOGS, talk.on_reminder),
            store.WEEKLY: talk.on_weekly,
        },
        location=talk.on_location,
    )


def bare_hour(text: str) -> int | None:
    """An hour typed alone, 1 to 12 ("8", "8.", "at 8"): morning or evening is not said."""
    words = text.casefold().strip().rstrip(".!?").split()
    if words and words[0] in ("at", "around", "about"):
        words = words[1:]
    if len(words) != 1 or not words[0].isdigit():
        return None
    hour = int(words[0])
    return hour if 1 <= hour <= 12 else None


def _uid(turn: Turn) -> int:
    assert turn.user.id is not None
    return turn.user.id


def place_name(name: str) -> str:
    """The place a zone is named after, as words: "America/New_York" → "New York"."""
    shown = display_zone(name)
    return shown.rsplit("/", 1)[-1].replace("_", " ") if "/" in shown else shown


def display_zone(name: str) -> str:
    """A zone as a person reads it: IANA's fixed offsets have POSIX's inverted sign
    ("Etc/GMT-2" is two hours *ahead* of UTC), so show them as "UTC+2"."""
    if name.startswith("Etc/GMT") and len(name) > len("Etc/GMT"):
        offset = name[len("Etc/GMT") :]
        flipped = offset.replace("-", "+", 1) if offset.startswith("-") else "-" + offset[1:]
        return f"UTC{flipped}"
    if name in ("Etc/UTC", "Etc/GMT", "UTC"):
        return "UTC"
    return name
