"""Due times written in another text form (by hand, by an older version) on SQLite: sent on
time, not skipped forever; anything unreadable logged once, not every tick."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.app import App
from bot.reminders import store
from tests.conftest import Clock
from tests.reminder_fakes import FakeSender, dispatcher, make_person, schedules
from tests.test_reminders_dispatcher import NINE_PM_BERLIN

LOGGER = "bot.reminders.dispatcher"


async def write_raw(app: App, user_id: int, value: str, **more: str) -> None:
    """Put `value` into the row as SQLite text, as a hand-written UPDATE would."""
    sets = ", ".join(["next_due_utc = :value", *(f"{k} = :{k}" for k in more)])
    async with app.db.session() as session:
        await session.execute(
            text(f"UPDATE reminder_schedules SET {sets} WHERE user_id = :uid"),
            {"value": value, "uid": user_id, **more},
        )
        await session.commit()
        stored = (
            await session.execute(
                text("SELECT next_due_utc FROM reminder_schedules WHERE user_id = :uid"),
                {"uid": user_id},
            )
        ).scalar_one()
    assert stored == value


def logged(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(1 for r in caplog.records if r.name == LOGGER and words in r.getMessage())


@pytest.mark.parametrize(
    "stored",
    [
        "2026-03-02T20:00:00Z",  # ISO with T and Z: after ' ' as text, so "not due" all day
        "2026-03-02 20:00:00+00:00",  # due as text, but the claim could never move it
        "2026-03-02 21:00:00+01:00",  # the same instant, with Berlin's offset
        "2026-03-02 20:00:00",  # SQLite's own datetime() form: no microseconds
    ],
)
async def test_a_due_time_in_another_form_is_sent_on_time(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture, stored: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    uid = await make_person(app, "1", now=clock.now)
    await write_raw(app, uid, stored)
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN - timedelta(seconds=1)
    assert await worker.tick() == 0
    clock.now = NINE_PM_BERLIN
    assert await worker.tick() == 1
    assert [s.external_id for s in sender.sent] == ["1"]
    [schedule] = await schedules(app, uid)
    assert store.as_utc(schedule.next_due_utc) == NINE_PM_BERLIN + timedelta(days=1)  # type: ignore[arg-type]
    for hours in (1, 2, 25):  # later ticks, past the hourly re-check and the next evening
        clock.now = NINE_PM_BERLIN + timedelta(hours=hours)
        await worker.tick()
    assert len(sender.sent) == 2
    assert logged(caplog, "stored in another text form") == 1


async def test_a_due_time_that_is_not_a_time_is_computed_again(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    uid = await make_person(app, "1", now=clock.now)
    await write_raw(app, uid, "tomorrow evening")
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN - timedelta(minutes=1)  # computed from now: 21:00 today
    assert await worker.tick() == 0
    for step in range(3):
        clock.now = NINE_PM_BERLIN + timedelta(minutes=step)
        await worker.tick()
    assert len(sender.sent) == 1
    assert logged(caplog, "is not a time; computed again") == 1


async def test_an_unrepairable_due_time_is_logged_once_and_blocks_no_one(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a time, and neither is the reminder's own local time: it cannot be sent, but it
    must not fail every tick for everyone else, nor fill the log."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    broken = await make_person(app, "broken", now=clock.now)
    await make_person(app, "fine", now=clock.now)
    await write_raw(app, broken, "2026-99-99 99:99", local_time="half past nine")
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    clock.now = NINE_PM_BERLIN
    for step in range(4):
        clock.now = NINE_PM_BERLIN + timedelta(minutes=40 * step)
        await worker.tick()
    assert [s.external_id for s in sender.sent] == ["fine"]
    assert logged(caplog, "cannot be read either") == 1
    assert not [r for r in caplog.records if "tick failed" in r.getMessage()]


async def test_well_formed_due_times_are_left_alone(app: App, clock: Clock) -> None:
    await make_person(app, "1", now=clock.now)
    async with app.db.session() as session:
        assert await store.odd_due_times(session) == []
        assert await store.repair_due_times(session, now=clock.now) == []
