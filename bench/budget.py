"""What the send budget (bot/telegram/budget.py) costs a reply, offline.

1. CPU time per reframe step through the whole pipeline (PTB, engine, SQLite, rendering, the
   fake Bot API at the network seam), with the budget against the same Application path with
   a budget that grants everything at once; ten people per side take turns, a second of
   (virtual) time apart, so no limit ever binds: what is measured is the bookkeeping a reply
   pays. The two sides alternate update by update, so the shared machine's noise hits both
   alike; the median of the rounds' ratios is the result (target: at most 1.02).
2. `take` alone, µs per call, against an `await` of a function that does nothing; times the
   messages a step sends, that is the budget's cost per step, as a share of the step's CPU
   (the full-path ratio above is that plus the machine's noise).

Run: .venv/bin/python -m bench.budget [--updates N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from telegram import Update

from bench.updates import CYCLE, fresh_app, onboard
from bot.app import App
from bot.telegram.budget import SendBudget
from bot.testing.harness import VirtualTime, harness


class Free(SendBudget):
    """Grants every send at once: the baseline."""

    async def take(self, chat_id: int, *, urgent: bool = True) -> None:
        return None


class Counted(SendBudget):
    """The real budget, counting the messages it was asked for."""

    taken = 0

    async def take(self, chat_id: int, *, urgent: bool = True) -> None:
        self.taken += 1
        await super().take(chat_id, urgent=urgent)


@asynccontextmanager
async def bot_with(
    app: App, budget: SendBudget, time_: VirtualTime, people: range
) -> AsyncIterator[Callable[[], Awaitable[float]]]:
    """kindbot's Application with this budget, for ten people of its own, each one cycle
    behind the other (both sides make the same steps); yields "CPU µs of the next step"."""
    step = dict.fromkeys(people, 0)
    turn = [0]
    async with harness(app, budget=budget) as h:
        await onboard(h.process, h.updates, people)

        async def one() -> float:
            person = people[turn[0] % len(people)]
            turn[0] += 1
            text = CYCLE[step[person] % len(CYCLE)]
            step[person] += 1
            time_.t += 1.0  # a second between updates: nobody writes faster than that
            update = Update.de_json(h.updates.text(person, text), h.application.bot)
            start = time.process_time()
            await h.application.process_update(update)
            return (time.process_time() - start) * 1e6

        yield one


async def take_alone(n: int) -> tuple[float, float]:
    """µs per `take` (ten chats in turn, a second apart) and per no-op await."""
    time_ = VirtualTime()
    budget = SendBudget(timer=time_)

    async def nothing(chat_id: int) -> None:
        return None

    start = time.perf_counter()
    for i in range(n):
        time_.t += 0.1
        await budget.take(i % 10)
    took = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for i in range(n):
        await nothing(i % 10)
    bare = (time.perf_counter() - start) / n * 1e6
    return took, bare


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=270, help="updates per side per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        async with fresh_app(Path(folder)) as app:
            free_time, real_time = VirtualTime(), VirtualTime()
            free_budget = Free(timer=free_time)
            real_budget = Counted(timer=real_time)
            async with (
                bot_with(app, free_budget, free_time, range(301, 311)) as free,
                bot_with(app, real_budget, real_time, range(401, 411)) as limited,
            ):
                for _ in range(len(CYCLE) * 10):  # warm up
                    await free()
                    await limited()
                real_budget.waited = 0.0  # (onboarding says more than a burst: not measured)
                real_budget.taken = 0
                frees, limiteds = [], []
                for _ in range(args.rounds):
                    pairs = [(await free(), await limited()) for _ in range(args.updates)]
                    frees.append(sum(f for f, _ in pairs) / args.updates)
                    limiteds.append(sum(b for _, b in pairs) / args.updates)
    ratios = [b / f for b, f in zip(limiteds, frees, strict=True)]
    print(f"CPU per reframe step ({args.rounds} rounds × {args.updates} updates per side):")
    print(f"  without the budget {statistics.median(frees):8.0f} µs")
    print(f"  with the budget    {statistics.median(limiteds):8.0f} µs "
          f"(waited {real_budget.waited:.1f} s)")  # fmt: skip
    print(f"  ratio {statistics.median(ratios):.3f} (median of rounds; "
          f"range {min(ratios):.3f}–{max(ratios):.3f}; target ≤ 1.02)")  # fmt: skip
    took, bare = await take_alone(args.updates * 100)
    per_step = real_budget.taken / (args.rounds * args.updates)
    cost = per_step * (took - bare)
    print(f"take alone: {took:.2f} µs per call vs {bare:.2f} µs for a no-op await; "
          f"{per_step:.1f} messages per step")  # fmt: skip
    print(
        f"  = {cost:.1f} µs per step, ratio {1 + cost / statistics.median(frees):.4f} "
        "(target ≤ 1.02)"
    )


if __name__ == "__main__":
    asyncio.run(main())
