"""Reminders at 100,000 people: memory the dispatcher adds, its start-up time, and the send
rate it achieves against the configured limit (a fake Bot API that answers instantly).

The database (SQLite, a temporary folder) holds 100,000 consented people, each with an
evening reflection; `--due` of them are due now (up to 30 minutes late), the rest tomorrow.
Each send is the whole path: claim, engine turn (the reflection dialog starts and is saved),
"send", record. Phases, each bounded in time:

1. memory: tracemalloc peak while the dispatcher runs, and the RSS delta (VmRSS);
2. start-up: from `start()` to the first send, with the limit on;
3. rate: sends per second over a window after the first second, against REMINDER_RATE_LIMIT;
4. raw: the same with the limit off (sends per second the machine can do).

Targets: < 20 MiB added, start < 1 s, ≥ 95 % of the configured rate.
Run: .venv/bin/python bench/reminders.py [--people 100000] [--rate 25] [--window 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bot.app import App, open_app
from bot.config import REPO_ROOT, Settings
from bot.engine.events import Output
from bot.reminders.dispatcher import Dispatcher, DispatcherConfig
from storage.crypto import new_key
from storage.models import ReminderSchedule, User

MIB = 1024 * 1024


class InstantSender:
    """A Bot API that answers at once; counts sends with their times."""

    channel = "telegram"

    def __init__(self) -> None:
        self.times: list[float] = []
        self.first = asyncio.Event()

    async def send(self, user: User, outputs: list[Output]) -> None:
        self.times.append(time.perf_counter())
        self.first.set()


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def fill(app: App, people: int, due: int) -> None:
    now = datetime.now(UTC)
    tomorrow = now + timedelta(days=1)
    chunk = 10_000
    async with app.db.session() as session:
        for start in range(0, people, chunk):
            rows = [
                {
                    "id": n + 1,
                    "channel": "telegram",
                    "external_id": str(100_000_000 + n),
                    "locale": "en",
                    "created_at": now,
                    "consented_at": now,
                    "counters": {},
                    "timezone": "Europe/Berlin",
                }
                for n in range(start, min(people, start + chunk))
            ]
            await session.execute(insert(User), rows)
            schedules = [
                {
                    "user_id": n + 1,
                    "kind": "reflection",
                    "slot": 0,
                    "local_time": "21:00",
                    "days": 127,
                    "timezone": "Europe/Berlin",
                    "enabled": True,
                    "next_due_utc": (
                        now - timedelta(seconds=1800 * (n + 1) / due) if n < due else tomorrow
                    ),
                    "updated_at": now,
                }
                for n in range(start, min(people, start + chunk))
            ]
            await session.execute(insert(ReminderSchedule), schedules)
        await session.commit()


def dispatcher(app: App, sender: InstantSender, rate: float, owner: str) -> Dispatcher:
    config = DispatcherConfig(rate_limit=rate, poll_seconds=1.0)
    return Dispatcher(app.db, app.engine, sender, config=config, owner=owner)


async def run_for(worker: Dispatcher, sender: InstantSender, seconds: float) -> float:
    """Start, wait for the first send (returns that delay), run `seconds` more, stop."""
    started = time.perf_counter()
    worker.start()
    await sender.first.wait()
    first = sender.times[0] - started
    await asyncio.sleep(seconds)
    await worker.stop()  # lets the batch in hand finish
    return first


async def main(people: int, due: int, rate: float, window: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kindbot-bench-"))
    try:
        settings = Settings(
            data_dir=folder,
            dialogs_dir=REPO_ROOT / "dialogs",
            encryption_key=new_key(),
            _env_file=None,  # type: ignore[call-arg]
        )
        async with open_app(settings) as app:
            t0 = time.perf_counter()
            await fill(app, people, due)
            print(f"filled {people:,} people / schedules ({due:,} due) in "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

            # 1. memory
            gc.collect()
            rss_before = rss()
            tracemalloc.start()
            base, _ = tracemalloc.get_traced_memory()
            sender = InstantSender()
            await run_for(dispatcher(app, sender, rate, "memory"), sender, 3.0)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            gc.collect()
            rss_after = rss()
            traced = (peak - base) / MIB
            grown = (rss_after - rss_before) / MIB
            print(f"memory: tracemalloc peak +{traced:.2f} MiB, RSS +{grown:.2f} MiB "
                  f"(target < 20 MiB; ratio {max(traced, grown) / 20:.2f})")  # fmt: skip

            # 2 + 3. start-up and rate with the limit on
            sender = InstantSender()
            first = await run_for(dispatcher(app, sender, rate, "rate"), sender, window + 1)
            begin = sender.times[0] + 1.0
            end = begin + window
            in_window = [t for t in sender.times if begin <= t < end]
            achieved = len(in_window) / window
            print(f"start-up: first send {first * 1000:.0f} ms after start "
                  f"(target < 1 s; ratio {first:.2f})")  # fmt: skip
            print(f"rate: {achieved:.1f}/s of {rate:g}/s configured "
                  f"= {achieved / rate:.1%} (target ≥ 95%)")  # fmt: skip

            # 4. raw, limit off
            sender = InstantSender()
            await run_for(dispatcher(app, sender, 0, "raw"), sender, window)
            span = sender.times[-1] - sender.times[0] if len(sender.times) > 1 else 1.0
            raw = (len(sender.times) - 1) / span
            print(f"raw (limit off): {raw:.0f} sends/s = {raw / rate:.1f}× the configured "
                  f"limit ({len(sender.times)} sends)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.people, args.due, args.rate, args.window))
