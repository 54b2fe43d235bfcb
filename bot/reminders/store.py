"""Changing a person's reminder schedules: the rules, over storage/reminders.py's rows.

Every change recomputes `next_due_utc`, the only column the dispatcher looks at: NULL means
nothing to send (off, or the person cannot be reached). The statements live in storage;
here is what a change means (a pause applies to a new reminder, a new zone keeps local
times, a due time that cannot be read is computed again).
"""

from __future__ import annotations

import enum
from datetime import datetime

from bot.reminders.schedule import EVERY_DAY, format_hhmm, next_occurrence, parse_hhmm, zone
from storage import reminders as rows
from storage.db import Database
from storage.models import ReminderSchedule, User, as_utc, utcnow
from storage.reminders import (
    BLOCKED,
    OddDueTime,
    Session,
    get_schedule,
    list_schedules,
    odd_due_times,
)

__all__ = ["BLOCKED", "OddDueTime", "get_schedule", "list_schedules", "odd_due_times"]

REFLECTION = "reflection"
CHECKIN = "checkin"
WEEKLY = "weekly"  # the weekly look back: one day of the week, see bot/reminders/weekly.py
KINDS = (REFLECTION, CHECKIN, WEEKLY)
CHECKIN_SLOTS = 3


def refresh_next_due(schedule: ReminderSchedule, now: datetime) -> None:
    """Set the next due instant from the schedule's own fields (None while off)."""
    schedule.next_due_utc = next_due_for(schedule, now)


def next_due_for(schedule: ReminderSchedule, now: datetime) -> datetime | None:
    """The next due instant the schedule's own fields give (None while off)."""
    if not schedule.enabled or schedule.disabled_reason:
        return None
    return next_occurrence(
        now,
        parse_hhmm(schedule.local_time),
        zone(schedule.timezone),
        days=schedule.days,
        paused_until=as_utc(schedule.paused_until) if schedule.paused_until else None,
    )


async def set_schedule(
    session: Session,
    *,
    user_id: int,
    kind: str,
    slot: int = 0,
    local_time: str,
    days: int = EVERY_DAY,
    timezone: str,
    now: datetime,
    quote: bool | None = None,
) -> ReminderSchedule:
    """Turn a reminder on at `local_time` ('HH:MM') on `days` (created if new); `quote`
    (the weekly look back's permission to quote the person) is kept as it was when None."""
    if kind not in KINDS:
        raise ValueError(f"unknown reminder kind {kind!r}")
    local_time = format_hhmm(parse_hhmm(local_time))
    zone(timezone)
    schedule = await get_schedule(session, user_id=user_id, kind=kind, slot=slot)
    if schedule is None:
        schedule = ReminderSchedule(
            user_id=user_id,
            kind=kind,
            slot=slot,
            local_time=local_time,
            days=days,
            timezone=timezone,
            updated_at=now,
        )
        session.add(schedule)
    # A pause the person set for all their reminders applies to a new one as well.
    others = await list_schedules(session, user_id=user_id)
    pauses = [as_utc(s.paused_until) for s in others if s.paused_until]
    pauses = [p for p in pauses if p > now]
    schedule.paused_until = max(pauses) if pauses else None
    schedule.local_time = local_time
    schedule.days = days
    schedule.timezone = timezone
    schedule.enabled = True
    if quote is not None:
        schedule.quote = quote
    schedule.updated_at = now
    refresh_next_due(schedule, now)
    await session.flush()
    return schedule


async def turn_off(
    session: Session, *, user_id: int, kind: str, slot: int = 0, now: datetime
) -> bool:
    schedule = await get_schedule(session, user_id=user_id, kind=kind, slot=slot)
    if schedule is None or not schedule.enabled:
        return False
    schedule.enabled = False
    schedule.updated_at = now
    refresh_next_due(schedule, now)
    return True


async def turn_all_off(session: Session, *, user_id: int, now: datetime) -> int:
    count = 0
    for schedule in await list_schedules(session, user_id=user_id):
        if schedule.enabled:
            schedule.enabled = False
            count += 1
        schedule.paused_until = None
        schedule.updated_at = now
        refresh_next_due(schedule, now)
    return count


async def pause_all(
    session: Session, *, user_id: int, until: datetime | None, now: datetime
) -> int:
    """Pause every reminder until `until` (None: resume now); returns how many are on."""
    count = 0
    for schedule in await list_schedules(session, user_id=user_id):
        schedule.paused_until = until
        schedule.updated_at = now
        refresh_next_due(schedule, now)
        count += schedule.enabled
    return count


async def set_timezone(session: Session, *, user: User, timezone: str, now: datetime) -> None:
    """The person's zone; every reminder keeps its local time in the new zone."""
    zone(timezone)
    user.timezone = timezone
    assert user.id is not None
    for schedule in await list_schedules(session, user_id=user.id):
        schedule.timezone = timezone
        schedule.updated_at = now
        refresh_next_due(schedule, now)


async def disable_schedules(
    session: Session, *, user_id: int, reason: str = BLOCKED, now: datetime | None = None
) -> None:
    """Stop sending to a person who cannot be reached (403: blocked the bot, deactivated)."""
    await rows.disable_schedules(session, user_id=user_id, reason=reason, now=now or utcnow())


async def reenable_schedules(
    session: Session, *, user_id: int, now: datetime, reason: str = BLOCKED
) -> int:
    """Undo `disable_schedules` once the person is back; returns how many resume."""
    count = 0
    for schedule in await list_schedules(session, user_id=user_id):
        if schedule.disabled_reason == reason:
            schedule.disabled_reason = None
            schedule.updated_at = now
            refresh_next_due(schedule, now)
            count += schedule.enabled
    return count


async def reenable_for_user(
    db: Database, *, channel: str, external_id: str, now: datetime | None = None
) -> int:
    """For adapters: call when a person who had blocked the bot writes again (e.g. /start).

    Cheap when nothing was disabled (one indexed read); returns how many reminders resume.
    """
    now = now or utcnow()
    async with db.session() as session:
        found = await rows.disabled_schedules(session, channel=channel, external_id=external_id)
        count = 0
        for schedule in found:
            schedule.disabled_reason = None
            schedule.updated_at = now
            refresh_next_due(schedule, now)
            count += schedule.enabled
        if found:
            await session.commit()
        return count


async def disable_for_user(
    db: Database, *, channel: str, external_id: str, now: datetime | None = None
) -> None:
    """For adapters: a send to this person failed with 403 (blocked or deactivated)."""
    async with db.session() as session:
        user_id = await rows.user_id_of(session, channel=channel, external_id=external_id)
        if user_id is not None:
            await disable_schedules(session, user_id=user_id, now=now)
            await session.commit()


class Repair(enum.Enum):
    REWRITTEN = "rewritten"  # a time in another form: the same instant, in the one form
    RECOMPUTED = "recomputed"  # not a time: computed again from the reminder's local time
    LEFT = "left"  # neither: the reminder's own fields cannot be read either


async def repair_due_times(session: Session, *, now: datetime) -> list[tuple[OddDueTime, Repair]]:
    """Rewrite every odd due time in kindbot's one form (not committed); what was found.

    A time in another form keeps its instant. One that is not a time is computed again from
    the reminder's own fields, as any change to a reminder does. Each row is rewritten only
    if it still holds what was read, so a concurrent change is never overwritten.
    """
    done: list[tuple[OddDueTime, Repair]] = []
    for odd in await odd_due_times(session):
        value: datetime | None = odd.reads_as
        outcome = Repair.REWRITTEN
        if value is None:
            outcome = Repair.RECOMPUTED
            try:
                value = await recompute_due(session, schedule_id=odd.schedule_id, now=now)
            except (ValueError, LookupError):  # its time, zone or pause cannot be read
                done.append((odd, Repair.LEFT))
                continue
        await rows.rewrite_due_time(
            session, schedule_id=odd.schedule_id, stored=odd.stored, value=value
        )
        done.append((odd, outcome))
    return done


async def recompute_due(session: Session, *, schedule_id: int, now: datetime) -> datetime | None:
    """The due instant a schedule's own fields give, without reading its stored one (nothing
    is written). Raises ValueError or LookupError if those fields cannot be read either."""
    return next_due_for(await rows.schedule_fields(session, schedule_id=schedule_id), now)
