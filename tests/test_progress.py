"""/progress: a PNG chart from the person's stored ratings, or a kind note with too little."""

from __future__ import annotations

import struct

from bot.app import App
from bot.engine.events import Image
from tests.chat import Person
from tests.conftest import Clock

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_too_little_data_gets_a_kind_note(app: App) -> None:
    alice = Person(app)
    await alice.consent()
    await alice.send("/progress")
    assert "isn't enough here to draw a chart yet" in alice.text
    assert not alice.files
    await alice.reframe("I am not good enough")
    await alice.send("/progress")
    assert not alice.files


async def test_chart_from_stored_reframes(app: App, clock: Clock) -> None:
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
    await alice.send("/progress")
    [image] = alice.files
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
    assert alice.files
    assert "What" in alice.texts[-1]  # the thought question, asked again


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
