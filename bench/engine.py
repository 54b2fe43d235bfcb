"""How much the dialog engine adds to one step, on top of the database work it needs.

One step = load the person's state, validate the answer, transition, render the next prompt,
save, commit. The baseline, measured in the same run on the same SQLite file, is the bare
database work of that step with the very statements the engine uses, run as the engine
runs them (storage.db.Step; on SQLite straight to the DBAPI connection, storage/direct.py):
the one query loading the user and conversation rows, one UPDATE writing the conversation
row back, commit. A second baseline adds what storing the
row means here: the same storage functions the engine calls (load the person and decrypt
their state; encrypt and save it; commit), so "dialog step over storage" is the engine's own
work. The crisis screen and other interceptors that read every message first are measured
apart (the same steps with them switched off).
Rounds alternate between the two so machine noise hits both alike; medians are printed as
µs per step and as the ratio. Target: the engine adds ≤ 100 µs per step.

Run: .venv/bin/python bench/engine.py [--steps 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import open_app
from bot.config import REPO_ROOT, Settings
from bot.engine.events import Text, UserRef
from storage import repo
from storage.crypto import new_key
from storage.models import utcnow

LOOP_DIALOG = """\
dialog: benchloop
title: bench loop
command: benchloop
entry: bench
start: first
states:
  first:
    say: ["What is the thought?", "Which thought is it?"]
    expect: text
    store: first
    next: second
  second:
    say: "And when you think “{first}”, what would you say to a friend?"
    expect: text
    store: second
    next: first
"""


async def main(steps: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO_ROOT / "dialogs", root / "dialogs")
        (root / "dialogs" / "en" / "benchloop.yaml").write_text(LOOP_DIALOG, encoding="utf-8")
        settings = Settings(
            data_dir=root / "data",
            dialogs_dir=root / "dialogs",
            encryption_key=new_key(),
            _env_file=None,
        )  # type: ignore[call-arg]
        async with open_app(settings) as app:
            ref = UserRef("bench", "1")
            for line in ["/start", "1", "2", "/benchloop"]:
                await app.engine.handle(ref, Text(line))

            seqs = itertools.count(1000)  # as Telegram update ids: every event numbered

            async def engine_steps(n: int) -> tuple[float, float]:
                start, cpu = time.perf_counter(), time.process_time()
                for i in range(n):
                    await app.engine.handle(ref, Text(f"answer number {i}"), seq=next(seqs))
                return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

            async def storage_steps(n: int) -> tuple[float, float]:
                """Load and save the same row through the storage layer (with encryption)."""
                start, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    async with app.db.step() as unit:
                        found = await repo.load_person_core(
                            unit,
                            channel="bench",
                            external_id="1",
                            cipher=app.db.cipher,
                            lock=app.db.is_postgres,
                        )
                        assert found is not None
                        user, row, state = found
                        assert user.id is not None
                        await repo.save_conversation(
                            unit,
                            user_id=user.id,
                            state=state,
                            step=row.step + 1,
                            seen_seqs=[*row.seen_seqs, next(seqs)],
                            cipher=app.db.cipher,
                        )
                        await unit.commit()
                return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

            async def bare_steps(n: int) -> tuple[float, float]:
                """The same statements an engine step runs, the way it runs them
                (storage.db.Step: on SQLite straight to the DBAPI connection, see
                storage/direct.py): the joined load, one UPDATE of the conversation row
                (same columns), commit — minus everything else."""
                start, cpu = time.perf_counter(), time.process_time()
                lock = app.db.is_postgres
                person = {"channel": "bench", "external_id": "1"}
                names = [c.name for c in repo.person_core_query(lock=lock).exported_columns]
                for i in range(n):
                    async with app.db.step() as unit:
                        (found,) = await unit.run(repo.person_core_query(lock=lock), person)
                        row = dict(zip(names, found, strict=True))
                        values = {
                            "uid": row["user_id"],
                            "b_state_enc": row["state_enc"],
                            "b_step": row["step"] + 1,
                            "b_seen_seqs": [*row["seen_seqs"], i][-repo.SEEN_SEQS :],
                            "b_updated_at": utcnow(),
                        }
                        await unit.run(repo.conversation_update(), values)
                        await unit.commit()
                return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n

            await engine_steps(200)
            await bare_steps(200)
            engine_runs: list[tuple[float, float]] = []
            bare_runs: list[tuple[float, float]] = []
            core_runs: list[tuple[float, float]] = []
            storage_runs: list[tuple[float, float]] = []
            screens, interceptors = list(app.engine.screens), list(app.engine.interceptors)
            preparers = dict(app.engine.preparers)
            await storage_steps(200)
            for _ in range(rounds):
                bare_runs.append(await bare_steps(steps))
                storage_runs.append(await storage_steps(steps))
                engine_runs.append(await engine_steps(steps))
                # the dialog step alone: without the screens that look at every message
                # first (the crisis screen and its model's preparer, reminder-time input),
                # to show what each costs
                app.engine.screens.clear()
                app.engine.interceptors.clear()
                app.engine.preparers.clear()
                core_runs.append(await engine_steps(steps))
                app.engine.screens.extend(screens)
                app.engine.interceptors.extend(interceptors)
                app.engine.preparers.update(preparers)
    for index, what in ((0, "wall"), (1, "cpu")):
        engine = statistics.median(r[index] for r in engine_runs) * 1e6
        bare = statistics.median(r[index] for r in bare_runs) * 1e6
        core = statistics.median(r[index] for r in core_runs) * 1e6
        stored = statistics.median(r[index] for r in storage_runs) * 1e6
        print(
            f"[{what}] bare database work: {bare:8.1f} µs/step "
            f"(median of {rounds} rounds × {steps})"
        )
        print(f"[{what}] engine step:        {engine:8.1f} µs/step")
        print(f"[{what}] engine adds:        {engine - bare:8.1f} µs/step over bare SQL")
        print(f"[{what}] ratio engine/bare:  {engine / bare:8.2f}")
        print(
            f"[{what}] of which the screens: {engine - core:6.1f} µs/step "
            f"(dialog step alone adds {core - bare:.1f} µs)"
        )
        print(f"[{what}] storage layer, same row with encryption: {stored:8.1f} µs/step")
        print(
            f"[{what}] dialog step over storage: {core - stored:8.1f} µs/step (target ≤ 100); "
            f"with the screens {engine - stored:.1f} µs"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.rounds))
