"""`/progress`: a chart of ratings before and after each practice, and practice per week.

Which answers are "before" and "after" comes from each dialog's `derived` difference (the
reframe's `change: {difference: [rating_before, rating_after]}`), so check-ins and other
recorded dialogs join in without code here. matplotlib is imported only when a chart is
drawn (the object API with the Agg canvas, no pyplot global state), in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.engine.catalog import Catalog
from bot.engine.events import Image
from bot.engine.runner import Turn
from storage import repo
from storage.models import Entry

MIN_RATED = 2  # fewer rated practices than this get a kind note instead of a chart


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


def rating_points(entries: list[Entry], catalog: Catalog, locale: str) -> list[Point]:
    """One point per entry that has a before (and maybe an after) rating, oldest first."""
    points = []
    for entry in entries:
        machine = catalog.dialog(entry.dialog, locale)
        if machine is None:
            continue
        for derived in machine.spec.derived.values():
            if any(name in machine.spec.params for name in derived.difference):
                continue  # a comparison with a setting (a check-in's band), not before/after
            before, after = (entry.scores.get(n) for n in derived.difference)
            if before is not None or after is not None:
                points.append(Point(_utc(entry.started_at), before, after))
                break
    return sorted(points, key=lambda p: p.at)


def practice_weeks(entries: list[Entry]) -> list[tuple[datetime, int]]:
    """(Monday of the week, practices started that week), every week from first to last."""
    if not entries:
        return []
    counts: Counter[datetime] = Counter()
    for entry in entries:
        day = _utc(entry.started_at)
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


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


async def show_progress(turn: Turn, args: str) -> None:
    """The chart and a one-line summary, or a kind note when there is too little to draw."""
    assert turn.user.id is not None
    stored = await repo.list_entries(turn.session, user_id=turn.user.id)
    # practices that were done (finished), oldest first; unfinished ones are not counted
    entries = [e for e in reversed(stored) if e.status == "finished"]
    points = rating_points(entries, turn.engine.catalog, turn.locale.code)
    if len(points) < MIN_RATED:
        turn.say("progress_too_little", count=len(entries))
        turn.reprompt()
        return
    pairs = [p for p in points if p.before is not None and p.after is not None]
    since = entries[0].started_at.strftime(turn.text("history_date_short"))
    if pairs:
        summary = turn.text(
            "progress_summary",
            count=len(entries),
            since=since,
            before=_average([p.before for p in pairs if p.before is not None]),
            after=_average([p.after for p in pairs if p.after is not None]),
        )
    else:
        summary = turn.text("progress_summary_no_pairs", count=len(entries), since=since)
    texts = ChartTexts(
        title=turn.text("progress_chart_title"),
        rating_axis=turn.text("progress_axis_rating"),
        before=turn.text("progress_before"),
        after=turn.text("progress_after"),
        week_axis=turn.text("progress_axis_week"),
    )
    png = await asyncio.to_thread(draw_chart, points, practice_weeks(entries), texts)
    turn.emit(Image(png, "kindbot-progress.png", caption=summary))
    turn.reprompt()
