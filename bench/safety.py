"""How well, and how fast, the crisis screen works: both layers together, as the bot runs them.

Run: .venv/bin/python -m bench.safety [--split dev|test|train|all] [--verbose]

Quality, over the labelled examples in bot/safety/examples/ (split fixed by writer, see
bot/safety/semantic.py), per split, per category and per language, each with a 95% Wilson
interval:
- crisis lines: the share that get the full crisis response, and the share that get at least
  the gentle check;
- safe lines: the share that get the full crisis response (false alarms) and the share that
  get the gentle check.
Thresholds are set on dev; the test figure is the one to quote, measured once per change.
`fresh`: writers who never saw an example (bench/fresh_writers/setN/: 320 English lines and
32 in each of the ten other languages), never trained or tuned on: how the screen does on
people it has never read, measured once per change like test. Set 10 (measured once on the
shipped model) is read unless `--fresh DIR` names another (an unmeasured newer set, or
yours). Measured sets join bot/safety/examples/ (training) when a newer set replaces them
(docs/safety.md).
Also the pattern phrase sets of tests/safety/phrases.yaml (the pattern layer's own tests).

Speed: CPU time of screening per message (thread time, so other load on the machine does not
count), median and p99 over the typical messages (up to 300 characters), a 4,096-character
message, and the start-up cost of loading the screen, with lowercasing the same texts as the
in-process baseline.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import yaml

from bot.safety.assess import Assessor
from bot.safety.screen import PATTERN_FILE, ScreenResult, load_screen
from bot.safety.semantic import (
    CHECK_DESERVED,
    Example,
    ModelUnavailable,
    load_examples,
    load_semantic,
)

ROOT = Path(__file__).resolve().parent.parent
DIALOGS = ROOT / "dialogs"
PHRASES = ROOT / "tests" / "safety" / "phrases.yaml"
FRESH = ROOT / "bench" / "fresh_writers" / "set10"  # measured once on the shipped model


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def share(hits: int, total: int) -> str:
    low, high = wilson(hits, total)
    pct = hits / total if total else 0.0
    return f"{hits:>4}/{total:<4} {pct:6.1%} [{low:5.1%}, {high:5.1%}]"


# The gentler pauses: the check, someone else in danger, someone else's past. Each still puts
# the helpline in the first reply.
GENTLE = ("check", "worried", "concern")


class Tally:
    """Outcomes of one group of lines: how many got the full response, the check, nothing."""

    def __init__(self) -> None:
        self.total = self.full = self.check = 0

    def add(self, level: str | None) -> None:
        self.total += 1
        self.full += level == "crisis"
        self.check += level in GENTLE

    def crisis_line(self) -> str:
        return (
            f"full {share(self.full, self.total)}   "
            f"at least check {share(self.full + self.check, self.total)}"
        )

    def safe_line(self) -> str:
        return (
            f"full (false alarm) {share(self.full, self.total)}   "
            f"check {share(self.check, self.total)}"
        )


def level_of(found: ScreenResult | None) -> str | None:
    return None if found is None else found.level


def quality(examples: list[Example], split: str, verbose: bool, screen: Assessor) -> None:
    by: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    misses: list[str] = []
    for example in examples:
        level = level_of(screen.screen_alone("en", example.text))
        group = example.label
        if not example.is_crisis:
            group = "check_deserved" if example.category in CHECK_DESERVED else "ordinary"
        for key in (
            ("all", "", example.label),
            ("group", "", group),
            ("category", example.category, example.label),
            ("language", example.lang, example.label),
        ):
            by[key].add(level)
        wrong = (example.is_crisis and level != "crisis") or (
            not example.is_crisis and level == "crisis"
        )
        if verbose and wrong:
            misses.append(
                f"  [{example.lang} {example.label}/{example.category} → {level}] "
                f"{example.text[:160]}"
            )
    print(f"\n== {split} split ({len(examples)} lines) ==")
    print(f"crisis lines : {by[('all', '', 'crisis')].crisis_line()}")
    print(f"safe lines   : {by[('all', '', 'safe')].safe_line()}")
    ordinary, deserved = by[("group", "", "ordinary")], by[("group", "", "check_deserved")]
    crisis = by[("all", "", "crisis")]
    print(
        "  the issue's measure: crisis lines with the helpline in the first reply (any "
        f"pause) {share(crisis.full + crisis.check, crisis.total)}"
    )
    print(
        "  the issue's measure: ordinary safe lines (all but negation and distant past) "
        f"given the full response {share(ordinary.full, ordinary.total)}"
    )
    print(
        "  ordinary safe lines (all but negation and distant past) that get any pause: "
        f"{share(ordinary.full + ordinary.check, ordinary.total)}"
    )
    print(
        "  negation and distant past (they deserve the gentle check) given the full "
        f"response: {share(deserved.full, deserved.total)}"
    )
    for kind in ("category", "language"):
        print(f"-- per {kind}")
        for key in sorted(k for k in by if k[0] == kind):
            tally = by[key]
            line = tally.crisis_line() if key[2] == "crisis" else tally.safe_line()
            print(f"  {key[1]:<22} {key[2]:<6} {line}")
    for miss in misses:
        print(miss)


def phrase_sets(screen: Assessor) -> None:
    """The pattern layer's own phrase sets (tests/safety/phrases.yaml), through both layers."""
    data = yaml.safe_load(PHRASES.read_text(encoding="utf-8"))
    crisis = Tally()
    for texts in data["crisis"].values():
        for text in texts:
            crisis.add(level_of(screen.screen_alone("en", text)))
    calm = Tally()
    for text in [*data["ordinary"], *data["mentions"]]:
        calm.add(level_of(screen.screen_alone("en", text)))
    print("\n== tests/safety/phrases.yaml (written for the pattern layer; not held out) ==")
    print(f"crisis phrases : {crisis.crisis_line()}")
    print(f"ordinary+mentions: {calm.safe_line()}")


def cpu_ms(screen: Assessor, texts: Iterable[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.thread_time()
        screen.screen_alone("en", text)
        out.append((time.thread_time() - start) * 1000)
    return out


def speed(screen: Assessor, examples: list[Example]) -> None:
    typical = [e.text for e in examples if len(e.text) <= 300]
    base_start = time.thread_time()
    for text in typical:
        text.lower()
    base = (time.thread_time() - base_start) * 1000 / max(len(typical), 1)
    times = sorted(cpu_ms(screen, typical))
    median = statistics.median(times)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    filler = (
        "Work was long today and I keep going over the meeting again, wondering whether I "
        "said the wrong thing to my manager, and then the train was late and I missed dinner. "
    )
    long_text = (filler * 40)[:4096]
    long_ms = statistics.median(cpu_ms(screen, [long_text] * 3))
    patterns = screen.pattern_screen("en")
    start = time.thread_time()
    for text in typical:
        patterns.check_text(text)
    pattern_us = (time.thread_time() - start) * 1e6 / max(len(typical), 1)
    print("\n== speed (CPU time of the screening thread) ==")
    print(
        f"typical messages (<= 300 chars, n={len(times)}): median {median:.1f} ms, "
        f"p99 {p99:.1f} ms  (baseline: lowercasing {base * 1000:.1f} µs; "
        f"ratio {median / base:.0f}x)"
    )
    print(f"a 4,096-character message: {long_ms:.0f} ms")
    print(f"the patterns alone (one check_text, mean over the typical): {pattern_us:.0f} µs")


def load_assessor() -> Assessor:
    """Both layers, loaded as the bot loads them (patterns of `en`, the shipped model)."""
    path = DIALOGS / "en" / PATTERN_FILE
    patterns, errors = load_screen(path, str(path))
    if patterns is None:
        raise SystemExit("\n".join(str(e) for e in errors))
    assessor = Assessor({"en": patterns}, "en")
    try:
        assessor.semantic = load_semantic()
    except ModelUnavailable as exc:
        print(f"semantic layer OFF: {exc}")
    return assessor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("train", "dev", "test", "fresh", "all"), default="all")
    parser.add_argument("--verbose", action="store_true", help="print every wrong line")
    parser.add_argument("--limit", type=int, default=0, help="lines per split (smoke test)")
    parser.add_argument(
        "--fresh",
        type=Path,
        default=FRESH,
        help="folder of never-shown writers' .tsv files for the fresh split (default: %(default)s)",
    )
    parser.add_argument(
        "--no-speed", action="store_true", help="quality only (speed re-screens every example)"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    screen = load_assessor()
    loaded = time.perf_counter() - start
    print(f"screen loaded in {loaded:.2f} s; semantic layer: {'ON' if screen.semantic else 'OFF'}")
    if screen.semantic:
        model = screen.semantic.model
        print(
            f"thresholds (set on dev): crisis p >= {model.crisis_at:.3f}, "
            f"check p >= {model.check_at:.3f}"
        )
    examples = load_examples()
    known = {" ".join(e.text.casefold().split()) for e in examples}
    unseen = load_examples(args.fresh)
    fresh = [e for e in unseen if " ".join(e.text.casefold().split()) not in known]
    splits = ("train", "dev", "test", "fresh") if args.split == "all" else (args.split,)
    for split in splits:
        chosen = fresh if split == "fresh" else [e for e in examples if e.split == split]
        if args.limit:
            chosen = chosen[: args.limit]
        quality(chosen, split, args.verbose, screen)
    phrase_sets(screen)
    if args.no_speed:
        return 0
    speed(screen, examples[: args.limit * 3] if args.limit else examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
