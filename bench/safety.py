"""Recall and false-alarm rate of the crisis screen over the phrase sets in tests/safety/.

Run: .venv/bin/python bench/safety.py [--verbose]. Prints the numbers and every miss, so a
change to dialogs/<locale>/crisis_patterns.yaml can be judged before it ships. Also prints
how long screening takes per message against a baseline (lowercasing the same text).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.safety.screen import PATTERN_FILE, Screen, load_screen  # noqa: E402

PHRASES = ROOT / "tests" / "safety" / "phrases.yaml"


@dataclass
class Report:
    crisis_total: int = 0
    crisis_caught: int = 0
    crisis_full: int = 0
    wrong_category: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    unsure_total: int = 0
    unsure_checked: int = 0
    unsure_wrong: list[str] = field(default_factory=list)
    calm_total: int = 0
    false_alarms: list[str] = field(default_factory=list)
    mentions_total: int = 0
    mention_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.crisis_caught / self.crisis_total

    @property
    def false_alarm_rate(self) -> float:
        return len(self.false_alarms) / self.calm_total

    @property
    def mention_alarm_rate(self) -> float:
        return len(self.mention_alarms) / self.mentions_total


def load_phrases() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PHRASES.read_text(encoding="utf-8"))
    return data


def screen_for(locale: str = "en") -> Screen:
    path = ROOT / "dialogs" / locale / PATTERN_FILE
    screen, errors = load_screen(path, str(path))
    if screen is None:
        raise SystemExit("\n".join(str(e) for e in errors))
    return screen


def measure(screen: Screen, phrases: dict[str, Any]) -> Report:
    report = Report()
    for category, texts in phrases["crisis"].items():
        for text in texts:
            report.crisis_total += 1
            found = screen.check_text(text)
            if found is None:
                report.missed.append(f"[{category}] {text}")
                continue
            report.crisis_caught += 1
            report.crisis_full += found.level == "crisis"
            if found.category != category:
                report.wrong_category.append(f"[{category} → {found.category}] {text}")
    for text in phrases["unsure"]:
        report.unsure_total += 1
        found = screen.check_text(text)
        if found is not None and found.level == "check":
            report.unsure_checked += 1
        else:
            report.unsure_wrong.append(f"{text} → {found}")
    for text in phrases["ordinary"]:
        report.calm_total += 1
        if screen.check_text(text) is not None:
            report.false_alarms.append(text)
    for text in phrases["mentions"]:
        report.mentions_total += 1
        if screen.check_text(text) is not None:
            report.mention_alarms.append(text)
    return report


def timing(screen: Screen, texts: list[str], rounds: int = 20) -> float:
    """Screening time per message as a ratio to lowercasing it (same run, same texts)."""
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            text.lower()
    base = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            screen.check_text(text)
    spent = time.perf_counter() - start
    per_message_us = spent / (rounds * len(texts)) * 1e6
    print(f"screening: {per_message_us:.0f} µs per message, {spent / base:.0f}× lowercasing")
    return spent / base


def holdouts(screen: Screen, phrases: dict[str, Any]) -> None:
    """Sets written after tuning: recall and false alarms each (first-pass numbers in the file)."""
    for name in sorted(k for k in phrases if k.startswith("holdout")):
        crisis, calm = phrases[name]["crisis"], phrases[name]["calm"]
        caught = sum(screen.check_text(t) is not None for t in crisis)
        alarms = [t for t in calm if screen.check_text(t) is not None]
        print(
            f"{name}: recall {caught}/{len(crisis)} = {caught / len(crisis):.0%}, "
            f"false alarms {len(alarms)}/{len(calm)} = {len(alarms) / len(calm):.0%}"
        )
        for text in crisis:
            if screen.check_text(text) is None:
                print(f"  missed: {text}")
        for text in alarms:
            print(f"  false alarm: {text}")


def main() -> int:
    phrases = load_phrases()
    screen = screen_for()
    r = measure(screen, phrases)
    print(
        f"recall (crisis phrases that interrupt): {r.crisis_caught}/{r.crisis_total} "
        f"= {r.recall:.1%}  (full crisis response: {r.crisis_full}/{r.crisis_total})"
    )
    print(f"unsure phrases met with the gentle check: {r.unsure_checked}/{r.unsure_total}")
    print(
        f"false alarms on ordinary self-criticism and idioms: "
        f"{len(r.false_alarms)}/{r.calm_total} = {r.false_alarm_rate:.1%}"
    )
    print(
        f"passing mentions that interrupt: {len(r.mention_alarms)}/{r.mentions_total} "
        f"= {r.mention_alarm_rate:.1%}"
    )
    for title, items in (
        ("missed", r.missed),
        ("wrong category", r.wrong_category),
        ("unsure not checked", r.unsure_wrong),
        ("false alarms", r.false_alarms),
        ("mentions interrupting", r.mention_alarms),
    ):
        for item in items:
            print(f"  {title}: {item}")
    holdouts(screen, phrases)
    everything = [t for ts in phrases["crisis"].values() for t in ts] + phrases["ordinary"]
    timing(screen, everything)
    return 0


if __name__ == "__main__":
    sys.exit(main())
