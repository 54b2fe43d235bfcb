"""Replaying a conversation written as data against the real engine and database.

A transcript is YAML:

    name: what it shows
    user: alice                  # optional; who is talking (default: "transcript")
    language: en-GB              # optional; their language tag (as Telegram gives it)
    settings: {split_seconds: 4} # optional; settings other than the tests' defaults
    steps:
      - user: "I'm useless"      # the person sends text (or a /command)
      - user: {repeat: "a", times: 4000}   # generated text
      - press: "Yes, that's okay"  # presses the button with this label in the latest offer
      - press_stale: "I see it"  # presses a button from an earlier message (old step)
      - press_value: "forged"    # sends a choice value no button offered, current step
      - unsupported: sticker     # something that is not text
      - bot: "substring"         # the next bot message of the latest reply contains this
                                  # (a list: contains each of them)
      - bot_not: "substring"     # no message of the latest reply contains this
      - offers: [A, B]           # the latest reply's last message offers exactly these labels
      - scale: true              # the latest reply's last message asks for a 0–10 rating
      - silent: true             # the latest reply has no messages
      - state: reframe.feeling   # the person's current dialog.state ("none" when idle)
      - entries: [{kind: reframe, status: stopped}]   # their stored entries, newest first
      - restart: true            # close everything and start again on the same database
      - advance: {minutes: 5}    # move the clock
      - shown: {new: 2, in_place: 6}   # the latest reply's messages: how many arrive as new
                                 # messages, how many change the one before in place
      - kept_nothing: true       # nothing about what they wrote is in the database: no row
                                 # of theirs outside `users`, no answers in their conversation

Unconsumed bot messages are dropped when the person acts again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from bot.app import App
from bot.engine.events import ChoiceMade, Event, Message, Option, Output, Text, Unsupported, UserRef
from storage import repo

OpenApp = Callable[[], AbstractAsyncContextManager[App]]


@dataclass
class Replay:
    name: str
    ref: UserRef
    reply: list[Output] = field(default_factory=list)
    queue: list[Message] = field(default_factory=list)
    offered: list[Message] = field(default_factory=list)

    def where(self, index: int, step: dict[str, Any]) -> str:
        return f"{self.name}: step {index + 1} {step!r}"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value["repeat"]) * int(value["times"])
    return str(value)


def _find_option(messages: list[Message], label: str) -> tuple[Option, Message] | None:
    for message in reversed(messages):
        for option in message.options:
            if option.label == label:
                return option, message
    return None


async def replay(data: dict[str, Any], open_app: OpenApp, clock: Any) -> None:
    """Run every step; raise AssertionError naming the transcript and step on a mismatch."""
    ref = UserRef("console", str(data.get("user", "transcript")), language_tag=data.get("language"))
    state = Replay(name=data["name"], ref=ref)
    app_cm = open_app()
    app = await app_cm.__aenter__()
    try:
        for index, step in enumerate(data["steps"]):
            where = state.where(index, step)
            (kind, value), *rest = step.items()
            event: Event | None = None
            if kind == "user":
                event = Text(_text_of(value))
            elif kind == "press":
                found = _find_option(state.offered[-1:], value)
                assert found, f"{where}: no button {value!r} in the latest offer"
                event = ChoiceMade(found[0].value, found[1].step)
            elif kind == "press_stale":
                found = _find_option(state.offered[:-1], value)
                assert found, f"{where}: no earlier button {value!r}"
                event = ChoiceMade(found[0].value, found[1].step)
            elif kind == "press_value":
                latest = state.offered[-1] if state.offered else None
                event = ChoiceMade(str(value), latest.step if latest else None)
            elif kind == "unsupported":
                event = Unsupported(str(value))
            elif kind == "bot":
                assert state.queue, f"{where}: the bot said nothing more"
                message = state.queue.pop(0)
                wanted = value if isinstance(value, list) else [value]  # a list: all of them
                missing = [str(w) for w in wanted if str(w) not in message.text]
                assert not missing, f"{where}: {missing!r} not in {message.text!r}"
            elif kind == "bot_not":
                texts = [m.text for m in state.reply if isinstance(m, Message)]
                assert not any(str(value) in t for t in texts), f"{where}: got {texts!r}"
            elif kind == "offers":
                messages = [m for m in state.reply if isinstance(m, Message)]
                assert messages, f"{where}: no message"
                labels = [o.label for o in messages[-1].options]
                assert labels == list(value), f"{where}: offered {labels!r}"
            elif kind == "scale":
                messages = [m for m in state.reply if isinstance(m, Message)]
                assert messages and (messages[-1].scale is not None) == bool(value), (
                    f"{where}: last message {messages[-1] if messages else None!r}"
                )
            elif kind == "silent":
                texts = [m.text for m in state.reply if isinstance(m, Message)]
                assert not texts, f"{where}: got {texts!r}"
            elif kind == "state":
                current = await _position(app, state.ref)
                assert current == value, f"{where}: at {current!r}"
            elif kind == "entries":
                got = await _entries(app, state.ref)
                want = list(value)
                assert len(got) == len(want), f"{where}: entries {got!r}"
                for g, w in zip(got, want, strict=True):
                    for key, expected in w.items():
                        assert g.get(key) == expected, f"{where}: entry {g!r}"
            elif kind == "restart":
                await app_cm.__aexit__(None, None, None)
                app_cm = open_app()
                app = await app_cm.__aenter__()
            elif kind == "advance":
                clock.advance(**value)
            elif kind == "shown":
                messages = [m for m in state.reply if isinstance(m, Message)]
                got = {
                    "new": sum(not m.edits for m in messages),
                    "in_place": sum(m.edits for m in messages),
                }
                assert got == dict(value), f"{where}: shown {got!r}"
            elif kind == "kept_nothing":
                kept = await _kept(app, state.ref)
                assert not kept, f"{where}: kept {kept!r}"
            else:
                raise AssertionError(f"{where}: unknown step kind {kind!r}")
            assert not rest, f"{where}: one action per step"
            if event is not None:
                state.reply = await app.engine.handle(state.ref, event)
                state.queue = [m for m in state.reply if isinstance(m, Message)]
                state.offered += [m for m in state.queue if m.options]
    finally:
        await app_cm.__aexit__(None, None, None)


async def _conversation(app: App, session: AsyncSession, ref: UserRef) -> tuple[int, Any]:
    """The person's user id and saved conversation (created if they are new)."""
    user, _ = await repo.get_or_create_user(
        session, channel=ref.channel, external_id=ref.external_id
    )
    assert user.id is not None
    _, data = await repo.load_conversation(
        session, user_id=user.id, cipher=app.db.cipher, lock=False
    )
    return user.id, data


async def _position(app: App, ref: UserRef) -> str:
    async with app.db.session() as session:
        _, data = await _conversation(app, session, ref)
        await session.commit()
    stack = data.get("stack", [])
    return f"{stack[-1]['dialog']}.{stack[-1]['state']}" if stack else "none"


async def _kept(app: App, ref: UserRef) -> list[str]:
    """What the database holds of this person beyond their `users` row and an empty
    conversation: the tables with rows of theirs, and a conversation with any frame."""
    kept: list[str] = []
    async with app.db.session() as session:
        user_id, data = await _conversation(app, session, ref)
        if data.get("stack") or data.get("paused"):
            kept.append(f"conversation {data!r}")
        for table in SQLModel.metadata.sorted_tables:
            if table.name in ("users", "conversations") or "user_id" not in table.c:
                continue
            query = select(func.count()).select_from(table).where(table.c.user_id == user_id)
            if await session.scalar(query):
                kept.append(table.name)
        await session.commit()
    return kept


async def _entries(app: App, ref: UserRef) -> list[dict[str, Any]]:
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(
            session, channel=ref.channel, external_id=ref.external_id
        )
        assert user.id is not None
        entries = await repo.list_entries(session, user_id=user.id)
        out = []
        for entry in entries:
            answers = repo.entry_answers(entry, cipher=app.db.cipher)
            out.append(
                {
                    "kind": entry.kind,
                    "status": entry.status,
                    "finished": entry.finished_at is not None,
                    **answers,
                }
            )
        await session.commit()
    return json.loads(json.dumps(out))
