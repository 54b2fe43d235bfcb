"""Does anyone wait behind a chart or an export? Another person's reply latency under load.

One person with a long history (1,000 finished reframes by default) asks for /progress, or
/export, over and over, each made the way the Telegram adapter makes it: `engine.handle`
(the step) and then `engine.produce` (the chart or files, after the step has committed).
Meanwhile other people send /help at a steady rate (open loop: each one's latency counts
from the moment it was due, so a stalled event loop shows as late replies). SQLite, the
real engine, in one process, as the bot runs.

Phases, alternated round by round so the shared machine's noise hits them alike:

- idle: nothing else going on (the baseline);
- chart / export: the load above (made in the worker process, bot/offload.py);
- for comparison, the same jobs made in the bot's own process: in a worker thread after
  the step ("in a thread"), and while holding a step ("inside a step", as /progress and
  /export were made before `Later`).

Prints p50 and p99 per phase, and each loaded figure against idle (difference in ms, and
ratio). Target: p99 under load within 50 ms of idle.

Run: .venv/bin/python -m bench.stall [--entries 1000] [--rate 50] [--seconds 6] [--rounds 3]
     [--no-compare]
     .venv/bin/python -m bench.stall --quick   (a smoke test: a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.updates import fresh_app
from bot.app import App
from bot.engine.events import Document, Image, Later, Message, Output, Text, UserRef
from bot.export import EXPORT, make_export
from bot.offload import Make, in_worker
from bot.progress import CHART, make_chart
from storage import repo
from storage.source import DatabaseSource

TARGET_MS = 50.0
ONBOARDING = ("/start", "1", "Skip", "Nothing right now")  # consent, no country, no reminders
PROBES = 10  # people sending /help, taking turns (none waits behind their own last one)

Load = Callable[[], Awaitable[None]]


@dataclass
class Phase:
    name: str
    latencies: list[float]
    made: int = 0

    def quantile(self, q: float) -> float:
        """The q-quantile in ms (nearest rank): p99 of 1,000 samples is the 990th smallest."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


async def onboard(app: App, ref: UserRef) -> None:
    for line in ONBOARDING:
        await app.engine.handle(ref, Text(line))


async def seed(app: App, ref: UserRef, entries: int) -> None:
    """`entries` finished reframes, a day apart, written as the dialog writes them."""
    await onboard(app, ref)
    cipher = app.db.cipher
    first = app.engine.clock() - timedelta(days=entries)
    async with app.db.step() as unit:
        found = await repo.load_person_core(
            unit, channel=ref.channel, external_id=ref.external_id, cipher=cipher, lock=False
        )
        assert found is not None
        user_id = found[0].id
        assert user_id is not None
        for i in range(entries):
            started = first + timedelta(days=i)
            entry_id = await repo.create_entry(
                unit,
                user_id=user_id,
                kind="reframe",
                dialog="reframe",
                cipher=cipher,
                started_at=started,
            )
            answers = {
                "thought": f"I always let people down, again ({i})",
                "feeling": "ashamed",
                "rating_before": 6 + i % 5,
                "friend": "You are trying your best, and people see it.",
                "kind": "I'm trying my best, and that counts.",
                "rating_after": 2 + i % 4,
            }
            await repo.record_entry(
                unit,
                user_id=user_id,
                entry_id=entry_id,
                answers=answers,
                status="finished",
                cipher=cipher,
                finished_at=started + timedelta(minutes=6),
            )
        await unit.commit()


JOBS: dict[str, Make] = {CHART: make_chart, EXPORT: make_export}


def asking(app: App, ref: UserRef, command: str, how: str) -> Load:
    """One /progress or /export: its step, then what its `Later` stands for, made `how`:

    - "worker": `engine.produce`, as the adapters do (the worker process);
    - "thread": the same job in a worker thread of the bot's process, after the step;
    - "step": the same job while a step is held (its writer lock), as before `Later`.
    """
    assert app.settings.encryption_key
    source = DatabaseSource(app.settings.resolved_database_url(), app.settings.encryption_key)

    async def make(outputs: list[Output]) -> None:
        for later in (o for o in outputs if isinstance(o, Later)):
            job = JOBS[later.kind]
            await asyncio.to_thread(
                in_worker, job, source, ref.channel, ref.external_id, later.data
            )

    async def once() -> None:
        outputs = await app.engine.handle(ref, Text(command))
        if how == "worker":
            made = await app.engine.produce(ref, outputs)
            assert any(isinstance(o, Image | Document) for o in made)
        elif how == "thread":
            await make(outputs)
        else:
            async with app.db.step():
                await make(outputs)

    return once


async def measure(app: App, name: str, load: Load | None, rate: float, seconds: float) -> Phase:
    """/help from the probe people every 1/rate s for `seconds`, while `load` runs in a loop."""
    phase = Phase(name, [])
    stop = asyncio.Event()

    async def loading() -> None:
        assert load is not None
        while not stop.is_set():
            await load()
            phase.made += 1

    async def probe(i: int, due: float) -> None:
        ref = UserRef("telegram", str(900_000 + i % PROBES))
        outputs = await app.engine.produce(ref, await app.engine.handle(ref, Text("/help")))
        phase.latencies.append(time.perf_counter() - due)
        assert any(isinstance(o, Message) for o in outputs)

    loader = asyncio.create_task(loading()) if load is not None else None
    await asyncio.sleep(0.2 if load is not None else 0)  # let the load get going
    probes = []
    start = time.perf_counter()
    for i in range(round(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        probes.append(asyncio.create_task(probe(i, due)))
    await asyncio.gather(*probes)
    stop.set()
    if loader is not None:
        await loader
    return phase


def merge(phases: list[Phase]) -> Phase:
    return Phase(
        phases[0].name, [x for p in phases for x in p.latencies], sum(p.made for p in phases)
    )


async def run(args: argparse.Namespace) -> dict[str, Phase]:
    with tempfile.TemporaryDirectory() as folder:
        async with fresh_app(Path(folder)) as app:
            heavy = UserRef("telegram", "1")
            await seed(app, heavy, args.entries)
            for i in range(PROBES):
                await onboard(app, UserRef("telegram", str(900_000 + i)))
            loads: dict[str, Load | None] = {
                "idle": None,
                "chart": asking(app, heavy, "/progress", "worker"),
                "export": asking(app, heavy, "/export", "worker"),
            }
            if not args.no_compare:
                for what, command in (("chart", "/progress"), ("export", "/export")):
                    loads[f"{what}, in a thread"] = asking(app, heavy, command, "thread")
                    loads[f"{what}, inside a step"] = asking(app, heavy, command, "step")
            for name, load in loads.items():  # warm up: matplotlib's import and font cache
                await measure(app, name, load, args.rate, min(args.seconds, 1.0))
            rounds: dict[str, list[Phase]] = {name: [] for name in loads}
            for _ in range(args.rounds):
                for name, load in loads.items():
                    rounds[name].append(await measure(app, name, load, args.rate, args.seconds))
            return {name: merge(phases) for name, phases in rounds.items()}


def report(phases: dict[str, Phase], args: argparse.Namespace) -> None:
    idle = phases["idle"]
    idle50, idle99 = idle.quantile(0.5), idle.quantile(0.99)
    print(
        f"another person's /help (step + reply) at {args.rate:g}/s, {args.rounds} round(s) × "
        f"{args.seconds:g} s per phase, while one person with {args.entries} entries asks "
        "again and again (SQLite):"
    )
    print(f"  {'phase':32} {'made':>5} {'p50 ms':>8} {'p99 ms':>8} {'Δp99 ms':>8} {'p99 ratio':>9}")
    for name, phase in phases.items():
        p50, p99 = phase.quantile(0.5), phase.quantile(0.99)
        made = "" if name == "idle" else str(phase.made)
        delta = "" if name == "idle" else f"{p99 - idle99:+8.1f}"
        ratio = "" if name == "idle" else f"{p99 / idle99:8.2f}x"
        print(f"  {name:32} {made:>5} {p50:8.1f} {p99:8.1f} {delta:>8} {ratio:>9}")
    for name in ("chart", "export"):
        excess = phases[name].quantile(0.99) - idle99
        verdict = "ok" if excess <= TARGET_MS else "MISSED"
        print(
            f"  {name}: p99 {excess:+.1f} ms against idle (target within {TARGET_MS:.0f} ms): "
            f"{verdict}; p50 {phases[name].quantile(0.5) - idle50:+.1f} ms"
        )
    print(f"  samples per phase: {len(idle.latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1000, help="the asking person's history")
    parser.add_argument("--rate", type=float, default=50.0, help="/help per second, in all")
    parser.add_argument("--seconds", type=float, default=6.0, help="per phase per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the thread and inside-a-step phases"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.seconds, args.rounds, args.no_compare = 20, 0.5, 1, True
    report(asyncio.run(run(args)), args)


if __name__ == "__main__":
    main()
