"""The tables. Free text a person writes is stored only in `*_enc` columns (encrypted);
numbers needed for charts stay plain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    # Set when the person blocked the bot (Telegram 403 or my_chat_member); /start clears it.
    blocked_at: datetime | None = _optional_ts()
    counters: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


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
