"""Telegram updates through the full PTB pipeline, offline (fake Bot API at the network seam).

1. Per-update cost of a reframe step (engine + SQLite + rendering) against a bare PTB echo
   bot, measured in the same run on the same fake request layer; prints both and the ratio
   (target: at most 3x).
2. Throughput with a simulated 50 ms Telegram round trip (every Bot API call sleeps 50 ms) and
   50 people writing at once through PTB's update queue and kindbot's per-person ordered
   processor; counts per-person ordering violations (target: >= 800 updates/s, 0 violations).

Run: .venv/bin/python -m bench.updates [--updates N] [--people P] [--latency S]
Set DATABASE_URL to measure on PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, TypeHandler, filters

from bot.app import App, open_app
from bot.config import REPO_ROOT, Settings
from bot.engine.events import Event, Message, Option, Output, Text, UserRef
from storage import repo
from storage.crypto import new_key
from tests.telegram.fakes import TOKEN, BotAPI, FakeRequest, Updates, harness

# One reframe, typed: start, thought, feeling, rating, "I see it", "Okay", friend, kind, rating.
CYCLE = (
    "/reframe",
    "I always let people down",
    "ashamed",
    "8",
    "1",
    "1",
    "You are trying your best",
    "I'm trying my best, and that counts",
    "4",
)


def make_settings(folder: Path) -> Settings:
    values: dict[str, Any] = {
        "data_dir": folder / "data",
        "dialogs_dir": REPO_ROOT / "dialogs",
        "encryption_key": new_key(),
        "telegram_bot_token": TOKEN,
        "log_level": "WARNING",
        "_env_file": None,
    }
    if os.environ.get("DATABASE_URL"):
        values["database_url"] = os.environ["DATABASE_URL"]
    return Settings(**values)


@asynccontextmanager
async def fresh_app(folder: Path) -> AsyncIterator[App]:
    """kindbot on an empty database: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    settings = make_settings(folder)
    if not settings.database_url:
        async with open_app(settings) as app:
            yield app
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(settings.database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        async with open_app(settings, schema=schema) as app:
            yield app
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def engine_cost(app: App, n: int) -> float:
    """µs per reframe step for the engine alone (no PTB), to show where the time goes."""
    people = [UserRef("telegram", str(p)) for p in range(201, 211)]
    for ref in people:
        await app.engine.handle(ref, Text("/start"))
        await app.engine.handle(ref, Text("1"))
    start = time.perf_counter()
    for i in range(n):
        text_ = CYCLE[(i // len(people)) % len(CYCLE)]
        await app.engine.handle(people[i % len(people)], Text(text_), seq=i)
    return (time.perf_counter() - start) / n * 1e6


async def adapter_cost(app: App, n: int) -> float:
    """µs per update through kindbot's Application with the engine answering instantly
    (a canned prompt with buttons): what the Telegram adapter itself costs."""
    canned: list[Output] = [
        Message(
            "Is it okay for me to store what you write, as described?",
            (Option("yes", "Yes, that's okay"), Option("no", "Not now")),
            step=3,
        )
    ]

    async def instant(ref: UserRef, event: Event, *, seq: int | None = None) -> list[Output]:
        return canned

    real = app.engine.handle
    app.engine.handle = instant  # type: ignore[method-assign]
    try:
        async with harness(app) as h:
            for i in range(50):
                await h.say(1 + i % 10, "warm up")
            start = time.perf_counter()
            for i in range(n):
                await h.application.process_update(
                    Update.de_json(h.updates.text(1 + i % 10, CYCLE[i % 9]), h.application.bot)
                )
            return (time.perf_counter() - start) / n * 1e6
    finally:
        app.engine.handle = real  # type: ignore[method-assign]


async def echo_cost(n: int) -> float:
    """µs per update for a bare PTB echo bot on the same fake request layer."""
    api = BotAPI()
    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .request(FakeRequest(api))
        .get_updates_request(FakeRequest(api))
        .build()
    )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message and update.message.text:
            await update.message.reply_text(update.message.text)

    application.add_handler(MessageHandler(filters.TEXT, echo))
    updates = Updates()
    async with application:
        for i in range(50):  # warm up
            await application.process_update(
                Update.de_json(updates.text(1, f"w{i}"), application.bot)
            )
        start = time.perf_counter()
        for i in range(n):
            data = updates.text(1 + i % 10, CYCLE[i % len(CYCLE)])
            await application.process_update(Update.de_json(data, application.bot))
        elapsed = time.perf_counter() - start
    assert len(api.sent()) == n + 50
    return elapsed / n * 1e6


async def onboard(process: Any, updates: Updates, people: range) -> None:
    for person in people:
        await process(updates.text(person, "/start"))
        await process(updates.text(person, "1"))  # consent, typed as the option's number


async def kindbot_cost(app: App, n: int) -> float:
    """µs per update for reframe steps through kindbot's Application (SQLite by default)."""
    async with harness(app) as h:
        await onboard(h.process, h.updates, range(1, 11))
        for i in range(len(CYCLE) * 2):  # warm up
            await h.say(1 + i % 10, CYCLE[(i // 10) % len(CYCLE)])
        h.api.clear()
        # ten people, each one cycle behind the other: every update is one reframe step
        people = list(range(101, 111))
        await onboard(h.process, h.updates, range(101, 111))
        step = dict.fromkeys(people, 0)
        start = time.perf_counter()
        for i in range(n):
            person = people[i % len(people)]
            text = CYCLE[step[person] % len(CYCLE)]
            step[person] += 1
            await h.application.process_update(
                Update.de_json(h.updates.text(person, text), h.application.bot)
            )
        elapsed = time.perf_counter() - start
    return elapsed / n * 1e6


async def throughput(app: App, people: int, cycles: int, latency: float) -> dict[str, Any]:
    """updates/s for `people` writing at once, every Bot API call taking `latency` seconds."""
    seen: dict[int, list[int]] = defaultdict(list)

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_user:
            seen[update.effective_user.id].append(update.update_id)

    async with harness(app, latency=0.0) as h:
        h.application.add_handler(TypeHandler(Update, record), group=-1)
        ids = range(1000, 1000 + people)
        await onboard(h.process, h.updates, ids)
        seen.clear()
        for request in (h.application.bot.request, h.application.bot._request[1]):
            if isinstance(request, FakeRequest):
                request.latency = latency
        batch = [
            Update.de_json(h.updates.text(person, text), h.application.bot)
            for _ in range(cycles)
            for text in CYCLE
            for person in ids
        ]
        calls_before = len(h.api.calls)
        await h.application.start()
        cpu = time.process_time()
        start = time.perf_counter()
        for update in batch:
            h.application.update_queue.put_nowait(update)
        await h.application.update_queue.join()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        await h.application.stop()
        calls = len(h.api.calls) - calls_before
    violations = sum(1 for order in seen.values() for a, b in pairwise(order) if b <= a)
    finished = await finished_reframes(app, ids)
    return {
        "updates": len(batch),
        "seconds": elapsed,
        "per_second": len(batch) / elapsed,
        "violations": violations,
        "calls_per_update": calls / len(batch),
        "cpu_per_update": cpu / len(batch) * 1e6,
        "finished_ok": finished == people * cycles,
    }


async def finished_reframes(app: App, ids: range) -> int:
    """Finished reframes whose answers landed in the right places (a reorder would not)."""
    count = 0
    async with app.db.session() as session:
        for person in ids:
            user, _ = await repo.get_or_create_user(
                session, channel="telegram", external_id=str(person)
            )
            assert user.id is not None
            for entry in await repo.list_entries(session, user_id=user.id, kind="reframe"):
                answers = repo.entry_answers(entry, cipher=app.db.cipher)
                if (
                    entry.status == "finished"
                    and answers.get("thought") == CYCLE[1]
                    and answers.get("rating_before") == 8
                    and answers.get("rating_after") == 4
                ):
                    count += 1
    return count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=900, help="updates for the cost test")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=2, help="whole reframes per person")
    parser.add_argument("--latency", type=float, default=0.050, help="seconds per Bot API call")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        database = make_settings(Path(folder)).resolved_database_url().split(":", 1)[0]
        echo = await echo_cost(args.updates)
        async with fresh_app(Path(folder)) as app:
            kind = await kindbot_cost(app, args.updates)
            engine = await engine_cost(app, args.updates)
            adapter = await adapter_cost(app, args.updates)
        echo_again = await echo_cost(args.updates)  # both sides of the kindbot run
        echo = (echo + echo_again) / 2
        print(f"per update ({args.updates} updates, {database}):")
        print(f"  bare PTB echo bot     {echo:8.0f} µs/update")
        print(f"  kindbot reframe step  {kind:8.0f} µs/update")
        print(f"  ratio                 {kind / echo:8.2f}x   (target <= 3x)")
        print(f"  engine.handle alone   {engine:8.0f} µs/update (no PTB: dialog + database)")
        print(f"  adapter, engine stub  {adapter:8.0f} µs/update ({adapter / echo:.2f}x echo)")

    with tempfile.TemporaryDirectory() as folder:
        async with fresh_app(Path(folder)) as app:
            result = await throughput(app, args.people, args.cycles, args.latency)
    print(
        f"throughput ({args.people} people, {args.latency * 1000:.0f} ms per Bot API call, "
        f"{result['updates']} updates):"
    )
    print(f"  {result['per_second']:8.0f} updates/s   (target >= 800)")
    print(f"  {result['calls_per_update']:8.2f} Bot API calls per update")
    print(f"  {result['cpu_per_update']:8.0f} µs of CPU per update (one process, one event loop)")
    print(f"  {result['violations']:8d} per-person ordering violations (target 0)")
    print(f"  every reframe finished with its own answers: {result['finished_ok']}")


if __name__ == "__main__":
    asyncio.run(main())
