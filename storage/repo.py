"""Repository functions: each takes the session and keyword-only arguments."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from storage.crypto import Cipher
from storage.models import Conversation, Entry, SafetyEvent, SafetyPlan, User, utcnow

EMPTY_STATE: dict[str, Any] = {"stack": [], "paused": {}}


async def get_or_create_user(
    session: AsyncSession, *, channel: str, external_id: str, locale: str | None = None
) -> tuple[User, bool]:
    """The user and whether they were just created (safe against a concurrent insert)."""
    query = select(User).where(col(User.channel) == channel, col(User.external_id) == external_id)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is not None:
        return user, False
    try:
        async with session.begin_nested():
            user = User(
                channel=channel,
                external_id=external_id,
                locale=locale,
                created_at=utcnow(),
                counters={},
            )
            session.add(user)
            await session.flush()
    except IntegrityError:
        user = (await session.execute(query)).scalar_one()
        return user, False
    return user, True


async def set_blocked(
    session: AsyncSession, *, channel: str, external_id: str, at: datetime | None
) -> bool:
    """Mark a known person as unreachable (`at`) or reachable again (None); False if unknown.

    Nobody is created here: a stranger who blocks the bot leaves nothing behind.
    """
    query = select(User).where(col(User.channel) == channel, col(User.external_id) == external_id)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        return False
    if (user.blocked_at is None) != (at is None):
        user.blocked_at = at
    return True


async def load_conversation(
    session: AsyncSession, *, user_id: int, cipher: Cipher, lock: bool
) -> tuple[Conversation, dict[str, Any]]:
    """The conversation row (created if missing), locked for this step on PostgreSQL."""
    query = select(Conversation).where(col(Conversation.user_id) == user_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        try:
            async with session.begin_nested():
                row = Conversation(
                    user_id=user_id,
                    step=0,
                    state_enc=cipher.encrypt(json.dumps(EMPTY_STATE)),
                    updated_at=utcnow(),
                )
                session.add(row)
                await session.flush()
        except IntegrityError:
            row = (await session.execute(query)).scalar_one()
    state: dict[str, Any] = json.loads(cipher.decrypt(row.state_enc))
    return row, state


def store_conversation(
    row: Conversation, *, state: dict[str, Any], step: int, cipher: Cipher
) -> None:
    row.state_enc = cipher.encrypt(json.dumps(state, ensure_ascii=False))
    row.step = step
    row.updated_at = utcnow()


async def create_entry(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    dialog: str,
    cipher: Cipher,
    started_at: datetime | None = None,
) -> Entry:
    entry = Entry(
        user_id=user_id,
        kind=kind,
        dialog=dialog,
        status="in_progress",
        answers_enc=cipher.encrypt("{}"),
        scores={},
        started_at=started_at or utcnow(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def record_entry(
    session: AsyncSession,
    *,
    entry_id: int,
    answers: dict[str, Any],
    status: str,
    cipher: Cipher,
    finished_at: datetime | None = None,
) -> Entry | None:
    """Write a run's answers: numbers plain (for charts), everything else encrypted."""
    entry = await session.get(Entry, entry_id)
    if entry is None:
        return None
    scores = {k: v for k, v in answers.items() if isinstance(v, int) and not isinstance(v, bool)}
    texts = {k: v for k, v in answers.items() if k not in scores}
    entry.answers_enc = cipher.encrypt(json.dumps(texts, ensure_ascii=False))
    entry.scores = scores
    entry.status = status
    entry.finished_at = finished_at
    return entry


async def delete_entry(session: AsyncSession, *, entry_id: int) -> None:
    entry = await session.get(Entry, entry_id)
    if entry is not None:
        await session.delete(entry)


def entry_answers(entry: Entry, *, cipher: Cipher) -> dict[str, Any]:
    """Every answer of an entry, text decrypted and numbers merged back in."""
    answers: dict[str, Any] = json.loads(cipher.decrypt(entry.answers_enc))
    answers.update(entry.scores)
    return answers


async def list_entries(
    session: AsyncSession, *, user_id: int, kind: str | None = None
) -> list[Entry]:
    query = select(Entry).where(col(Entry.user_id) == user_id)
    if kind:
        query = query.where(col(Entry.kind) == kind)
    query = query.order_by(col(Entry.started_at).desc(), col(Entry.id).desc())
    return list((await session.execute(query)).scalars())


async def add_safety_event(
    session: AsyncSession,
    *,
    user_id: int,
    category: str,
    level: str,
    dialog: str | None,
    state: str | None,
    at: datetime | None = None,
) -> SafetyEvent:
    """Record that the crisis screen matched (or /sos was used); never what was written."""
    event = SafetyEvent(
        user_id=user_id,
        created_at=at or utcnow(),
        category=category,
        level=level,
        dialog=dialog,
        state=state,
    )
    session.add(event)
    await session.flush()
    return event


async def list_safety_events(session: AsyncSession, *, user_id: int) -> list[SafetyEvent]:
    query = (
        select(SafetyEvent)
        .where(col(SafetyEvent.user_id) == user_id)
        .order_by(col(SafetyEvent.created_at).desc(), col(SafetyEvent.id).desc())
    )
    return list((await session.execute(query)).scalars())


async def get_safety_plan(session: AsyncSession, *, user_id: int, cipher: Cipher) -> dict[str, str]:
    """The person's safety plan, part name → their words ({} if they have none)."""
    row = await session.get(SafetyPlan, user_id)
    if row is None:
        return {}
    plan: dict[str, str] = json.loads(cipher.decrypt(row.plan_enc))
    return plan


async def save_safety_plan(
    session: AsyncSession,
    *,
    user_id: int,
    parts: dict[str, str],
    cipher: Cipher,
    at: datetime | None = None,
) -> dict[str, str]:
    """Merge `parts` into the stored plan (parts not given are kept); returns the whole plan."""
    row = await session.get(SafetyPlan, user_id)
    plan: dict[str, str] = json.loads(cipher.decrypt(row.plan_enc)) if row else {}
    plan.update(parts)
    token = cipher.encrypt(json.dumps(plan, ensure_ascii=False))
    if row is None:
        session.add(SafetyPlan(user_id=user_id, plan_enc=token, updated_at=at or utcnow()))
    else:
        row.plan_enc = token
        row.updated_at = at or utcnow()
    await session.flush()
    return plan
