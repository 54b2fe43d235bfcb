"""Replies that survive a crash: what the engine keeps of a step's outputs until they are sent.

The engine stores a step's outputs (encrypted: they quote what people wrote) in the same
transaction as the step. An adapter sends them after the commit and tells the `Outbox` how
far it got; a restart or a redelivered update sends what is left, so a committed step is
never left unanswered and an answered one is not answered again (at most the output that
was in flight when the process died is sent twice).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.engine.events import (
    DialogEnded,
    Document,
    Image,
    Later,
    Message,
    Option,
    Output,
    Pause,
    Scale,
    UserRef,
)
from storage import outbox as store
from storage.crypto import Cipher
from storage.db import Database, Step
from storage.models import as_utc

log = logging.getLogger(__name__)

# How long the process that wrote a reply has it to itself before a sweeper may take over.
LEASE = timedelta(seconds=30)


@dataclass
class Reply:
    """A step's outputs and, when kept in the outbox, where they stand.

    `start` outputs were delivered before (a reply resumed after a crash); `outbox_id` is None
    for replies that were never stored (the terminal, crisis help given without a database).
    """

    outputs: list[Output] = field(default_factory=list)
    outbox_id: int | None = None
    start: int = 0

    @property
    def pending(self) -> list[Output]:
        return self.outputs[self.start :]


def encode(outputs: list[Output]) -> str:
    """Outputs as JSON (one object per output, its type under "t")."""
    return json.dumps([_encode_one(o) for o in outputs], ensure_ascii=False)


def decode(text: str) -> list[Output]:
    return [_decode_one(item) for item in json.loads(text)]


def _encode_one(output: Output) -> dict[str, Any]:
    if isinstance(output, Message):
        return {
            "t": "message",
            "text": output.text,
            "options": [[o.value, o.label] for o in output.options],
            "scale": None if output.scale is None else [output.scale.low, output.scale.high],
            "step": output.step,
            "edits": output.edits,
            "location": output.location,
        }
    if isinstance(output, Image | Document):
        item = {
            "t": "image" if isinstance(output, Image) else "document",
            "data": base64.b64encode(output.data).decode("ascii"),
            "filename": output.filename,
            "caption": output.caption,
        }
        if isinstance(output, Document):
            item["mime_type"] = output.mime_type
        return item
    if isinstance(output, Pause):
        return {"t": "pause", "seconds": output.seconds}
    if isinstance(output, DialogEnded):
        return {"t": "ended", "dialog": output.dialog, "completed": output.completed}
    return {"t": "later", "kind": output.kind, "data": output.data}


def _decode_one(item: dict[str, Any]) -> Output:
    kind = item["t"]
    if kind == "message":
        scale = item["scale"]
        return Message(
            item["text"],
            tuple(Option(str(v), str(label)) for v, label in item["options"]),
            None if scale is None else Scale(int(scale[0]), int(scale[1])),
            item["step"],
            bool(item.get("edits", False)),  # (replies stored before it existed)
            location=str(item.get("location", "")),  # (replies stored before it existed)
        )
    if kind == "image":
        return Image(base64.b64decode(item["data"]), item["filename"], item["caption"])
    if kind == "document":
        data = base64.b64decode(item["data"])
        return Document(data, item["filename"], item["caption"], item["mime_type"])
    if kind == "pause":
        return Pause(float(item["seconds"]))
    if kind == "ended":
        return DialogEnded(item["dialog"], bool(item["completed"]))
    if kind == "later":
        return Later(item["kind"], dict(item["data"]))
    raise ValueError(f"unknown output type {kind!r}")


def visible(output: Output) -> bool:
    """Whether sending `output` reaches the person (worth recording as delivered)."""
    return not isinstance(output, Pause | DialogEnded)


class Outbox:
    """Where a reply stands, recorded in short transactions of their own after the step."""

    def __init__(self, db: Database, *, lease: timedelta = LEASE) -> None:
        self.db = db
        self.lease = lease
        # who holds what this process writes (see `hold` and storage.outbox.owner_alive)
        self.owner = secrets.randbits(31)
        self._held: AsyncConnection | None = None
        # True when this process is known to be the only sender (a polling bot: Telegram
        # serves one poller at a time), so a redelivered update takes its unsent reply over
        # at once instead of waiting for the lease of a sender that died.
        self.exclusive = False

    @property
    def cipher(self) -> Cipher:
        return self.db.cipher

    def seal(self, outputs: list[Output]) -> str:
        return self.cipher.encrypt(encode(outputs))

    def open(self, payload_enc: str) -> list[Output]:
        return decode(self.cipher.decrypt(payload_enc))

    async def progress(self, reply: Reply, sent: int, now: datetime) -> None:
        """`sent` outputs of `reply` are out: a restart resumes after them."""
        if reply.outbox_id is None:
            return
        async with self.db.single() as unit:
            await store.progress(
                unit, reply_id=reply.outbox_id, sent=sent, now=now, lease=self.lease
            )
            await unit.commit()

    async def done(self, reply: Reply) -> None:
        """Every output of `reply` is out (or can never be): forget it."""
        if reply.outbox_id is None:
            return
        async with self.db.single() as unit:
            await store.done(unit, reply_id=reply.outbox_id)
            await unit.commit()

    async def hold(self) -> None:
        """Let other processes see that this one is alive, for as long as it runs (on
        PostgreSQL: an advisory lock on a connection of its own, which the server releases
        when the process dies, so its unsent replies are taken over at once, not after the
        lease). A no-op elsewhere: SQLite serves one process, which is always `exclusive`."""
        if self._held is not None or not self.db.is_postgres:
            return
        conn = await self.db.engine.connect()
        try:
            await store.hold_owner(conn, self.owner)
        except BaseException:
            await conn.close()
            raise
        self._held = conn

    async def release(self) -> None:
        """Stop holding (at a clean stop; a killed process lets go by dying)."""
        if self._held is not None:
            conn, self._held = self._held, None
            try:
                await store.free_owner(conn, self.owner)
            finally:
                await conn.close()

    async def take(self, unit: Step, stored: store.Stored, now: datetime, *, force: bool) -> bool:
        """Hold `stored` for sending from this process: if it is ours already, if `force` or
        `exclusive`, if its lease has lapsed, or if its owner is known to be gone."""
        force = force or self.exclusive or stored.owner == self.owner
        if not force:
            until = stored.lease_until
            lapsed = until is not None and as_utc(until) < now
            force = not lapsed and not await store.owner_alive(unit, stored.owner)
        return await store.claim(
            unit, stored=stored, owner=self.owner, now=now, lease=self.lease, force=force
        )

    async def prune(self, now: datetime) -> None:
        """Drop /forget tombstones older than a day (Telegram's own limit for redelivery)."""
        async with self.db.step() as unit:
            await store.prune_forgotten(unit, now=now)
            await unit.commit()

    async def waiting(
        self, channel: str, now: datetime, *, force: bool = False, limit: int = 100
    ) -> list[tuple[UserRef, Reply]]:
        """Replies on `channel` whose sender is gone, each now held by the caller.

        `force` takes every reply regardless of leases: only right for a process that knows
        it is the only sender (a polling bot at start: Telegram serves one poller at a time).
        Replies this process is sending itself (its own, lease running) are never taken.
        """
        found: list[tuple[UserRef, Reply]] = []
        async with self.db.step() as unit:
            rows = await store.held_by_others(unit, channel=channel, me=self.owner, now=now)
            for row in rows:
                if len(found) >= limit:
                    break
                if not await self.take(unit, row, now, force=force):
                    continue
                try:
                    outputs = self.open(row.payload_enc)
                except (ValueError, KeyError, TypeError):
                    log.error("outbox reply %d cannot be read; dropped", row.id)
                    await store.done(unit, reply_id=row.id)
                    continue
                ref = UserRef(channel=row.channel, external_id=row.external_id, locale=row.locale)
                found.append((ref, Reply(outputs, row.id, row.sent)))
            await unit.commit()
        return found
