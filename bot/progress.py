"""`/progress`: a chart of ratings before and after each practice, and practice per week.

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
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.engine.catalog import Catalog
from bot.engine.events import Image, Later, Message, Output
from bot.engine.feature import CommandHandler
from bot.engine.texts import fill
from bot.engine.turn import Turn
from storage import repo
from storage.models import Entry, as_utc
from storage.personal import is_person
from storage.source import DatabaseSource

MIN_RATED = 2  # fewer rated practices than this get a kind note instead of a chart
CHART = "progress_chart"  # the `Later` kind, and its producer's name in Engine.producers
CHART_FILE = "kindbot-progress.png"


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    before: int | None
    after: int | None


@dataclass(frozen=True, slots=True)
class ChartTexts:
    title: str
    rating_axis: str
    before: str
    after: str
    week_axis: str


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


def rating_points(entries: list[Entry], catalog: Catalog, locale: str) -> list[Point]:
    """One point per entry that has a before (and maybe an after) rating, oldest first."""
    return points_from(entries, rated_answers(catalog, locale))


def points_from(entries: list[Entry], rated: Rated) -> list[Point]:
    points = []
    for entry in entries:
        for before_name, after_name in rated.get(entry.dialog, []):
            before, after = entry.scores.get(before_name), entry.scores.get(after_name)
            if before is not None or after is not None:
                points.append(Point(as_utc(entry.started_at), before, after))
                break
    return sorted(points, key=lambda p: p.at)


def practice_weeks(entries: list[Entry]) -> list[tuple[datetime, int]]:
    """(Monday of the week, practices started that week), every week from first to last."""
    if not entries:
        return []
    counts: Counter[datetime] = Counter()
    for entry in entries:
        day = as_utc(entry.started_at)
        monday = (day - timedelta(days=day.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        counts[monday] += 1
    week, last = min(counts), max(counts)
    out = []
    while week <= last:
        out.append((week, counts.get(week, 0)))
        week += timedelta(days=7)
    return out


def draw_chart(points: list[Point], weeks: list[tuple[datetime, int]], texts: ChartTexts) -> bytes:
    """A PNG (800×700 px): ratings over time on top, practices per week below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 2])
    for point in points:
        if point.before is not None and point.after is not None:
            top.plot([point.at, point.at], [point.before, point.after], color="#c8c8c8", lw=2)
    befores = [(p.at, p.before) for p in points if p.before is not None]
    afters = [(p.at, p.after) for p in points if p.after is not None]
    if befores:
        top.plot(*zip(*befores, strict=True), "o-", color="#d0704a", label=texts.before)
    if afters:
        top.plot(*zip(*afters, strict=True), "o-", color="#3f8f7a", label=texts.after)
    top.set_ylim(-0.5, 10.5)
    top.set_yticks(range(0, 11, 2))
    top.set_ylabel(texts.rating_axis)
    top.set_title(texts.title)
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="upper right")
    locator = AutoDateLocator()
    top.xaxis.set_major_locator(locator)
    top.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if points[-1].at - points[0].at < timedelta(days=1):
        # a day either side, so practices minutes apart are not drawn on a seconds scale
        middle = points[0].at + (points[-1].at - points[0].at) / 2
        top.set_xlim(middle - timedelta(days=1), middle + timedelta(days=1))
    bottom.bar([w for w, _ in weeks], [n for _, n in weeks], width=5, color="#7aa6c2", align="edge")
    bottom.set_ylabel(texts.week_axis)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    bottom.xaxis.set_major_locator(AutoDateLocator())
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(bottom.xaxis.get_major_locator()))
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
    texts = ChartTexts(
        title=turn.text("progress_chart_title"),
        rating_axis=turn.text("progress_axis_rating"),
        before=turn.text("progress_before"),
        after=turn.text("progress_after"),
        week_axis=turn.text("progress_axis_week"),
    )
    # templates, filled in once the entries are read (the same phrasing turn.text would pick)
    words = {
        key: turn.locale.message(key, run=turn.step)
        for key in (
            "progress_too_little",
            "progress_summary",
            "progress_summary_no_pairs",
            "history_date_short",
        )
    }
    data = {
        "user_id": turn.user.id,
        "rated": rated_answers(turn.engine.catalog, turn.locale.code),
        "texts": asdict(texts),
        "words": words,
    }
    turn.emit(Later(CHART, data))
    turn.reprompt()


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
    # practices that were done (finished), oldest first; unfinished ones are not counted
    entries = [e for e in reversed(stored) if e.status == "finished"]
    points = points_from(entries, data["rated"])
    if len(points) < MIN_RATED:
        return [Message(fill(words["progress_too_little"], {"count": len(entries)}))]
    pairs = [p for p in points if p.before is not None and p.after is not None]
    since = entries[0].started_at.strftime(words["history_date_short"])
    if pairs:
        summary = fill(
            words["progress_summary"],
            {
                "count": len(entries),
                "since": since,
                "before": _average([p.before for p in pairs if p.before is not None]),
                "after": _average([p.after for p in pairs if p.after is not None]),
            },
        )
    else:
        summary = fill(words["progress_summary_no_pairs"], {"count": len(entries), "since": since})
    png = draw_chart(points, practice_weeks(entries), ChartTexts(**data["texts"]))
    return [Image(png, CHART_FILE, caption=summary)]
