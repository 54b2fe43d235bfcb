"""The tables. Free text a person writes is stored only in `*_enc` columns (encrypted);
numbers needed for charts stay plain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything kindbot stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional_ts() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class User(SQLModel, table=True):
    """A person, as known through one channel (Telegram, the terminal)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_users_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    locale: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    consented_at: datetime | None = _optional_ts()
    # ISO 3166 code the person chose for crisis contacts (/country); None: from the language tag.
    country: str | None = Field(default=None, max_length=2)
    # Set when the person blocked the bot (Telegram 403 or my_chat_member); /start clears it.
    blocked_at: datetime | None = _optional_ts()
    counters: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # IANA zone the person chose for reminders; None: DEFAULT_TIMEZONE.
    timezone: str | None = Field(default=None, max_length=64)


class Conversation(SQLModel, table=True):
    """Where a person is: a stack of dialog frames and paused frames (encrypted JSON)."""

    __tablename__ = "conversations"

    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    step: int = 0
    state_enc: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Sequence numbers (Telegram update ids) of the last few events handled, so an event
    # delivered again after a crash is recognised and skipped (see repo.SEEN_SEQS).
    seen_seqs: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )


class Entry(SQLModel, table=True):
    """One run of a recorded dialog: a reframe, a check-in, a reflection."""

    __tablename__ = "entries"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=32)
    dialog: str = Field(max_length=64)
    status: str = Field(default="in_progress", max_length=16)
    answers_enc: str = Field(sa_column=Column(Text, nullable=False))
    scores: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = _optional_ts()


class Meta(SQLModel, table=True):
    """Small key/value facts about the database itself (such as the key check)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class SafetyEvent(SQLModel, table=True):
    """A crisis screen match or an /sos: when, which category, where. Never the words."""

    __tablename__ = "safety_events"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    category: str = Field(max_length=32)
    level: str = Field(max_length=16)
    dialog: str | None = Field(default=None, max_length=64)
    state: str | None = Field(default=None, max_length=64)


class SafetyPlan(SQLModel, table=True):
    """A person's own safety plan: every part in one encrypted JSON object."""

    __tablename__ = "safety_plans"

    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    plan_enc: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ReminderSchedule(SQLModel, table=True):
    """One reminder a person set: a local time on some weekdays, in their IANA zone.

    `next_due_utc` is the next instant to send, or NULL while the reminder is off, paused
    past any occurrence, or the person cannot be reached (`disabled_reason`, e.g. "blocked").
    """

    __tablename__ = "reminder_schedules"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", "slot", name="uq_reminder_schedules_user_kind_slot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=16)
    slot: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    local_time: str = Field(max_length=5)
    days: int = Field(default=127, sa_column=Column(Integer, nullable=False))
    timezone: str = Field(max_length=64)
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    # The weekly look back only: whether the person allowed one of their own kind sentences
    # of the week to be quoted back in it (asked when they opt in; off unless they said yes).
    quote: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    paused_until: datetime | None = _optional_ts()
    disabled_reason: str | None = Field(default=None, max_length=32)
    next_due_utc: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=True)
    )
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ReminderDelivery(SQLModel, table=True):
    """One due occurrence of a schedule, recorded (claimed) before it is sent.

    The unique (schedule, due instant) pair is what makes an occurrence go out at most once
    per claim; a claim whose lease expired unsent is taken over by any dispatcher.
    """

    __tablename__ = "reminder_deliveries"
    __table_args__ = (
        UniqueConstraint("schedule_id", "due_utc", name="uq_reminder_deliveries_schedule_due"),
        Index("ix_reminder_deliveries_status_lease", "status", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(
        sa_column=Column(ForeignKey("reminder_schedules.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=16)
    due_utc: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    status: str = Field(default="claimed", max_length=16)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    error: str | None = Field(default=None, max_length=64)
    claimed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = _optional_ts()
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _optional_ts()


class ReminderRate(SQLModel, table=True):
    """The shared token bucket of the reminder rate limit (one row), so that several
    dispatchers on one database together stay within `REMINDER_RATE_LIMIT`."""

    __tablename__ = "reminder_rate"

    id: int = Field(default=1, primary_key=True)
    tokens: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class OutboxReply(SQLModel, table=True):
    """A reply the engine produced, kept from its step's commit until Telegram has it.

    Written in the same transaction as the step, so a committed step always has its reply
    somewhere: sent (row deleted), or here to be sent after a crash. `sent` counts the outputs
    already delivered (a restart resends only the one in flight). `lease_until` keeps two
    workers from sending the same reply: the one that wrote it (`lease_owner`) holds it first;
    another takes over once the lease has lapsed or, on PostgreSQL, as soon as the owner is
    known to be gone. Not exported: it is a message in transit, not a record.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_user_seq", "user_id", "seq"), {"info": {"export": False}})

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    # the update id that caused it (None: not from an update)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    lease_until: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    # the process holding it (see storage.outbox.owner_alive)
    lease_owner: int = Field(sa_column=Column(BigInteger, nullable=False))
    payload_enc: str = Field(sa_column=Column(Text, nullable=False))


class Forgotten(SQLModel, table=True):
    """A person who used /forget, for a day: a salted hash of who they were and the last
    update id their erasure covered, so a late copy of an update sent before /forget (a
    redelivery after a crash) cannot bring them back. Telegram drops unconfirmed updates
    after 24 hours, and so do we."""

    __tablename__ = "forgotten"

    key: str = Field(primary_key=True, max_length=64)
    up_to_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    forgotten_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
