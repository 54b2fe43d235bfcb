"""Telegram updates through the full PTB pipeline, offline (fake Bot API at the network seam).

1. Per-update cost of a reframe step (engine + SQLite + rendering) against a bare PTB echo
   bot, measured in the same run on the same fake request layer, in alternating rounds so
   the shared machine's noise hits both alike; prints both and the median of the rounds'
   ratios (target: at most 3x).
2. Throughput with a simulated 50 ms Telegram round trip (every Bot API call sleeps 50 ms) and
   50 people writing at once through PTB's update queue and kindbot's per-person ordered
   processor; counts per-person ordering violations (target: >= 800 updates/s, 0 violations).
   Five runs, each on a fresh database; the median is the result.

Run: .venv/bin/python -m bench.updates [--updates N] [--rounds R] [--people P] [--latency S]
Set DATABASE_URL to measure on PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.app import App, open_app
from bot.config import REPO_ROOT, Settings
from bot.engine.events import Event, Message, Option, Output, Text, UserRef
from bot.engine.outbox import Reply
from bot.testing.botapi import TOKEN, BotAPI
from bot.testing.harness import FakeRequest, harness
from bot.testing.updates import CYCLE, Updates
from storage import repo
from storage.crypto import new_key


def make_settings(folder: Path, *, model: bool = False) -> Settings:
    values: dict[str, Any] = {
        # the crisis screen's model has a budget of its own (bench/safety.py): the targets
        # here are the bot's, its database's and PTB's; --model adds it back
        "semantic_screen": model,
        "data_dir": folder / "data",
        "dialogs_dir": REPO_ROOT / "dialogs",
        "encryption_key": new_key(),
        "telegram_bot_token": TOKEN,
        "log_level": "WARNING",
        # the bench's people answer at once: not pieces of one answer to be joined
        "split_seconds": 0,
        "quiet_seconds": 0,
        "_env_file": None,
    }
    if os.environ.get("DATABASE_URL"):
        values["database_url"] = os.environ["DATABASE_URL"]
    return Settings(**values)


@asynccontextmanager
async def fresh_app(folder: Path, *, model: bool = False) -> AsyncIterator[App]:
    """kindbot on an empty database: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    settings = make_settings(folder, model=model)
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

    async def instant(ref: UserRef, event: Event, *, seq: int | None = None) -> Reply:
        return Reply(list(canned))

    # the adapter asks the engine for a `reply` (the step with its outbox row): that is what
    # is stubbed, so no dialog and no database run
    real = app.engine.reply
    app.engine.reply = instant  # type: ignore[method-assign]
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
        app.engine.reply = real  # type: ignore[method-assign]


@asynccontextmanager
async def echo_bot() -> AsyncIterator[Callable[[int], Awaitable[float]]]:
    """A bare PTB echo bot on the same fake request layer; yields "µs per update for n"."""
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

    async def measure(n: int) -> float:
        sent = len(api.sent())
        start = time.perf_counter()
        for i in range(n):
            data = updates.text(1 + i % 10, CYCLE[i % len(CYCLE)])
            await application.process_update(Update.de_json(data, application.bot))
        elapsed = time.perf_counter() - start
        assert len(api.sent()) == sent + n
        return elapsed / n * 1e6

    async with application:
        await measure(50)  # warm up
        yield measure


async def onboard(process: Any, updates: Updates, people: range) -> None:
    for person in people:
        await process(updates.text(person, "/start"))
        await process(updates.text(person, "1"))  # consent, typed as the option's number


@asynccontextmanager
async def kindbot_bot(app: App) -> AsyncIterator[Callable[[int], Awaitable[float]]]:
    """kindbot's Application (SQLite by default); yields "µs per update for n reframe steps"
    — ten people, each one cycle behind the other, so every update is one reframe step."""
    async with harness(app) as h:
        await onboard(h.process, h.updates, range(1, 11))
        for i in range(len(CYCLE) * 2):  # warm up
            await h.say(1 + i % 10, CYCLE[(i // 10) % len(CYCLE)])
        h.api.clear()
        people = list(range(101, 111))
        await onboard(h.process, h.updates, range(101, 111))
        step = dict.fromkeys(people, 0)

        async def measure(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                person = people[i % len(people)]
                text = CYCLE[step[person] % len(CYCLE)]
                step[person] += 1
                await h.application.process_update(
                    Update.de_json(h.updates.text(person, text), h.application.bot)
                )
            return (time.perf_counter() - start) / n * 1e6

        yield measure


async def throughput(app: App, people: int, cycles: int, latency: float) -> dict[str, Any]:
    """updates/s for `people` writing at once, every Bot API call taking `latency` seconds."""
    seen: dict[str, list[int]] = defaultdict(list)
    real = app.engine.handle

    async def record(ref: UserRef, event: Event, *, seq: int | None = None) -> list[Output]:
        """The order in which each person's updates reach the engine (where order matters)."""
        if seq is not None:
            seen[ref.external_id].append(seq)
        return await real(ref, event, seq=seq)

    app.engine.handle = record  # type: ignore[method-assign]
    try:
        async with harness(app, latency=0.0) as h:
            ids = range(1000, 1000 + people)
            await onboard(h.process, h.updates, ids)
            seen.clear()
            for request in h.requests:
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
    finally:
        app.engine.handle = real  # type: ignore[method-assign]
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
    parser.add_argument("--updates", type=int, default=270, help="updates per side per round")
    parser.add_argument("--rounds", type=int, default=7, help="echo/kindbot rounds, alternated")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=2, help="whole reframes per person")
    parser.add_argument("--latency", type=float, default=0.050, help="seconds per Bot API call")
    parser.add_argument("--throughput-runs", type=int, default=5)
    parser.add_argument(
        "--model", action="store_true", help="with the crisis screen's model (off by default)"
    )
    args = parser.parse_args()
    model = "crisis-screen model on" if args.model else "crisis-screen model off"

    with tempfile.TemporaryDirectory() as folder:
        database = make_settings(Path(folder)).resolved_database_url().split(":", 1)[0]
        echoes: list[float] = []
        kinds: list[float] = []
        async with fresh_app(Path(folder), model=args.model) as app:
            # Rounds alternate between the two bots, so the shared machine's noise hits both
            # alike; the ratio is taken per round, and its median is the result.
            async with echo_bot() as echo, kindbot_bot(app) as kindbot:
                for _ in range(args.rounds):
                    echoes.append(await echo(args.updates))
                    kinds.append(await kindbot(args.updates))
            engine = await engine_cost(app, args.updates * 3)
            adapter = await adapter_cost(app, args.updates * 3)
        ratios = [k / e for k, e in zip(kinds, echoes, strict=True)]
        target = 3 if database.startswith("sqlite") else 5  # SQLite, PostgreSQL
        echo_us, kind_us = statistics.median(echoes), statistics.median(kinds)
        print(
            f"per update ({args.rounds} rounds × {args.updates} updates each, {database}, {model}):"
        )
        print(f"  bare PTB echo bot     {echo_us:8.0f} µs/update (median)")
        print(f"  kindbot reframe step  {kind_us:8.0f} µs/update (median)")
        print(
            f"  ratio                 {statistics.median(ratios):8.2f}x   (target <= {target}x; "
            f"median of the rounds' ratios, which ranged {min(ratios):.2f}-{max(ratios):.2f})"
        )
        print(f"  engine.handle alone   {engine:8.0f} µs/update (no PTB: dialog + database)")
        print(f"  adapter, engine stub  {adapter:8.0f} µs/update ({adapter / echo_us:.2f}x echo)")

    results = []
    for _ in range(args.throughput_runs):
        with tempfile.TemporaryDirectory() as folder:
            async with fresh_app(Path(folder), model=args.model) as app:
                results.append(await throughput(app, args.people, args.cycles, args.latency))
    rates = sorted(r["per_second"] for r in results)
    print(
        f"throughput ({args.people} people, {args.latency * 1000:.0f} ms per Bot API call, "
        f"{model}, {results[0]['updates']} updates per run, {len(results)} runs):"
    )
    print(
        f"  {statistics.median(rates):8.0f} updates/s (median; runs: "
        f"{', '.join(f'{r:.0f}' for r in rates)})   (target >= 800)"
    )
    print(f"  {results[0]['calls_per_update']:8.2f} Bot API calls per update")
    cpu = statistics.median(r["cpu_per_update"] for r in results)
    print(f"  {cpu:8.0f} µs of CPU per update (median; one process, one event loop)")
    violations = sum(r["violations"] for r in results)
    print(f"  {violations:8d} per-person ordering violations in all runs (target 0)")
    finished = all(r["finished_ok"] for r in results)
    print(f"  every reframe finished with its own answers: {finished}")


if __name__ == "__main__":
    asyncio.run(main())
