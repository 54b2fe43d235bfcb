"""One person's updates in order, different people side by side (through the update queue)."""

from __future__ import annotations

import asyncio
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import SimpleUpdateProcessor

from bot.app import App, open_app
from bot.engine.events import Event, Text, UserRef
from bot.engine.outbox import Reply
from bot.testing.botapi import TOKEN
from bot.testing.harness import Harness, harness
from tests.conftest import DIALOGS, make_settings

PEOPLE = (11, 22, 33)
EACH = 15


async def run_queued(h: Harness, updates: list[dict[str, Any]]) -> None:
    """Feed updates through PTB's queue and processor, as polling or a webhook would."""
    await h.application.start()
    try:
        for update in updates:
            await h.application.update_queue.put(Update.de_json(update, h.application.bot))
        await asyncio.wait_for(h.application.update_queue.join(), timeout=30)
    finally:
        await h.application.stop()


def slow_engine(app: App, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record the order in which the engine is reached; earlier updates are made slower,
    so anything that does not enforce order lets later ones overtake them."""
    seen: list[tuple[str, int]] = []
    real = app.engine.reply

    async def reply(ref: UserRef, event: Event, *, seq: int | None = None) -> Reply:
        assert isinstance(event, Text)
        index = int(event.text.rsplit(" ", 1)[-1])
        await asyncio.sleep((EACH - index) * 0.002)
        seen.append((ref.external_id, index))
        return await real(ref, event, seq=seq)

    monkeypatch.setattr(app.engine, "reply", reply)
    return seen


def rapid(h: Harness) -> list[dict[str, Any]]:
    return [h.updates.text(p, f"note {i}") for i in range(EACH) for p in PEOPLE]


def violations(seen: list[tuple[str, int]]) -> int:
    count = 0
    for person in PEOPLE:
        order = [i for who, i in seen if who == str(person)]
        count += sum(1 for a, b in pairwise(order) if b < a)
    return count


async def test_one_persons_rapid_updates_reach_the_engine_in_order(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = slow_engine(app, monkeypatch)
    async with harness(app) as h:
        await run_queued(h, rapid(h))
    assert len(seen) == EACH * len(PEOPLE)
    assert violations(seen) == 0
    # and people ran side by side: someone's later update came before another's earlier one
    firsts = [who for who, i in seen if i == 0]
    assert len(firsts) == len(PEOPLE)
    assert seen.index((str(PEOPLE[0]), 1)) > seen.index((str(PEOPLE[-1]), 0))


async def test_without_the_ordering_processor_the_same_updates_overtake(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: PTB's plain concurrent processing reorders them (why ordering exists)."""
    seen = slow_engine(app, monkeypatch)
    async with harness(app, processor=SimpleUpdateProcessor(256)) as h:
        await run_queued(h, rapid(h))
    assert violations(seen) > 0


BREATHE = """\
dialog: breathe
title: breathing
command: onebreath
description: One slow breath
requires_consent: false
start: breathe_in
states:
  breathe_in:
    say: "Breathe in…"
    pause: 4
    next: breathe_out
  breathe_out:
    say: "…and out."
    end: true
"""


async def test_a_pause_holds_nobody_up(tmp_path: Path) -> None:
    dialogs = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, dialogs)
    (dialogs / "en" / "breathe.yaml").write_text(BREATHE, encoding="utf-8")
    settings = make_settings(tmp_path, dialogs_dir=dialogs, telegram_bot_token=TOKEN)
    paused = asyncio.Event()
    release = asyncio.Event()

    async def held(seconds: float) -> None:
        paused.set()
        await release.wait()

    async with open_app(settings) as app, harness(app, sleep=held) as h:
        await h.application.start()
        try:
            queue = h.application.update_queue
            for update in (h.updates.text(11, "/onebreath"), h.updates.text(22, "/start")):
                await queue.put(Update.de_json(update, h.application.bot))
            await asyncio.wait_for(paused.wait(), timeout=10)
            for _ in range(500):  # the other person is answered while the pause is held
                if len(h.api.texts(22)) == 3:
                    break
                await asyncio.sleep(0.01)
            assert len(h.api.texts(22)) == 3
            assert h.api.texts(11) == ["Breathe in…"]
            assert [c.method for c in h.api.calls if c.chat_id == 11][-1] == "sendChatAction"
            # the person writes again: their pause gives way (test_pacing.py), in order
            await queue.put(Update.de_json(h.updates.text(11, "/help"), h.application.bot))
            await asyncio.wait_for(queue.join(), timeout=10)
        finally:
            await h.application.stop()
        texts = h.api.texts(11)
        assert texts[:2] == ["Breathe in…", "…and out."]
        assert "automated program" in texts[2]  # the help, after the pause
