"""`/progress`: a chart of ratings before and after each practice, and practice per week.

The chart is laid out on the person's clock (their zone, bot/localtime.py): one column per
calendar day with plain dates ("Mar 2"), one point per practice (several on one day sit
side by side in that day's column), each kind of rated entry in a panel of its own
(check-ins apart from reframes: their numbers mean different things; the practice
library's practices together, as `practice`), and one bar per week labelled
with its dates. A first day is one column, centred, so it reads as a start, not as an
empty axis. `layout` computes all of it (tested as data); `draw_chart` only draws.

Which answers are "before" and "after" comes from each dialog's `derived` difference (the
reframe's `change: {difference: [rating_before, rating_after]}`), so check-ins and other
recorded dialogs join in without code here.

The step reads nothing: it emits a `Later` holding what the chart needs from the catalog
(which answers are ratings, the person's words for titles and summaries), and the chart is
made after the step has committed, in the worker process (bot/offload.py), which reads the
person's entries itself: for a long history the reading alone held SQLite's one writer for
20+ ms in the step, and its objects set off the bot's garbage collector. matplotlib is
imported only there (the object API with the Agg canvas, no pyplot global state).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine.catalog import Catalog
from bot.engine.events import Image, Later, Message, Output
from bot.engine.feature import CommandHandler
from bot.engine.texts import fill
from bot.engine.turn import Turn
from bot.localtime import local, person_zone
from storage import repo
from storage.models import Entry
from storage.personal import is_person
from storage.source import DatabaseSource

MIN_RATED = 1  # with no rated practice yet, a kind note instead of a chart
CHART = "progress_chart"  # the `Later` kind, and its producer's name in Engine.producers
CHART_FILE = "kindbot-progress.png"
DAY_TICKS = 8  # at most this many dates under the day axis
WEEK_LABELS = 8  # at most this many weeks named under the bars
SPREAD = 0.7  # how much of a day's column its practices share
WEEK_SLOTS = 5  # fewer weeks than this are drawn at the width five would have


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime  # on the person's clock
    before: int | None
    after: int | None
    # the panel it goes in: its entry's kind, the dialog's own name for a reframe or a
    # check-in, and one `practice` for every dialog of the practice library (a panel each
    # would be too many to read)
    dialog: str = "reframe"


@dataclass(frozen=True, slots=True)
class ChartTexts:
    title: str
    rating_axis: str
    before: str
    after: str
    week_axis: str
    day_format: str = "%b %-d"
    week_label: str = "{start} – {end}"
    titles: dict[str, str] = field(default_factory=dict)  # dialog → its panel's title


@dataclass(frozen=True, slots=True)
class Panel:
    """One rated dialog's points: x is days since the first day of the chart."""

    dialog: str
    title: str
    xs: list[float]
    befores: list[int | None]
    afters: list[int | None]


@dataclass(frozen=True, slots=True)
class Layout:
    panels: list[Panel]
    day_ticks: list[tuple[int, str]]  # (day, "Mar 2")
    x_range: tuple[float, float]
    weeks: list[tuple[str, int]]  # ("Mar 2 – Mar 8", practices that week)


Rated = dict[str, list[list[str]]]  # dialog → its [before, after] answer names, in order


def rated_answers(catalog: Catalog, locale: str) -> Rated:
    """Per dialog, the pairs of answers that are a rating before and after (JSON-able)."""
    names = set(catalog.locale(catalog.default).dialogs) | set(catalog.locale(locale).dialogs)
    rated: Rated = {}
    for name in sorted(names):
        machine = catalog.dialog(name, locale)
        if machine is None:
            continue
        pairs = [
            list(derived.difference)
            for derived in machine.spec.derived.values()
            # a comparison with a setting (a check-in's band) is not before/after
            if not any(n in machine.spec.params for n in derived.difference)
        ]
        if pairs:
            rated[name] = pairs
    return rated


def rated_kinds(catalog: Catalog, locale: str, rated: Rated) -> set[str]:
    """The entry kinds of the rated dialogs: the chart's panels."""
    kinds = set()
    for name in rated:
        machine = catalog.dialog(name, locale)
        if machine is not None:
            kinds.add(machine.spec.entry or name)
    return kinds


def rating_points(
    entries: list[Entry], catalog: Catalog, locale: str, where: ZoneInfo | None = None
) -> list[Point]:
    """One point per entry that has a before (and maybe an after) rating, oldest first."""
    return points_from(entries, rated_answers(catalog, locale), where)


def points_from(entries: list[Entry], rated: Rated, where: ZoneInfo | None = None) -> list[Point]:
    where = where or person_zone(None, "UTC")
    points = []
    for entry in entries:
        for before_name, after_name in rated.get(entry.dialog, []):
            before, after = entry.scores.get(before_name), entry.scores.get(after_name)
            if before is not None or after is not None:
                points.append(Point(local(entry.started_at, where), before, after, entry.kind))
                break
    return sorted(points, key=lambda p: p.at)


def practice_weeks(
    entries: list[Entry], where: ZoneInfo | None = None
) -> list[tuple[datetime, int]]:
    """(Monday of the week, practices started that week), every week from first to last,
    weeks as the person's calendar has them."""
    if not entries:
        return []
    where = where or person_zone(None, "UTC")
    counts: Counter[date] = Counter()
    for entry in entries:
        day = local(entry.started_at, where).date()
        counts[day - timedelta(days=day.weekday())] += 1
    week, last = min(counts), max(counts)
    out = []
    while week <= last:
        out.append((datetime(week.year, week.month, week.day, tzinfo=where), counts.get(week, 0)))
        week += timedelta(days=7)
    return out


def _spread(count: int) -> list[float]:
    """Offsets inside a day's column for `count` practices, left to right, centred."""
    return [((i + 1) / (count + 1) - 0.5) * SPREAD for i in range(count)]


def layout(points: list[Point], weeks: list[tuple[datetime, int]], texts: ChartTexts) -> Layout:
    """Where everything goes: panels (the dialog with the most practices first), day ticks,
    the day axis's range, and the weeks' labels."""
    first = min(p.at.date() for p in points)
    last = max(p.at.date() for p in points)
    span = (last - first).days
    dialogs = Counter(p.dialog for p in points)
    panels = []
    for dialog, _ in sorted(dialogs.items(), key=lambda d: (-d[1], d[0])):
        mine = [p for p in points if p.dialog == dialog]
        per_day = Counter(p.at.date() for p in mine)
        seen: Counter[date] = Counter()
        xs = []
        for p in mine:
            day = p.at.date()
            xs.append((day - first).days + _spread(per_day[day])[seen[day]])
            seen[day] += 1
        panels.append(
            Panel(
                dialog,
                texts.titles.get(dialog, texts.title),
                xs,
                [p.before for p in mine],
                [p.after for p in mine],
            )
        )
    step = max(1, math.ceil((span + 1) / DAY_TICKS))
    ticks = [
        (day, (first + timedelta(days=day)).strftime(texts.day_format))
        for day in range(0, span + 1, step)
    ]
    week_labels = [
        (
            fill(
                texts.week_label,
                {
                    "start": monday.strftime(texts.day_format),
                    "end": (monday + timedelta(days=6)).strftime(texts.day_format),
                },
            ),
            count,
        )
        for monday, count in weeks
    ]
    return Layout(panels, ticks, (-0.6, span + 0.6), week_labels)


def draw_chart(points: list[Point], weeks: list[tuple[datetime, int]], texts: ChartTexts) -> bytes:
    """A PNG (800×700 px): a panel of ratings per rated dialog on a day axis, practices per
    week below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    plan = layout(points, weeks, texts)
    figure = Figure(figsize=(8, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        len(plan.panels) + 1, 1, height_ratios=[3] * len(plan.panels) + [2], squeeze=False
    )
    for panel, (top,) in zip(plan.panels, axes, strict=False):
        for x, before, after in zip(panel.xs, panel.befores, panel.afters, strict=True):
            if before is not None and after is not None:
                top.plot([x, x], [before, after], color="#c8c8c8", lw=2)
        befores = [(x, b) for x, b in zip(panel.xs, panel.befores, strict=True) if b is not None]
        afters = [(x, a) for x, a in zip(panel.xs, panel.afters, strict=True) if a is not None]
        if befores:
            top.plot(*zip(*befores, strict=True), "o", color="#d0704a", label=texts.before)
        if afters:
            top.plot(*zip(*afters, strict=True), "o", color="#3f8f7a", label=texts.after)
        top.set_ylim(-0.5, 10.5)
        top.set_yticks(range(0, 11, 2))
        top.set_ylabel(texts.rating_axis)
        top.set_title(panel.title)
        top.grid(axis="y", alpha=0.3)
        top.legend(loc="best")
        top.set_xlim(*plan.x_range)
        top.set_xticks([day for day, _ in plan.day_ticks], [label for _, label in plan.day_ticks])
    (bottom,) = axes[-1]
    positions = list(range(len(plan.weeks)))
    bottom.bar(positions, [n for _, n in plan.weeks], width=0.6, color="#7aa6c2")
    every = max(1, math.ceil(len(plan.weeks) / WEEK_LABELS))
    shown = positions[::every]
    bottom.set_xticks(shown, [plan.weeks[i][0] for i in shown], fontsize=8)
    # a few weeks (a first one) keep a bar's width, centred, rather than filling the panel
    pad = max(0, WEEK_SLOTS - len(plan.weeks)) / 2
    bottom.set_xlim(-0.5 - pad, len(plan.weeks) - 0.5 + pad)
    bottom.set_ylabel(texts.week_axis)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _average(values: list[int]) -> str:
    return f"{sum(values) / len(values):.1f}".removesuffix(".0")


def progress_command(default_zone: str) -> CommandHandler:
    """/progress, with days counted on `default_zone`'s clock for someone who has not chosen
    a zone."""

    async def command(turn: Turn, args: str) -> None:
        await show_progress(turn, args, default_zone=default_zone)

    return command


async def show_progress(turn: Turn, args: str, *, default_zone: str = "UTC") -> None:
    """The chart and a one-line summary, or a kind note when there is too little to draw;
    both made after the step (see the module's docstring), in the person's words."""
    assert turn.user.id is not None
    rated = rated_answers(turn.engine.catalog, turn.locale.code)
    panels = rated_kinds(turn.engine.catalog, turn.locale.code, rated)
    messages = turn.locale.messages
    texts = ChartTexts(
        title=turn.text("progress_chart_title"),
        rating_axis=turn.text("progress_axis_rating"),
        before=turn.text("progress_before"),
        after=turn.text("progress_after"),
        week_axis=turn.text("progress_axis_week"),
        day_format=turn.text("progress_day"),
        week_label=turn.locale.message("progress_week", run=turn.step),
        titles={
            panel: turn.text(f"progress_title_{panel}")
            for panel in panels
            if f"progress_title_{panel}" in messages
        },
    )
    # templates, filled in once the entries are read (the same phrasing turn.text would pick)
    keys = ["progress_too_little", "progress_summary", "progress_summary_first"]
    keys.append("history_date_short")
    keys += [f"progress_average_{p}" for p in panels if f"progress_average_{p}" in messages]
    words = {key: turn.locale.message(key, run=turn.step) for key in keys}
    data = {
        "user_id": turn.user.id,
        "rated": rated,
        "zone": person_zone(turn.user.timezone, default_zone).key,
        "texts": asdict(texts),
        "words": words,
    }
    turn.emit(Later(CHART, data))
    turn.reprompt()


def summary(
    entries: list[Entry], points: list[Point], words: dict[str, str], where: ZoneInfo
) -> str:
    """How many practices since when, then each rated dialog's average before and after."""
    since = local(entries[0].started_at, where).strftime(words["history_date_short"])
    # (a chart asked for before an upgrade has no first-practice words: the plain count)
    first = "progress_summary_first" if len(entries) == 1 else "progress_summary"
    template = words.get(first, words["progress_summary"])
    parts = [fill(template, {"count": len(entries), "since": since})]
    for dialog in sorted({p.dialog for p in points}, key=lambda d: (d != "reframe", d)):
        pairs = [p for p in points if p.dialog == dialog and None not in (p.before, p.after)]
        key = f"progress_average_{dialog}"
        if pairs and key in words:
            values = {
                "before": _average([p.before for p in pairs if p.before is not None]),
                "after": _average([p.after for p in pairs if p.after is not None]),
            }
            parts.append(fill(words[key], values))
    return " ".join(parts)


async def make_chart(
    source: DatabaseSource, channel: str, external_id: str, data: dict[str, Any]
) -> list[Output]:
    """The chart with its summary, or the kind note; nothing for someone who is gone (they
    used /forget meanwhile, or the id is now someone else's: SQLite may reuse it)."""
    user_id = int(data["user_id"])
    async with source.session() as (session, _):
        if not await is_person(session, user_id=user_id, channel=channel, external_id=external_id):
            return []
        stored = await repo.list_entries(session, user_id=user_id)
    words: dict[str, str] = data["words"]
    where = person_zone(data.get("zone"), "UTC")
    # practices that were done (finished), oldest first; unfinished ones are not counted
    entries = [e for e in reversed(stored) if e.status == "finished"]
    points = points_from(entries, data["rated"], where)
    if len(points) < MIN_RATED:
        return [Message(fill(words["progress_too_little"], {"count": len(entries)}))]
    png = draw_chart(points, practice_weeks(entries, where), ChartTexts(**data["texts"]))
    return [Image(png, CHART_FILE, caption=summary(entries, points, words, where))]
