"""The outbox: replies stored in their step's transaction, sent after it commits.

A step's outputs are inserted here before the step commits, so a committed step always has
its reply either delivered or waiting in this table; the sender marks progress output by
output and deletes the row when the last one is out. The statements are prebuilt Core
statements run in a `Step` (the engine's own fast path on SQLite), so the outbox adds one
INSERT to a step and one short transaction after the send.

Also here: which process holds a reply (PostgreSQL advisory locks, `owner_alive`), and the
/forget tombstones that keep a late update from bringing a forgotten person back (`bury`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Forgotten, Meta, OutboxReply, User

if TYPE_CHECKING:
    from storage.db import Step

OUTBOX: Table = OutboxReply.__table__  # type: ignore[attr-defined]
FORGOTTEN: Table = Forgotten.__table__  # type: ignore[attr-defined]
USERS: Table = User.__table__  # type: ignore[attr-defined]
META: Table = Meta.__table__  # type: ignore[attr-defined]
# Telegram keeps an unconfirmed update for 24 hours; a tombstone needs to outlive it, no more.
FORGOTTEN_FOR = timedelta(hours=24)
SALT_KEY = "forgotten_salt"

_ADD = (
    insert(OUTBOX)
    .values(
        {
            c: bindparam(f"b_{c}")
            for c in (
                "user_id",
                "seq",
                "created_at",
                "sent",
                "lease_until",
                "lease_owner",
                "payload_enc",
            )
        }
    )
    .returning(OUTBOX.c.id)
)
_FOR_SEQ = select(
    OUTBOX.c.id, OUTBOX.c.sent, OUTBOX.c.lease_owner, OUTBOX.c.payload_enc, OUTBOX.c.lease_until
).where(OUTBOX.c.user_id == bindparam("uid"), OUTBOX.c.seq == bindparam("seq"))
# Taking a reply over: only if its lease has lapsed, or `force` (its owner is known to be
# gone, or no other sender can exist); and only if the owner is still the one we judged.
_CLAIM = (
    update(OUTBOX)
    .where(
        OUTBOX.c.id == bindparam("rid"),
        OUTBOX.c.lease_owner == bindparam("was"),
        (OUTBOX.c.lease_until < bindparam("now")) | bindparam("force", type_=Boolean),
    )
    .values(lease_until=bindparam("b_lease_until"), lease_owner=bindparam("b_lease_owner"))
    .returning(OUTBOX.c.id)
)
_PROGRESS = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("rid"))
    .values(sent=bindparam("b_sent"), lease_until=bindparam("b_lease_until"))
)
# PostgreSQL advisory locks, two-key form: (KINDBOT, owner). Every running process holds its
# own for as long as it lives (`hold_owner`); the server lets go of it when the process dies.
KINDBOT_LOCKS = 0x6B62  # "kb"
_TRY_OWNER = select(func.pg_try_advisory_lock(bindparam("ns"), bindparam("owner")))
_FREE_OWNER = select(func.pg_advisory_unlock(bindparam("ns"), bindparam("owner")))
_HOLD_OWNER = select(func.pg_advisory_lock(bindparam("ns"), bindparam("owner")))
_DONE = delete(OUTBOX).where(OUTBOX.c.id == bindparam("rid"))
# Replies other senders hold (or held), oldest first, with whom they are for.
_DUE = (
    select(
        OUTBOX.c.id,
        OUTBOX.c.seq,
        OUTBOX.c.sent,
        OUTBOX.c.payload_enc,
        USERS.c.channel,
        USERS.c.external_id,
        USERS.c.locale,
        OUTBOX.c.lease_owner,
        OUTBOX.c.lease_until,
    )
    .join(USERS, USERS.c.id == OUTBOX.c.user_id)
    .where(
        USERS.c.channel == bindparam("channel"),
        (OUTBOX.c.lease_owner != bindparam("me")) | (OUTBOX.c.lease_until < bindparam("now")),
    )
    .order_by(OUTBOX.c.id)
)
_TOMBSTONE_FIND = select(FORGOTTEN.c.up_to_seq).where(FORGOTTEN.c.key == bindparam("key"))
_TOMBSTONE_DROP = delete(FORGOTTEN).where(FORGOTTEN.c.key == bindparam("key"))
_TOMBSTONE_ADD = insert(FORGOTTEN).values(
    key=bindparam("b_key"), up_to_seq=bindparam("b_up_to_seq"), forgotten_at=bindparam("b_at")
)
_TOMBSTONE_PRUNE = delete(FORGOTTEN).where(FORGOTTEN.c.forgotten_at < bindparam("before"))
# (every value is a named bindparam: the statements run through storage.direct)
_SALT_FIND = select(META.c.value).where(META.c.key == bindparam("mkey"))
_SALT_ADD = insert(META).values(key=bindparam("b_key"), value=bindparam("b_value"))


@dataclass(frozen=True, slots=True)
class Stored:
    """One outbox row as the sender needs it (payload still encrypted)."""

    id: int
    sent: int
    payload_enc: str
    owner: int
    seq: int | None = None
    channel: str = ""
    external_id: str = ""
    locale: str | None = None
    lease_until: datetime | None = None


async def add(
    unit: Step,
    *,
    user_id: int,
    seq: int | None,
    payload_enc: str,
    now: datetime,
    lease: timedelta,
    owner: int,
) -> int:
    """Keep a reply with the step that made it; its writer (`owner`) holds it for `lease`."""
    values = {
        "b_user_id": user_id,
        "b_seq": seq,
        "b_created_at": now,
        "b_sent": 0,
        "b_lease_until": now + lease,
        "b_lease_owner": owner,
        "b_payload_enc": payload_enc,
    }
    rows = await unit.run(_ADD, values)
    return int(rows[0][0])


async def for_seq(unit: Step, *, user_id: int, seq: int) -> Stored | None:
    """The unsent reply to update `seq`, if it is still waiting."""
    rows = await unit.run(_FOR_SEQ, {"uid": user_id, "seq": seq})
    if not rows:
        return None
    rid, sent, owner, payload, until = rows[0]
    return Stored(id=rid, sent=sent, payload_enc=payload, owner=owner, seq=seq, lease_until=until)


async def claim(
    unit: Step,
    *,
    stored: Stored,
    owner: int,
    now: datetime,
    lease: timedelta,
    force: bool = False,
) -> bool:
    """Hold a reply for sending (as `owner`); False if another sender's lease on it is still
    running (unless `force`), or if someone else took it meanwhile."""
    values = {
        "rid": stored.id,
        "was": stored.owner,
        "now": now,
        "force": force,
        "b_lease_until": now + lease,
        "b_lease_owner": owner,
    }
    return bool(await unit.run(_CLAIM, values))


async def owner_alive(unit: Step, owner: int) -> bool:
    """Whether the process `owner` still runs: on PostgreSQL, whether it still holds its
    advisory lock (a killed process's session ends, and the server lets go of the lock).
    Elsewhere this cannot be known: True, and the lease decides."""
    if unit.conn.dialect.name != "postgresql":
        return True
    keys = {"ns": KINDBOT_LOCKS, "owner": owner}
    rows = await unit.run(_TRY_OWNER, keys)
    if not rows or not rows[0][0]:
        return True
    await unit.run(_FREE_OWNER, keys)
    return False


async def free_owner(conn: AsyncConnection, owner: int) -> None:
    """Let go of `owner`'s advisory lock (a connection returned to the pool keeps it)."""
    await conn.execute(_FREE_OWNER, {"ns": KINDBOT_LOCKS, "owner": owner})
    await conn.commit()


async def hold_owner(conn: AsyncConnection, owner: int) -> None:
    """Take `owner`'s advisory lock on `conn` (PostgreSQL), for as long as `conn` is open."""
    await conn.execute(_HOLD_OWNER, {"ns": KINDBOT_LOCKS, "owner": owner})
    await conn.commit()


async def progress(
    unit: Step, *, reply_id: int, sent: int, now: datetime, lease: timedelta
) -> None:
    """`sent` outputs are delivered; the lease runs on from now."""
    await unit.run(_PROGRESS, {"rid": reply_id, "b_sent": sent, "b_lease_until": now + lease})


async def done(unit: Step, *, reply_id: int) -> None:
    """The whole reply is delivered (or can never be): nothing of it stays."""
    await unit.run(_DONE, {"rid": reply_id})


async def held_by_others(unit: Step, *, channel: str, me: int, now: datetime) -> list[Stored]:
    """Replies on `channel` held by other senders, or by `me` with the lease lapsed (a send
    that failed), oldest first."""
    return [
        Stored(
            id=r[0],
            seq=r[1],
            sent=r[2],
            payload_enc=r[3],
            channel=r[4],
            external_id=r[5],
            locale=r[6],
            owner=r[7],
            lease_until=r[8],
        )
        for r in await unit.run(_DUE, {"channel": channel, "me": me, "now": now})
    ]


# -- tombstones ----------------------------------------------------------------------------
async def _salt(unit: Step) -> str:
    rows = await unit.run(_SALT_FIND, {"mkey": SALT_KEY})
    if rows:
        return str(rows[0][0])
    salt = secrets.token_hex(16)
    await unit.run(_SALT_ADD, {"b_key": SALT_KEY, "b_value": salt})
    return salt


def _key(salt: str, channel: str, external_id: str) -> str:
    return hashlib.sha256(f"{salt}:{channel}:{external_id}".encode()).hexdigest()


async def bury(
    unit: Step, *, channel: str, external_id: str, up_to_seq: int | None, now: datetime
) -> None:
    """Remember for a day that this person was forgotten at update `up_to_seq`."""
    key = _key(await _salt(unit), channel, external_id)
    await prune_forgotten(unit, now=now)
    await unit.run(_TOMBSTONE_DROP, {"key": key})
    await unit.run(_TOMBSTONE_ADD, {"b_key": key, "b_up_to_seq": up_to_seq, "b_at": now})


async def prune_forgotten(unit: Step, *, now: datetime) -> None:
    await unit.run(_TOMBSTONE_PRUNE, {"before": now - FORGOTTEN_FOR})


async def buried(unit: Step, *, channel: str, external_id: str, seq: int) -> bool:
    """Whether update `seq` was sent before this (unknown) person's erasure."""
    rows = await unit.run(_SALT_FIND, {"mkey": SALT_KEY})
    if not rows:
        return False
    key = _key(str(rows[0][0]), channel, external_id)
    found = await unit.run(_TOMBSTONE_FIND, {"key": key})
    return bool(found) and found[0][0] is not None and seq <= int(found[0][0])
