"""Reminder rows: schedules, the deliveries the dispatcher claims, and their leases.

The dispatcher (bot/reminders/dispatcher.py) decides what to claim and when; every statement
it runs is here. Claiming is safe with several dispatchers: on PostgreSQL the due rows are
read `FOR UPDATE SKIP LOCKED` (two dispatchers take different rows), and every change is a
compare-and-set on the value that was read, so a row someone else changed is left alone.
A delivery is unique per (schedule, due instant): one occurrence is claimed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Update, cast, delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from storage.dialect import insert_or_ignore, is_postgres
from storage.models import ReminderDelivery, ReminderSchedule, User, as_utc

CLAIMED, SENT, FAILED, SKIPPED = "claimed", "sent", "failed", "skipped"
BLOCKED = "blocked"
Session = AsyncSession  # for callers that hand a session through without using SQLAlchemy


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


# -- schedules ---------------------------------------------------------------------------
async def list_schedules(session: AsyncSession, *, user_id: int) -> list[ReminderSchedule]:
    query = (
        select(ReminderSchedule)
        .where(col(ReminderSchedule.user_id) == user_id)
        .order_by(col(ReminderSchedule.kind).desc(), col(ReminderSchedule.slot))
    )
    return list((await session.execute(query)).scalars())


async def get_schedule(
    session: AsyncSession, *, user_id: int, kind: str, slot: int = 0
) -> ReminderSchedule | None:
    query = select(ReminderSchedule).where(
        col(ReminderSchedule.user_id) == user_id,
        col(ReminderSchedule.kind) == kind,
        col(ReminderSchedule.slot) == slot,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def disable_schedules(
    session: AsyncSession, *, user_id: int, reason: str = BLOCKED, now: datetime
) -> None:
    """Nothing more is due for this person (e.g. 403: they blocked the bot)."""
    await session.execute(
        update(ReminderSchedule)
        .where(col(ReminderSchedule.user_id) == user_id)
        .values(disabled_reason=reason, next_due_utc=None, updated_at=now)
    )


async def disabled_schedules(
    session: AsyncSession, *, channel: str, external_id: str, reason: str = BLOCKED
) -> list[ReminderSchedule]:
    """The person's schedules switched off for `reason` (one indexed read; usually none)."""
    query = (
        select(ReminderSchedule)
        .join(User, col(User.id) == col(ReminderSchedule.user_id))
        .where(
            col(User.channel) == channel,
            col(User.external_id) == external_id,
            col(ReminderSchedule.disabled_reason) == reason,
        )
    )
    return list((await session.execute(query)).scalars())


async def user_id_of(session: AsyncSession, *, channel: str, external_id: str) -> int | None:
    query = select(User.id).where(
        col(User.channel) == channel, col(User.external_id) == external_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def schedule_fields(session: AsyncSession, *, schedule_id: int) -> ReminderSchedule:
    """A schedule's own fields (not its stored due time), as a detached copy; raises
    NoResultFound if there is no such schedule."""
    fields = ("enabled", "disabled_reason", "local_time", "timezone", "days", "paused_until")
    query = select(*(getattr(ReminderSchedule, f) for f in fields)).where(
        col(ReminderSchedule.id) == schedule_id
    )
    row = (await session.execute(query)).one()
    return ReminderSchedule(**dict(zip(fields, row, strict=True)))


# -- due times stored in another form (SQLite) --------------------------------------------
# How SQLAlchemy writes a DateTime on SQLite (as UTC text, no offset); the dispatcher's
# `next_due_utc <= now` and its compare-and-set compare these strings as text, so a value in
# any other form ('...T...Z', '+00:00', no microseconds) is never due, or never moves.
CANONICAL_DUE = "????-??-?? ??:??:??.??????".replace("?", "[0-9]")


@dataclass(frozen=True)
class OddDueTime:
    """A stored `next_due_utc` not in the form kindbot compares (only on SQLite)."""

    schedule_id: int
    stored: str  # a time (or not), never anything a person wrote
    reads_as: datetime | None  # the instant it names, in UTC; None if it is not a time


def read_due_time(stored: str) -> datetime | None:
    """Any ISO 8601 text as an instant in UTC (no offset: UTC, as kindbot stores); else None."""
    try:
        return as_utc(datetime.fromisoformat(stored.strip()))
    except ValueError:
        return None


async def odd_due_times(session: AsyncSession) -> list[OddDueTime]:
    """Every due time stored in another form than kindbot's (PostgreSQL's column is typed)."""
    if session.get_bind().dialect.name != "sqlite":
        return []
    due = col(ReminderSchedule.next_due_utc)
    stored = cast(due, String)
    query = (
        select(col(ReminderSchedule.id), stored)
        .where(
            due.is_not(None),
            or_(
                func.typeof(due) != "text",
                stored.op("NOT GLOB", is_comparison=True)(CANONICAL_DUE),
            ),
        )
        .order_by(col(ReminderSchedule.id))
    )
    found = []
    for schedule_id, text in (await session.execute(query)).all():
        assert schedule_id is not None  # a primary key
        found.append(OddDueTime(schedule_id, str(text), read_due_time(str(text))))
    return found


async def rewrite_due_time(
    session: AsyncSession, *, schedule_id: int, stored: str, value: datetime | None
) -> None:
    """Store `value` as the schedule's due time if it still holds the text `stored`."""
    as_text = cast(col(ReminderSchedule.next_due_utc), String)
    await session.execute(
        update(ReminderSchedule)
        .where(col(ReminderSchedule.id) == schedule_id, as_text == stored)
        .values(next_due_utc=value)
    )


# -- claiming ------------------------------------------------------------------------------
async def expired_claims(
    session: AsyncSession, *, channel: str, now: datetime, limit: int
) -> list[tuple[ReminderDelivery, User]]:
    """Deliveries claimed by a dispatcher whose lease ran out unsent, oldest first."""
    query = (
        select(ReminderDelivery, User)
        .join(User, col(User.id) == col(ReminderDelivery.user_id))
        .where(
            col(ReminderDelivery.status) == CLAIMED,
            col(ReminderDelivery.lease_expires_at) < now,
            col(User.channel) == channel,
        )
        .order_by(col(ReminderDelivery.due_utc))
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=ReminderDelivery)
    return [(d, u) for d, u in (await session.execute(query)).all()]


async def take_over(
    session: AsyncSession,
    delivery: ReminderDelivery,
    *,
    owner: str,
    expires: datetime,
    late: bool,
) -> bool:
    """Claim an expired delivery for `owner` (or, `late`, record it skipped); False if
    another dispatcher took it first."""
    taken = await session.execute(
        update(ReminderDelivery)
        .where(
            col(ReminderDelivery.id) == delivery.id,
            col(ReminderDelivery.status) == CLAIMED,
            col(ReminderDelivery.lease_expires_at) == delivery.lease_expires_at,
        )
        .values(
            status=SKIPPED if late else CLAIMED,
            error="late" if late else delivery.error,
            lease_owner=None if late else owner,
            lease_expires_at=None if late else expires,
        )
    )
    return _rowcount(taken) == 1


async def due_schedules(
    session: AsyncSession, *, channel: str, now: datetime, limit: int, skip: set[int]
) -> list[tuple[ReminderSchedule, User]]:
    """Schedules due by `now`, earliest first, leaving out the ids in `skip`."""
    if limit <= 0:
        return []
    query = (
        select(ReminderSchedule, User)
        .join(User, col(User.id) == col(ReminderSchedule.user_id))
        .where(col(ReminderSchedule.next_due_utc) <= now, col(User.channel) == channel)
        .order_by(col(ReminderSchedule.next_due_utc))
        .limit(limit)
    )
    if skip:
        query = query.where(col(ReminderSchedule.id).not_in(skip))
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=ReminderSchedule)
    return [(s, u) for s, u in (await session.execute(query)).all()]


async def advance(
    session: AsyncSession, schedule: ReminderSchedule, *, following: datetime | None, now: datetime
) -> bool:
    """Move the schedule's due time on to `following` if it still holds the one read."""
    moved = await session.execute(
        update(ReminderSchedule)
        .where(
            col(ReminderSchedule.id) == schedule.id,
            col(ReminderSchedule.next_due_utc) == schedule.next_due_utc,
        )
        .values(next_due_utc=following, updated_at=now)
    )
    return _rowcount(moved) == 1


async def add_delivery(
    session: AsyncSession,
    schedule: ReminderSchedule,
    *,
    due_utc: datetime,
    now: datetime,
    owner: str,
    expires: datetime,
    late: bool,
) -> int | None:
    """Record one occurrence, claimed by `owner` (or skipped, `late`); its id, or None if
    this occurrence was recorded before."""
    values: dict[str, Any] = {
        "schedule_id": schedule.id,
        "user_id": schedule.user_id,
        "kind": schedule.kind,
        "due_utc": due_utc,
        "status": SKIPPED if late else CLAIMED,
        "attempts": 0,
        "error": "late" if late else None,
        "claimed_at": now,
        "lease_owner": None if late else owner,
        "lease_expires_at": None if late else expires,
    }
    statement = insert_or_ignore(
        session, ReminderDelivery, values, unique=("schedule_id", "due_utc")
    ).returning(col(ReminderDelivery.id))
    inserted: int | None = (await session.execute(statement)).scalar_one_or_none()
    return inserted


def _owned(delivery_id: int, owner: str) -> Update:
    """An UPDATE of the delivery, if `owner` still holds it."""
    return update(ReminderDelivery).where(
        col(ReminderDelivery.id) == delivery_id, col(ReminderDelivery.lease_owner) == owner
    )


async def stretch_lease(
    session: AsyncSession, *, delivery_id: int, owner: str, until: datetime
) -> bool:
    """Keep `owner`'s claim until `until`; False if the claim is no longer theirs."""
    result = await session.execute(
        _owned(delivery_id, owner)
        .where(col(ReminderDelivery.status) == CLAIMED)
        .values(lease_expires_at=until)
    )
    return _rowcount(result) == 1


async def finish(
    session: AsyncSession,
    *,
    delivery_id: int,
    owner: str,
    status: str,
    attempts: int,
    error: str | None,
    now: datetime,
) -> bool:
    """Record how `owner`'s delivery ended and let go of it; False if it was not theirs."""
    result = await session.execute(
        _owned(delivery_id, owner).values(
            status=status,
            attempts=attempts,
            error=error,
            sent_at=now if status == SENT else None,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return _rowcount(result) == 1


async def prune_deliveries(session: AsyncSession, *, before: datetime) -> None:
    """Forget finished deliveries due before `before`."""
    await session.execute(
        delete(ReminderDelivery).where(
            col(ReminderDelivery.due_utc) < before,
            col(ReminderDelivery.status) != CLAIMED,
        )
    )
