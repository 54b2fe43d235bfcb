"""The weekly look back: once a week, the week's practice in a few lines.

A person opts in under /reminders (a day of the week and a time, in their zone, like the
other reminders). When it is due, the dispatcher fires a `Reminder("weekly")` and
`look_back` writes the message from their entries of the last seven days: how many of each
kind, the average ratings before and after where a practice has them, and, only if they said
yes when opting in, one kind sentence of their own from the week (the newest `kind_words`
answer, from a reframe or a journal entry), quoted back.

What it leaves out on purpose: streaks, comparisons with other weeks, anything about days
missed. A week with nothing in it still gets one gentle line (the person asked for a weekly
message; silence would read as the bot having stopped, and the line asks nothing of them).

Which answers are "before" and "after" comes from the dialogs' `derived` differences, as
for /progress (`bot.progress.rated_answers`). Every sentence is in messages.yaml
(`weekly_*`), with several phrasings for the ones read every week. Answers are decrypted
here only to be sent to their owner; nothing of them is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.localtime import local
from bot.progress import Rated

# The kinds counted, in the order they are listed (entry kinds of the recorded dialogs).
KIND_ORDER = ("reframe", "checkin", "practice", "journal", "reflection")
QUOTED_ANSWER = "kind_words"  # the reframe's and the journal's own kind sentence
QUOTE_LIMIT = 300  # a longer sentence is shortened, so the look back stays a few lines
WEEK = timedelta(days=7)

Words = Callable[..., str]  # a messages.yaml key and its values → the sentence


@dataclass(frozen=True)
class WeekEntry:
    """One entry of the week, as the look back needs it: decrypted answers included."""

    kind: str
    dialog: str
    started_at: datetime
    answers: dict[str, Any]


def week_window(now: datetime) -> tuple[datetime, datetime]:
    """The seven days the look back covers: [now - 7 days, now)."""
    return now - WEEK, now


def _average(values: list[int]) -> str:
    return f"{sum(values) / len(values):.1f}".removesuffix(".0")


def _ratings(entries: list[WeekEntry], rated: Rated) -> tuple[list[int], list[int]]:
    """The before and after ratings of the entries that have both (first pair that does)."""
    befores: list[int] = []
    afters: list[int] = []
    for entry in entries:
        for names in rated.get(entry.dialog, []):
            before, after = (entry.answers.get(n) for n in names)
            if isinstance(before, int) and isinstance(after, int):
                befores.append(before)
                afters.append(after)
                break
    return befores, afters


def _quote(entries: list[WeekEntry]) -> str | None:
    """The newest non-empty kind sentence of the week, shortened if long."""
    for entry in sorted(entries, key=lambda e: e.started_at, reverse=True):
        said = entry.answers.get(QUOTED_ANSWER)
        if isinstance(said, str) and said.strip():
            text = " ".join(said.split())
            if len(text) > QUOTE_LIMIT:
                text = text[: QUOTE_LIMIT - 1].rstrip() + "…"
            return text
    return None


def look_back(
    entries: list[WeekEntry],
    rated: Rated,
    words: Words,
    *,
    now: datetime,
    where: ZoneInfo,
    quote: bool,
) -> str:
    """The message: an opening with the dates, a line per kind practised, maybe a quote.

    `entries` must already be this person's entries of the week (see `week_window`).
    """
    start, end = week_window(now)
    date_format = words("weekly_date_format")
    dates = {
        "start": local(start, where).strftime(date_format),
        "end": local(end - timedelta(minutes=1), where).strftime(date_format),
    }
    counted = [e for e in entries if e.kind in KIND_ORDER]
    if not counted:
        return words("weekly_empty", **dates)
    lines = [words("weekly_intro", **dates), ""]
    for kind in KIND_ORDER:
        mine = [e for e in counted if e.kind == kind]
        if not mine:
            continue
        key = f"weekly_count_{kind}" + ("_one" if len(mine) == 1 else "")
        line = words(key, count=len(mine))
        befores, afters = _ratings(mine, rated)
        if befores:
            line += words("weekly_ratings", before=_average(befores), after=_average(afters))
        lines.append(line)
    found = _quote(counted) if quote else None
    if found is not None:
        lines += ["", words("weekly_quote", quote=found)]
    lines += ["", words("weekly_closing")]
    return "\n".join(lines)
