"""/progress: a PNG chart from the person's stored ratings, or a kind note with too little.

The step only reads the numbers and answers with a `Later`; the chart is drawn by its
producer afterwards (`engine.produce`, as the Telegram and terminal adapters do)."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import progress
from bot.app import App, progress_feature
from bot.console import Console
from bot.engine.events import Image, Later, Message, Output
from bot.engine.outbox import decode, encode
from bot.offload import Offload
from storage import repo
from storage.source import DatabaseSource
from tests.chat import Person
from tests.conftest import Clock

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Not a time being measured: only how long a test may hang before it is called stuck.
STUCK = 60


def source(app: App) -> DatabaseSource:
    """The database as the bot's worker process opens it."""
    assert app.settings.encryption_key
    return DatabaseSource(app.settings.resolved_database_url(), app.settings.encryption_key)


async def made(person: Person) -> list[Output]:
    """The person's last reply as an adapter shows it: every `Later` made."""
    return await person.app.engine.produce(person.ref, person.reply)


async def charts(person: Person) -> list[Image]:
    return [o for o in await made(person) if isinstance(o, Image)]


def laters(outputs: list[Output]) -> list[Later]:
    return [o for o in outputs if isinstance(o, Later)]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_nothing_to_draw_gets_a_kind_note(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/progress")
    shown = await made(alice)
    assert isinstance(shown[0], Message)
    assert "nothing to draw yet" in shown[0].text
    assert not [o for o in shown if isinstance(o, Image | Later)]


async def test_a_first_day_gets_a_chart_of_its_own(app: App) -> None:
    """One practice is a start: a chart with that day's one column, and a caption that says
    so (not "practised 1 times")."""
    alice = Person(app)
    await alice.consent()
    await alice.reframe("I am not good enough", before=7, after=4)
    await alice.send("/progress")
    [image] = await charts(alice)
    assert png_size(image.data) == (800, 700)
    assert image.caption.startswith("Your first practice, on 2 Mar 2026")
    assert "1 times" not in image.caption
    assert "from 7 before to 4 after" in image.caption


async def practised(app: App, clock: Clock) -> Person:
    """Alice with six finished reframes over four weeks and one stopped halfway."""
    alice = Person(app)
    await alice.consent()
    for week, (before, after) in enumerate([(8, 5), (7, 4), (9, 6), (6, 2)]):
        for day in range(week % 2 + 1):
            thought = f"I mess things up, week {week} day {day}"
            await alice.reframe(thought, before=before, after=after)
            clock.advance(days=1)
        clock.advance(days=6)
    await alice.send("/stop")  # a stopped one is not counted as a practice
    await alice.send("/reframe")
    await alice.send("I forget everything")
    await alice.send("tired")
    await alice.send("5")
    await alice.send("stop")
    return alice


async def test_chart_from_stored_reframes(app: App, clock: Clock) -> None:
    alice = await practised(app, clock)
    await alice.send("/progress")
    [image] = await charts(alice)
    assert isinstance(image, Image)
    assert image.filename.endswith(".png")
    assert 5_000 < len(image.data) < 1_000_000, len(image.data)
    assert png_size(image.data) == (800, 700)
    assert "You've practised 6 times since 2 Mar 2026" in image.caption
    assert "from 7.2 before to 3.8 after" in image.caption  # means over the six finished


async def test_progress_returns_to_an_open_question(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.reframe("I am lazy", before=6, after=3)
    await alice.reframe("I am lazy again", before=7, after=2)
    await alice.send("/reframe")
    await alice.send("/progress")
    assert laters(alice.reply)
    assert "What" in alice.texts[-1]  # the thought question, asked again
    shown = await made(alice)
    assert isinstance(shown[0], Image)  # the chart comes where the step put it: first
    assert "What" in [o.text for o in shown if isinstance(o, Message)][-1]


def test_checkins_plot_distress_before_and_after_not_their_band(app: App) -> None:
    from datetime import UTC, datetime

    from bot.progress import rating_points
    from storage.models import Entry

    entry = Entry(
        user_id=1,
        kind="checkin",
        dialog="checkin",
        status="finished",
        answers_enc="",
        scores={"distress": 8, "distress_after": 5},
        started_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    (point,) = rating_points([entry], app.catalog, "en")
    assert (point.before, point.after) == (8, 5)


async def test_the_step_reads_nothing_and_holds_no_picture(app: App, clock: Clock) -> None:
    """What the step returns is plain JSON (it waits in the outbox until sent): no bytes, and
    nothing the person wrote or rated (the worker reads that)."""
    alice = await practised(app, clock)
    reply = await alice.send("/progress")
    assert not any(isinstance(o, Image) for o in reply)
    [later] = laters(reply)
    assert later.kind == progress.CHART
    assert json.loads(json.dumps(later.data)) == later.data
    assert decode(encode(reply)) == reply  # survives the outbox as it is
    assert later.data["rated"]["reframe"] == [["rating_before", "rating_after"]]
    assert "checkin" in later.data["rated"]  # distress before and after, not the band
    assert "mess things up" not in json.dumps(later.data)


async def test_the_producer_draws_what_the_step_used_to(app: App, clock: Clock) -> None:
    """Same bytes as drawing straight from the stored entries, as /progress did in its step."""
    alice = await practised(app, clock)
    await alice.send("/progress")
    [image] = await charts(alice)
    [later] = laters(alice.reply)
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="alice")
        assert user.id is not None
        stored = await repo.list_entries(session, user_id=user.id)
    entries = [e for e in reversed(stored) if e.status == "finished"]
    texts = progress.ChartTexts(**later.data["texts"])
    points = progress.rating_points(entries, app.catalog, "en")  # UTC: alice chose no zone
    before = progress.draw_chart(points, progress.practice_weeks(entries), texts)
    assert image.data == before
    assert image.filename == "kindbot-progress.png"


async def test_a_chart_that_cannot_be_made_gets_a_gentle_word(app: App) -> None:
    broken = Later(progress.CHART, {"user_id": "not an id"})
    [said] = await app.engine.produce(Person(app).ref, [broken])
    assert isinstance(said, Message)
    assert said.text == app.catalog.locale("en").message("something_went_wrong")


async def test_nothing_is_drawn_for_someone_forgotten_meanwhile(app: App, clock: Clock) -> None:
    alice = await practised(app, clock)
    reply = await alice.send("/progress")
    await alice.send("/forget")
    await alice.press("Yes, delete everything")
    shown = await app.engine.produce(alice.ref, reply)
    assert [o for o in shown if not isinstance(o, Message)] == []
    assert len(shown) == len(reply) - 1  # the rest of the reply, and no apology


async def test_others_are_answered_while_a_chart_is_drawn(
    app: App, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob's whole step runs while Alice's chart is held half-drawn (in a thread here: the
    bot's worker is a process, which a test cannot hold open as easily)."""
    alice = await practised(app, clock)
    bob = Person(app, "bob")
    await bob.consent()
    drawing, release = threading.Event(), threading.Event()
    draw = progress.draw_chart

    def held(
        points: list[progress.Point],
        weeks: list[tuple[datetime, int]],
        texts: progress.ChartTexts,
    ) -> bytes:
        drawing.set()
        release.wait(STUCK)
        return draw(points, weeks, texts)

    monkeypatch.setattr(progress, "draw_chart", held)
    with ThreadPoolExecutor(1) as thread:
        app.engine.producers.update(progress_feature(Offload(source(app), thread)).producers)
        reply = await alice.send("/progress")
        chart = asyncio.create_task(app.engine.produce(alice.ref, reply))
        try:
            assert await asyncio.to_thread(drawing.wait, STUCK)
            helped = asyncio.create_task(bob.send("/help"))
            done, _ = await asyncio.wait(
                {helped, chart}, timeout=STUCK, return_when="FIRST_COMPLETED"
            )
            assert done == {helped}
            assert "automated program" in bob.text
        finally:
            release.set()
        assert isinstance((await chart)[0], Image)


async def test_terminal_saves_the_chart(app: App, clock: Clock, tmp_path: Path) -> None:
    await practised(app, clock)
    out = io.StringIO()
    console = Console(app.engine, "alice", out, interactive=False, files=tmp_path / "files")
    await console.send("/progress")
    saved = tmp_path / "files" / "kindbot-progress.png"
    assert png_size(saved.read_bytes()) == (800, 700)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert f"[{saved}]" in out.getvalue()
    assert "You've practised 6 times" in out.getvalue()


def texts() -> progress.ChartTexts:
    return progress.ChartTexts(
        "How strong", "Strength", "Before", "After", "Per week",
        titles={"reframe": "Reframes", "checkin": "Check-ins"},
    )  # fmt: skip


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_one_point_per_practice_on_a_day_axis_with_plain_dates() -> None:
    """Three reframes on Nov 10 sit side by side in that day's column, in the order done;
    the axis names days ("Nov 10"), never hours; check-ins get a panel of their own."""
    points = [
        progress.Point(at(10, 8), 8, 5, "reframe"),
        progress.Point(at(10, 12), 7, 4, "reframe"),
        progress.Point(at(10, 20), 9, 6, "reframe"),
        progress.Point(at(12), 6, 3, "reframe"),
        progress.Point(at(11), 8, 6, "checkin"),
    ]
    weeks = [(datetime(2026, 11, 9, tzinfo=UTC), 5)]
    plan = progress.layout(points, weeks, texts())
    assert [p.dialog for p in plan.panels] == ["reframe", "checkin"]
    reframes, checkins = plan.panels
    assert reframes.title == "Reframes" and checkins.title == "Check-ins"
    assert reframes.befores == [8, 7, 9, 6] and checkins.befores == [8]
    first_day = reframes.xs[:3]
    assert first_day == sorted(first_day) and len(set(first_day)) == 3  # apart, in order
    assert all(-0.5 < x < 0.5 for x in first_day)  # all inside Nov 10's column
    assert reframes.xs[3] == 2 and checkins.xs == [1]  # alone on its day: in the middle
    assert plan.day_ticks == [(0, "Nov 10"), (1, "Nov 11"), (2, "Nov 12")]
    assert plan.weeks == [("Nov 9 – Nov 15", 5)]


def test_a_first_day_is_one_centred_column() -> None:
    plan = progress.layout([progress.Point(at(10), 7, 4)], [(at(9), 1)], texts())
    assert plan.day_ticks == [(0, "Nov 10")]
    assert plan.panels[0].xs == [0]
    low, high = plan.x_range
    assert low == -high  # the day in the middle, not at an edge


def test_a_long_history_names_at_most_eight_days() -> None:
    points = [progress.Point(at(1) + timedelta(days=d), 5, 3) for d in range(0, 90, 3)]
    plan = progress.layout(points, [], texts())
    assert 2 <= len(plan.day_ticks) <= progress.DAY_TICKS
    assert plan.day_ticks[0] == (0, "Nov 1")
    assert all(label[:3] in ("Nov", "Dec", "Jan") for _, label in plan.day_ticks)


def test_days_and_weeks_are_on_the_persons_clock() -> None:
    """Sunday 23:30 in UTC is Monday morning in Tokyo: a new day and a new week there."""
    from storage.models import Entry

    tokyo = ZoneInfo("Asia/Tokyo")
    sunday_night = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)
    entry = Entry(
        user_id=1, kind="reframe", dialog="reframe", status="finished", answers_enc="",
        scores={"rating_before": 6, "rating_after": 3}, started_at=sunday_night,
    )  # fmt: skip
    (point,) = progress.points_from(
        [entry], {"reframe": [["rating_before", "rating_after"]]}, tokyo
    )
    assert point.at.date() == date(2026, 11, 16)
    [(monday, count)] = progress.practice_weeks([entry], tokyo)
    assert monday.date() == date(2026, 11, 16) and count == 1
    [(utc_monday, _)] = progress.practice_weeks([entry])
    assert utc_monday.date() == date(2026, 11, 9)
