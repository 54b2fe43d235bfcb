"""Every benchmark still runs (tiny sizes): CI does not run them at full size, and a
refactor can leave one calling what no longer exists. Only that they finish is checked;
what they print is for people (timings are never asserted on)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import REPO_ROOT

SMALL = {
    "bench.budget": ["--updates", "18", "--rounds", "1"],
    "bench.engine": ["--steps", "20", "--rounds", "1"],
    "bench.memory": ["--quick", "--idle", "0.5"],
    # two people, one round of 4 updates per bot, each way (and kindbot on the stock request)
    "bench.http": ["--quick", "--stock"],
    "bench.long_messages": ["--limit", "2"],
    "bench.long_pieces": ["--limit", "2"],
    "bench.long_sets": ["--limit", "2", "--half", "all"],
    "bench.long_combo": ["--limit", "2", "--no-ordinary"],
    "bench.updates": [
        "--updates", "18", "--rounds", "1", "--people", "3", "--cycles", "1",
        "--latency", "0.001", "--throughput-runs", "1",
    ],
    # enough due reminders for all three of its phases (it waits for each one's first send)
    "bench.reminders": ["--people", "3000", "--due", "2000", "--rate", "100", "--window", "0.5"],
    "bench.safety": ["--limit", "20"],
    "bench.stall": ["--quick"],  # 20 entries, half a second per phase
    "bench.worried": ["bench/worried/worried_dev.tsv"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(SMALL))
def test_the_benchmark_runs(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *SMALL[module]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_the_long_message_sets_load() -> None:
    """bench/long_words/ (read by `bench.long_sets`, and `bench.safety --fresh DIR`): valid
    example files, everyday lines safe and buried-risk lines crisis, every line long."""
    from bot.safety.semantic import load_examples

    root = REPO_ROOT / "bench" / "long_words"
    for folder in ("buried_en", "round2"):
        examples = load_examples(root / folder)
        assert len(examples) >= 200
        for e in examples:
            assert e.label == ("crisis" if e.source.startswith("buried") else "safe"), e
            assert len(e.text.split()) > 40, e
