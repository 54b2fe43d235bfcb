"""Long messages: a crisis line buried in a long everyday message, and long everyday messages
with none, through both layers of the crisis screen as the bot runs them.

Run: .venv/bin/python -m bench.long_messages [--split dev|test] [--limit N] [--seed S]

The labelled examples are short lines, so the held-out figures of `bench.safety` say little
about a long message, which the screen reads in windows of 64 words (the model) and whole (the
patterns). Here long messages are made from one split's English lines (`dev` by default; `test`
is measured once per change, like `bench.safety --split test`):
- **buried**: each crisis line of the split at a random place among the split's ordinary and
  self-critical safe lines, cut at 1,000 characters (the most one answer keeps,
  MAX_TEXT_CHARS) and at 4,096 (Telegram's limit; the crisis line is never cut). Measured: the
  full response, and any pause.
- **everyday**: the same safe lines alone (100 messages per length), and ordinary lines alone
  without the self-critical ones. Measured: the full response (a false alarm) and any pause.

The lines are joined in random order, so a message is less coherent than one person's writing:
a proxy, printed beside the short lines' figures it qualifies. Fixed seed: the same messages
every run.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

from bench.safety import Tally, level_of, load_assessor, share
from bot.safety.assess import Assessor
from bot.safety.semantic import Example, load_examples

LENGTHS = (1000, 4096)
EVERYDAY = ("ordinary", "self_criticism")
SAFE_MESSAGES = 100


def filled(rng: random.Random, lines: Sequence[str], length: int, keep: str = "") -> str:
    """Random `lines` around `keep` (at a random place), cut to `length` without cutting it."""
    room = length - len(keep) - 1 if keep else length
    filler: list[str] = []
    while sum(len(f) + 1 for f in filler) < room:
        filler.append(rng.choice(lines))
    if not keep:
        return " ".join(filler)[:length]
    place = rng.randrange(len(filler) + 1)
    before = " ".join(filler[:place])
    after = " ".join(filler[place:])
    text = " ".join(p for p in (before, keep, after) if p)
    start = max(0, min(len(before) - 1, len(text) - length))  # the kept line stays whole
    return text[start : start + length].strip()


def tally(screen: Assessor, texts: Sequence[str]) -> Tally:
    """What both layers give each of `texts`."""
    out = Tally()
    for text in texts:
        out.add(level_of(screen.screen_alone("en", text)))
    return out


def messages(
    examples: Sequence[Example], seed: int, limit: int
) -> dict[tuple[str, int], list[str]]:
    """The long messages of one split, by (kind, length)."""
    english = [e for e in examples if e.lang == "en"]
    crisis = [e.text for e in english if e.is_crisis][: limit or None]
    everyday = [e.text for e in english if not e.is_crisis and e.category in EVERYDAY]
    ordinary = [e.text for e in english if not e.is_crisis and e.category == "ordinary"]
    count = min(limit, SAFE_MESSAGES) if limit else SAFE_MESSAGES
    out: dict[tuple[str, int], list[str]] = {}
    for length in LENGTHS:
        rng = random.Random(f"{seed}-{length}")
        out["buried", length] = [filled(rng, everyday, length, line) for line in crisis]
        out["everyday", length] = [filled(rng, everyday, length) for _ in range(count)]
        out["ordinary only", length] = [filled(rng, ordinary, length) for _ in range(count)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--limit", type=int, default=0, help="crisis lines (smoke test)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    screen = load_assessor()
    examples = [e for e in load_examples() if e.split == args.split]
    print(f"semantic layer: {'ON' if screen.semantic else 'OFF'}; {args.split} split, English")
    for (kind, length), texts in messages(examples, args.seed, args.limit).items():
        got = tally(screen, texts)
        what = "caught" if kind == "buried" else "false alarm"
        print(
            f"{kind:<13} {length:>5} chars: full ({what}) {share(got.full, got.total)}   "
            f"any pause {share(got.full + got.check, got.total)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
