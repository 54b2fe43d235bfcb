"""Long messages as the bot screens them: the shipped screen on held-out sets of long messages
(`bench/long_words/`), each line halved into dev and test by a hash of its text.

Run: .venv/bin/python -m bench.long_sets [--half dev|test|all] [--folder DIR] [--limit N]

A set is a folder of example files (`lang, label, category, text`): everyday long messages
(`safe`: a full response is a false alarm, and a gentle check a pause) and long messages with
a current risk in one or two of their sentences (`crisis`: the full response, and the
helpline in the first reply, which the gentle check gives too). Each file is printed on its
own, with 95% Wilson intervals, then the safe and crisis files together.

The halves are fixed before anything is read (`half`): dev may be read while a change is
made; test is read once per change, with a plan written down before (see
`bench/long_words/round2/PLAN.md`, and docs/safety.md for every figure so far).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread: the machine is shared

import argparse  # noqa: E402
import hashlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.safety import Tally, level_of, load_assessor  # noqa: E402
from bot.config import REPO_ROOT  # noqa: E402
from bot.safety.semantic import load_examples  # noqa: E402

ROUND2 = REPO_ROOT / "bench" / "long_words" / "round2"


def half(text: str) -> str:
    """dev or test, by a hash of the text (as `semantic.split_of` halves the evaluation
    writers): fixed before any line is read."""
    return "dev" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--half", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--folder", type=Path, default=ROUND2)
    parser.add_argument("--limit", type=int, default=0, help="lines per file (smoke test)")
    args = parser.parse_args(argv)
    screen = load_assessor()
    print(f"semantic layer: {'ON' if screen.semantic else 'OFF'}; {args.half} half")
    examples = load_examples(args.folder)
    together = {"crisis": Tally(), "safe": Tally()}
    for source in dict.fromkeys(e.source for e in examples):
        chosen = [e for e in examples if e.source == source and args.half in ("all", half(e.text))][
            : args.limit or None
        ]
        got = Tally()
        for e in chosen:
            level = level_of(screen.screen_alone("en", e.text))
            got.add(level)
            together[e.label].add(level)
        crisis = bool(chosen) and chosen[0].is_crisis
        print(f"{source:<14} n={got.total:<4} {got.crisis_line() if crisis else got.safe_line()}")
    print(f"{'all crisis':<14} n={together['crisis'].total:<4} {together['crisis'].crisis_line()}")
    print(f"{'all safe':<14} n={together['safe'].total:<4} {together['safe'].safe_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
