"""The outbox: replies stored in their step's transaction, sent after it commits.

A step's outputs are inserted here before the step commits, so a committed step always has
its reply either delivered or waiting in this table; the sender marks progress output by
output and deletes the row when the last one is out. Every function is one prebuilt Core
statement run in a `Step` (the engine's own fast path on SQLite), so the outbox adds one
INSERT to a step and one short transaction after the send.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Table, bindparam, delete, insert, select, update

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
            for c in ("user_id", "seq", "created_at", "sent", "lease_until", "payload_enc")
        }
    )
    .returning(OUTBOX.c.id)
)
_FOR_SEQ = select(OUTBOX.c.id, OUTBOX.c.sent, OUTBOX.c.lease_until, OUTBOX.c.payload_enc).where(
    OUTBOX.c.user_id == bindparam("uid"), OUTBOX.c.seq == bindparam("seq")
)
# Taking a reply over: only if its lease has lapsed (or `force`: no other sender can exist).
_CLAIM = (
    update(OUTBOX)
    .where(
        OUTBOX.c.id == bindparam("rid"),
        (OUTBOX.c.lease_until < bindparam("now")) | bindparam("force", type_=Boolean),
    )
    .values(lease_until=bindparam("b_lease_until"))
    .returning(OUTBOX.c.id)
)
_PROGRESS = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("rid"))
    .values(sent=bindparam("b_sent"), lease_until=bindparam("b_lease_until"))
)
_DONE = delete(OUTBOX).where(OUTBOX.c.id == bindparam("rid"))
# Replies whose sender is gone (lease lapsed), oldest first, with whom they are for.
_DUE = (
    select(
        OUTBOX.c.id,
        OUTBOX.c.seq,
        OUTBOX.c.sent,
        OUTBOX.c.payload_enc,
        USERS.c.channel,
        USERS.c.external_id,
        USERS.c.locale,
    )
    .join(USERS, USERS.c.id == OUTBOX.c.user_id)
    .where(
        USERS.c.channel == bindparam("channel"),
        (OUTBOX.c.lease_until < bindparam("now")) | bindparam("force", type_=Boolean),
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
    seq: int | None = None
    channel: str = ""
    external_id: str = ""
    locale: str | None = None


async def add(
    unit: Step,
    *,
    user_id: int,
    seq: int | None,
    payload_enc: str,
    now: datetime,
    lease: timedelta,
) -> int:
    """Keep a reply with the step that made it; its writer holds it for `lease`."""
    values = {
        "b_user_id": user_id,
        "b_seq": seq,
        "b_created_at": now,
        "b_sent": 0,
        "b_lease_until": now + lease,
        "b_payload_enc": payload_enc,
    }
    rows = await unit.run(_ADD, values)
    return int(rows[0][0])


async def for_seq(unit: Step, *, user_id: int, seq: int) -> Stored | None:
    """The unsent reply to update `seq`, if it is still waiting."""
    rows = await unit.run(_FOR_SEQ, {"uid": user_id, "seq": seq})
    if not rows:
        return None
    rid, sent, _lease, payload = rows[0]
    return Stored(id=rid, sent=sent, payload_enc=payload, seq=seq)


async def claim(
    unit: Step, *, reply_id: int, now: datetime, lease: timedelta, force: bool = False
) -> bool:
    """Hold a reply for sending; False if another sender's lease on it is still running."""
    values = {"rid": reply_id, "now": now, "force": force, "b_lease_until": now + lease}
    return bool(await unit.run(_CLAIM, values))


async def progress(
    unit: Step, *, reply_id: int, sent: int, now: datetime, lease: timedelta
) -> None:
    """`sent` outputs are delivered; the lease runs on from now."""
    await unit.run(_PROGRESS, {"rid": reply_id, "b_sent": sent, "b_lease_until": now + lease})


async def done(unit: Step, *, reply_id: int) -> None:
    """The whole reply is delivered (or can never be): nothing of it stays."""
    await unit.run(_DONE, {"rid": reply_id})


async def due(
    unit: Step, *, channel: str, now: datetime, force: bool = False, limit: int = 100
) -> list[Stored]:
    """Replies on `channel` that nobody is sending (all of them with `force`), oldest first."""
    values = {"channel": channel, "now": now, "force": force}
    return [
        Stored(
            id=r[0],
            seq=r[1],
            sent=r[2],
            payload_enc=r[3],
            channel=r[4],
            external_id=r[5],
            locale=r[6],
        )
        for r in (await unit.run(_DUE, values))[:limit]
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
    await unit.run(_TOMBSTONE_PRUNE, {"before": now - FORGOTTEN_FOR})
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
