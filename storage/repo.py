"""Repository functions: each takes the session — or, for what an engine step itself writes
(the person, their conversation, entries), the step (`storage.db.Step`) — and keyword-only
arguments."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Delete, Insert, Table, Update, bindparam, delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from storage.crypto import Cipher
from storage.models import Conversation, Entry, SafetyEvent, SafetyPlan, User, utcnow

if TYPE_CHECKING:
    from storage.db import Step

M = TypeVar("M", User, Conversation)
EMPTY_STATE: dict[str, Any] = {"stack": [], "paused": {}}
# How many handled sequence numbers a conversation remembers. A redelivery after a crash
# repeats only the last unconfirmed batch of updates, a handful per person at most.
SEEN_SEQS = 32

USERS: Table = User.__table__  # type: ignore[attr-defined]
CONVERSATIONS: Table = Conversation.__table__  # type: ignore[attr-defined]
# The person and their conversation in one statement: the hot path of every event.
_PERSON = (
    select(User, Conversation)
    .join(Conversation, col(Conversation.user_id) == col(User.id))
    .where(
        col(User.channel) == bindparam("channel"),
        col(User.external_id) == bindparam("external_id"),
    )
)
_PERSON_LOCKED = _PERSON.with_for_update()
# The same join as plain columns, for the Core hot path (`load_person_core`): no ORM loading.
USER_COLUMNS = tuple(USERS.c)
_PERSON_CORE = (
    core_select(*USER_COLUMNS, *CONVERSATIONS.c)
    .join(CONVERSATIONS, CONVERSATIONS.c.user_id == USERS.c.id)
    .where(
        USERS.c.channel == bindparam("channel"),
        USERS.c.external_id == bindparam("external_id"),
    )
)
_PERSON_CORE_LOCKED = _PERSON_CORE.with_for_update()
_USER_EXISTS = core_select(USERS.c.id).where(
    USERS.c.channel == bindparam("channel"), USERS.c.external_id == bindparam("external_id")
)
SelectPerson = Select[User, Conversation]
_PERSON_NAMES = tuple(c.name for c in _PERSON_CORE.exported_columns)
_SAVE: Update = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.user_id == bindparam("uid"))
    .values({c: bindparam(f"b_{c}") for c in ("state_enc", "step", "seen_seqs", "updated_at")})
)
ENTRIES: Table = Entry.__table__  # type: ignore[attr-defined]
_ENTRY_FIELDS = ("answers_enc", "scores", "status", "finished_at")
_CREATE_ENTRY: Insert = (
    insert(ENTRIES)
    .values({c: bindparam(f"b_{c}") for c in ("user_id", "kind", "dialog", "started_at")})
    .values({c: bindparam(f"b_{c}") for c in _ENTRY_FIELDS})
    .returning(ENTRIES.c.id)
)
# An entry is only ever written by its owner's step: the id and the owner must both match.
_RECORD_ENTRY: Update = (
    update(ENTRIES)
    .where(ENTRIES.c.id == bindparam("eid"), ENTRIES.c.user_id == bindparam("uid"))
    .values({c: bindparam(f"b_{c}") for c in _ENTRY_FIELDS})
)
_DELETE_ENTRY: Delete = delete(ENTRIES).where(
    ENTRIES.c.id == bindparam("eid"), ENTRIES.c.user_id == bindparam("uid")
)
# One UPDATE per set of user columns an event changes (consent, counters…), built once.
_USER_UPDATES: dict[frozenset[str], Update] = {}


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


def person_query(*, lock: bool) -> SelectPerson:
    """A person's user and conversation columns (bind `channel`, `external_id`): one row,
    none before their first step. Built once: building a statement and its cache key costs
    more than running it on SQLite."""
    return _PERSON_LOCKED if lock else _PERSON


def person_core_query(*, lock: bool) -> Any:
    """`person_query` as plain columns (users' first, then conversations'); built once."""
    return _PERSON_CORE_LOCKED if lock else _PERSON_CORE


_MAPPERS_READY = False


def _configure_mappers_once() -> None:
    """Set the ORM's mappers up before the first object is built outside a session (checking
    on every call, as `configure_mappers` does, costs a quarter of building the object)."""
    global _MAPPERS_READY
    configure_mappers()
    _MAPPERS_READY = True


def detached(model: type[M], values: dict[str, Any]) -> M:
    """An ORM object for a row read with Core, as if a session had loaded and let it go.

    Building it this way skips both the ORM's row loading and pydantic's validation (the
    values come straight from the database). The object is *detached*: changes made to it
    are tracked as usual (`changed_columns`), and `AsyncSession.add` makes it persistent
    again so a session flushes those changes like any loaded object's.
    """
    if not _MAPPERS_READY:
        _configure_mappers_once()
    obj = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    instance_state(obj).dict.update(values)
    make_transient_to_detached(obj)
    return obj  # type: ignore[no-any-return]


def changed_columns(obj: User) -> dict[str, Any]:
    """Columns of a detached object set since it was loaded (new values)."""
    state = instance_state(obj)
    return {name: state.dict[name] for name in state.committed_state}


async def save_user_changes(unit: Step, user: User) -> None:
    """Write the user fields an event changed (consent, counters…) with one UPDATE, if any."""
    changed = changed_columns(user)
    if not changed:
        return
    columns = frozenset(changed)
    statement = _USER_UPDATES.get(columns)
    if statement is None:
        statement = _USER_UPDATES[columns] = (
            update(USERS)
            .where(USERS.c.id == bindparam("uid"))
            .values({c: bindparam(f"b_{c}") for c in sorted(columns)})
        )
    await unit.run(statement, {"uid": user.id, **{f"b_{k}": v for k, v in changed.items()}})


async def load_person_core(
    unit: Step, *, channel: str, external_id: str, cipher: Cipher, lock: bool
) -> tuple[User, Conversation, dict[str, Any]] | None:
    """`load_person` without a session: one Core query, detached objects; None if the
    person has no rows yet (their first contact creates them through a session)."""
    person = {"channel": channel, "external_id": external_id}
    rows = await unit.run(person_core_query(lock=lock), person)
    if not rows:
        return None
    n = len(USER_COLUMNS)
    user = detached(User, dict(zip(_PERSON_NAMES[:n], rows[0][:n], strict=True)))
    row = detached(Conversation, dict(zip(_PERSON_NAMES[n:], rows[0][n:], strict=True)))
    return user, row, json.loads(cipher.decrypt(row.state_enc))


async def user_exists(unit: Step, *, channel: str, external_id: str) -> bool:
    """Whether this person has a users row (with or without a conversation yet)."""
    return bool(await unit.run(_USER_EXISTS, {"channel": channel, "external_id": external_id}))


def conversation_update() -> Update:
    """Write a conversation row back (bind `uid`, `state_enc`, `step`, `seen_seqs`,
    `updated_at` as `b_<column>`); built once, like `person_query`."""
    return _SAVE


async def load_person(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    locale: str | None,
    cipher: Cipher,
    lock: bool,
) -> tuple[User, Conversation, dict[str, Any]]:
    """The person, their conversation row and its decrypted state, for one event.

    One query (a join) instead of two: each statement is a round trip, and on SQLite a trip
    to aiosqlite's thread. Both rows are ORM objects in the session, so actions keep setting
    `turn.user.<field>` and the ORM writes back only the fields they changed, at commit; the
    conversation row itself is written by `save_conversation` with one prepared UPDATE
    (cheaper than the ORM's flush of a changed object).

    On PostgreSQL `lock` takes `FOR UPDATE` on both rows: it serializes a person's events
    across workers, and because the user row is locked too, PostgreSQL re-reads its newest
    version after waiting (counters changed by the event just before are not lost).
    A first contact (no rows yet) falls back to creating them.
    """
    person = {"channel": channel, "external_id": external_id}
    found = (await session.execute(person_query(lock=lock), person)).first()
    if found is None:
        user, _ = await get_or_create_user(
            session, channel=channel, external_id=external_id, locale=locale
        )
        assert user.id is not None
        row, state = await load_conversation(session, user_id=user.id, cipher=cipher, lock=lock)
        return user, row, state
    user, row = found
    return user, row, json.loads(cipher.decrypt(row.state_enc))


async def save_conversation(
    unit: Step,
    *,
    user_id: int,
    state: dict[str, Any],
    step: int,
    seen_seqs: list[int],
    cipher: Cipher,
) -> None:
    """Write a conversation back with one UPDATE (committed with the event's transaction)."""
    values = {
        "uid": user_id,
        "b_state_enc": cipher.encrypt(json.dumps(state, ensure_ascii=False)),
        "b_step": step,
        "b_seen_seqs": seen_seqs[-SEEN_SEQS:],
        "b_updated_at": utcnow(),
    }
    await unit.run(conversation_update(), values)


async def create_entry(
    unit: Step,
    *,
    user_id: int,
    kind: str,
    dialog: str,
    cipher: Cipher,
    started_at: datetime | None = None,
) -> int:
    """A new run of a recorded dialog, in progress and empty: its id."""
    values = {
        "b_user_id": user_id,
        "b_kind": kind,
        "b_dialog": dialog,
        "b_started_at": started_at or utcnow(),
        "b_answers_enc": cipher.encrypt("{}"),
        "b_scores": {},
        "b_status": "in_progress",
        "b_finished_at": None,
    }
    rows = await unit.run(_CREATE_ENTRY, values)
    entry_id: int = rows[0][0]
    return entry_id


async def record_entry(
    unit: Step,
    *,
    user_id: int,
    entry_id: int,
    answers: dict[str, Any],
    status: str,
    cipher: Cipher,
    finished_at: datetime | None = None,
) -> None:
    """Write a run's answers: numbers plain (for charts), everything else encrypted."""
    scores = {k: v for k, v in answers.items() if isinstance(v, int) and not isinstance(v, bool)}
    texts = {k: v for k, v in answers.items() if k not in scores}
    values = {
        "eid": entry_id,
        "uid": user_id,
        "b_answers_enc": cipher.encrypt(json.dumps(texts, ensure_ascii=False)),
        "b_scores": scores,
        "b_status": status,
        "b_finished_at": finished_at,
    }
    await unit.run(_RECORD_ENTRY, values)


async def delete_entry(unit: Step, *, user_id: int, entry_id: int) -> None:
    await unit.run(_DELETE_ENTRY, {"eid": entry_id, "uid": user_id})


def entry_answers(entry: Entry, *, cipher: Cipher) -> dict[str, Any]:
    """Every answer of an entry, text decrypted and numbers merged back in."""
    answers: dict[str, Any] = json.loads(cipher.decrypt(entry.answers_enc))
    answers.update(entry.scores)
    return answers


async def list_entries(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Entry]:
    """A person's entries, newest first; `offset` and `limit` give one page (`/history`)."""
    query = select(Entry).where(col(Entry.user_id) == user_id)
    if kind:
        query = query.where(col(Entry.kind) == kind)
    query = query.order_by(col(Entry.started_at).desc(), col(Entry.id).desc())
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())


async def entries_between(
    session: AsyncSession, *, user_id: int, since: datetime, until: datetime
) -> list[Entry]:
    """A person's entries started in [since, until), oldest first (the weekly look back
    reads one week; the index on user_id keeps it to their own rows)."""
    query = (
        select(Entry)
        .where(
            col(Entry.user_id) == user_id,
            col(Entry.started_at) >= since,
            col(Entry.started_at) < until,
        )
        .order_by(col(Entry.started_at), col(Entry.id))
    )
    return list((await session.execute(query)).scalars())


# How many of a kind's latest entries `latest_answers` reads: every run keeps the
# remembered answers it started with, so the newest entry normally holds them all; a few
# more cover runs stopped before they were written (their entries were removed as empty).
REMEMBER_FROM = 20


async def latest_answers(
    session: AsyncSession, *, user_id: int, kind: str, names: list[str], cipher: Cipher
) -> dict[str, Any]:
    """For each of `names`, its value in the person's newest entry of `kind` that holds it
    (a dialog's `remembered` answers, such as their own phrases); missing names are left out."""
    found: dict[str, Any] = {}
    for entry in await list_entries(session, user_id=user_id, kind=kind, limit=REMEMBER_FROM):
        answers = entry_answers(entry, cipher=cipher)
        for name in names:
            if name not in found and answers.get(name) not in (None, ""):
                found[name] = answers[name]
        if len(found) == len(names):
            break
    return found


async def get_entry(session: AsyncSession, *, user_id: int, entry_id: int) -> Entry | None:
    """One entry, if it is this person's: an id picked from a list may be gone by now, and
    one that was never theirs must read as gone too."""
    entry = await session.get(Entry, entry_id)
    return entry if entry is not None and entry.user_id == user_id else None


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
