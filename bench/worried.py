"""Messages about someone else: what the crisis screen does with them, both layers as the bot
runs them.

Run: .venv/bin/python -m bench.worried [FILE ...]   (default: every file in bench/worried/)

Each file has lines `label<TAB>text`, written by helpers who saw only a brief:
- `worried`: someone else may be in danger now ("my friend keeps saying she wants to die").
  Measured: the share that get the emergency number and a helpline in the first reply (any
  pause), and the share that get the reply written for them (level `worried`: what to do for
  the other person, then a question about the writer).
- `own_crisis`: the writer mentions someone else but is in danger too. Measured: the full
  crisis response, and any pause.
- `ordinary`: about other people, nobody in danger now (grief, a past attempt long over,
  health, news). Measured: the full response (a false alarm) and any pause.

`worried_dev.tsv` was read while writing the `someone_at_risk` patterns (a dev set);
`worried_test.tsv` was measured once (docs/safety.md gives the figures).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bench.safety import GENTLE, load_assessor, share

ROOT = Path(__file__).resolve().parent / "worried"
PAUSES = ("crisis", *GENTLE)


def read(path: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in ("worried", "own_crisis", "ordinary"):
            raise SystemExit(f"{path}:{number}: expected `worried|own_crisis|ordinary<TAB>text`")
        rows.append((label, text))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = [Path(a) for a in args] or sorted(ROOT.glob("*.tsv"))
    screen = load_assessor()
    print(f"semantic layer: {'ON' if screen.semantic else 'OFF'}")
    for path in files:
        outcomes: dict[str, Counter[str | None]] = {}
        for label, text in read(path):
            found = screen.screen_alone("en", text)
            outcomes.setdefault(label, Counter())[found.level if found else None] += 1
        print(f"\n== {path.name} ==")
        for label, got in sorted(outcomes.items()):
            total = sum(got.values())
            paused = sum(got[level] for level in PAUSES)
            print(f"{label:<10} ({total}): " + ", ".join(f"{k}={v}" for k, v in got.most_common()))
            print(f"  any pause (helpline in the first reply): {share(paused, total)}")
            if label == "worried":
                print(f"  the reply written for them (worried):    {share(got['worried'], total)}")
            else:
                print(f"  the full crisis response:                {share(got['crisis'], total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
