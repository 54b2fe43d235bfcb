"""Reminders at the engine: what a fired reminder starts, a shared location, the zone
matching, and the whole promise — set in your own zone, it arrives at that local time,
before and after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.app import App, open_app
from bot.engine.events import Location, Message, Reminder
from bot.engine.outbox import decode, encode
from bot.reminders import store
from bot.reminders.parse import parse_days, parse_time
from bot.reminders.texts import ReminderTexts, validate
from bot.reminders.zones import (
    ZoneChoice,
    match_zone_name,
    zone_choices,
    zone_from_location,
    zone_from_text,
)
from storage import repo
from storage.models import Conversation
from tests.chat import Person
from tests.conftest import DIALOGS, Clock, make_settings
from tests.reminder_fakes import FakeSender, dispatcher, make_person


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Berlin", "Europe/Berlin"),
        ("  new   YORK ", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("Sao_Paulo", "America/Sao_Paulo"),
        ("São Paulo", "America/Sao_Paulo"),
        ("Kolkata", "Asia/Kolkata"),
        ("Mumbai", "Asia/Kolkata"),
        ("Tokyo, Japan", "Asia/Tokyo"),
        ("Germany", "Europe/Berlin"),
        ("UK", "Europe/London"),
        ("utc", "UTC"),
        ("UTC+2", "Etc/GMT-2"),
        ("GMT-5", "Etc/GMT+5"),
        ("+05:30", "Asia/Kolkata"),
        ("Kiev", "Europe/Kyiv"),
    ],
)
def test_zone_names(typed: str, zone: str) -> None:
    assert zone_from_text(typed, datetime(2026, 7, 1, 12, tzinfo=UTC)) == zone


@pytest.mark.parametrize(
    "typed", ["Narnia", "", "United States", "UTC+25", "9", "99:99", "x" * 200, "Berlin Berlin"]
)
def test_unknown_zones(typed: str) -> None:
    assert zone_from_text(typed, datetime(2026, 7, 1, 12, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("local", "now", "zone"),
    [
        ("14:00", datetime(2026, 7, 1, 12, tzinfo=UTC), "Europe/Berlin"),  # UTC+2 in summer
        ("13:00", datetime(2026, 1, 15, 12, tzinfo=UTC), "Europe/Berlin"),  # UTC+1 in winter
        ("5:30 pm", datetime(2026, 7, 1, 12, tzinfo=UTC), "Asia/Kolkata"),
        ("8am", datetime(2026, 7, 1, 12, tzinfo=UTC), "America/New_York"),
        ("it's 2am", datetime(2026, 7, 1, 12, tzinfo=UTC), "Pacific/Honolulu"),
        ("22:05", datetime(2026, 7, 1, 12, tzinfo=UTC), "Australia/Sydney"),  # rounds to 15 min
        ("12:00", datetime(2026, 7, 1, 12, tzinfo=UTC), "Europe/London"),  # BST is UTC+1
    ],
)
def test_zone_from_the_time_on_their_clock(local: str, now: datetime, zone: str) -> None:
    found = zone_from_text(local, now)
    if zone == "Europe/London":  # UTC+0 in July: London is on summer time, so not London
        assert found is not None
        assert found != zone
        return
    assert found == zone


def test_location_to_zone_offline() -> None:
    assert zone_from_location(52.52, 13.40) == "Europe/Berlin"
    assert zone_from_location(40.71, -74.0) == "America/New_York"
    assert zone_from_location(-33.87, 151.21) == "Australia/Sydney"
    assert zone_from_location(19.07, 72.88) == "Asia/Kolkata"
    assert zone_from_location(100.0, 0.0) is None


def test_time_and_days_parsing() -> None:
    assert [str(parse_time(t)) for t in ("21:00", "9pm", "9:30 pm", "21.30", "noon", "0")] == [
        "21:00:00",
        "21:00:00",
        "21:30:00",
        "21:30:00",
        "12:00:00",
        "00:00:00",
    ]
    assert [str(parse_time(t)) for t in ("around 9ish pm", "9pm-ish", "21:30ish")] == [
        "21:00:00",
        "21:00:00",
        "21:30:00",
    ]
    for bad in ("9ish", "9", "25:00", "9:75", "13pm", "0am", "24:00", "", "nine", "9:5"):
        assert parse_time(bad) is None, bad
    assert parse_days("Monday and Thursday") == 0b1001
    assert parse_days("fri-mon") == 0b1110001
    assert parse_days("every day") == 0b1111111
    assert parse_days("mon, blah") is None
    assert match_zone_name("Europe/Berlin") == "Europe/Berlin"


def test_reminder_texts_are_complete(tmp_path: Path) -> None:
    errors, texts = validate(DIALOGS)
    assert errors == []
    assert texts is not None
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "reminder_texts.yaml").write_text("reminder_texts:\n  zone_words: x\n")
    errors, _ = validate(tmp_path)
    assert "missing text for" in str(errors[0])
    assert isinstance(ReminderTexts.load(DIALOGS), ReminderTexts)


async def consented(app: App, name: str = "alice") -> Person:
    person = Person(app, name)
    await person.consent()
    return person


async def test_location_answers_the_zone_question(app: App) -> None:
    person = await consented(app)
    await person.send("/reminders")
    await person.press("My timezone")
    person.reply = await app.engine.handle(person.ref, Location(-33.87, 151.21))
    assert "Australia/Sydney — it's 20:00 there now" in person.text
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="alice")
        assert user.timezone == "Australia/Sydney"


async def test_location_in_the_sea_is_asked_again_gently(app: App) -> None:
    person = await consented(app)
    await person.send("/reminders")
    await person.press("My timezone")
    person.reply = await app.engine.handle(person.ref, Location(91.0, 0.0))
    assert "zone name like" in person.text


async def test_location_outside_settings_sets_the_zone_and_returns(app: App) -> None:
    person = await consented(app)
    person.reply = await app.engine.handle(person.ref, Location(52.52, 13.40))
    assert "Europe/Berlin — it's 10:00 there now" in person.text
    assert "isn't stored" in person.text


async def test_location_during_a_crisis_pause_only_asks_the_question_again(app: App) -> None:
    person = await consented(app)
    await person.send("i want to hurt my self")
    person.reply = await app.engine.handle(person.ref, Location(52.52, 13.40))
    assert "Are you safe right now?" in person.text
    assert "Europe/Berlin" not in person.text
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="alice")
        assert user.timezone == "Europe/Berlin"  # kept quietly


async def test_reminders_need_consent(app: App) -> None:
    person = Person(app, "bea")
    await person.send("/reminders")
    assert "okay to store" in person.text
    reply = await app.engine.handle(person.ref, Reminder("reflection"))
    assert reply == []


async def test_a_stale_conversation_gives_way_quietly(app: App, clock: Clock) -> None:
    person = await consented(app)
    await person.send("/reframe")
    await person.send("I never get anything right")
    clock.advance(hours=2)
    # The conversation row is stamped with the wall clock; make it two hours old.
    async with app.db.session() as session:
        await session.execute(
            update(Conversation).values(updated_at=clock.now - timedelta(hours=2))
        )
        await session.commit()
    reply = await app.engine.handle(person.ref, Reminder("reflection"))
    texts = [o.text for o in reply if isinstance(o, Message)]
    assert len(texts) == 1
    assert "today" in texts[0]
    await person.send("/reframe")  # the unfinished reframe is kept and offered
    assert "unfinished" in person.text


async def test_checkin_ping_opens_the_checkin_in_one_tap(app: App) -> None:
    person = await consented(app)
    reply = await app.engine.handle(person.ref, Reminder("checkin"))
    person.offer = next(o for o in reply if isinstance(o, Message) and o.options)
    assert person.labels == ["Let's check in", "I'm okay", "Not now"]
    await person.press("Let's check in")
    assert "How distressed do you feel right now" in person.text


async def test_checkin_ping_without_a_checkin_dialog_is_a_gentle_word(app: App) -> None:
    person = await consented(app)
    app.catalog.locales["en"].dialogs.pop("checkin")
    reply = await app.engine.handle(person.ref, Reminder("checkin"))
    person.offer = next(o for o in reply if isinstance(o, Message) and o.options)
    await person.press("Let's check in")
    assert "Thank you for taking a moment" in person.text


async def test_reflection_arrives_at_local_time_before_and_after_a_restart(
    tmp_path: Path, clock: Clock
) -> None:
    """The issue's "done when": set in their own zone, it arrives at 21:00 there."""
    settings = make_settings(tmp_path)

    @asynccontextmanager
    async def running() -> AsyncIterator[App]:
        async with open_app(settings, clock=clock) as app:
            yield app

    async with running() as app:
        person = Person(app, "4242", channel="telegram")
        await person.consent()
        await person.send("/reminders")
        await person.press("My timezone")
        await person.send("New York")
        await person.press("Evening reflection")
        await person.press("21:00")
        await person.press("Every day")
        assert "21:00, every day" in person.text
        await person.press("Done")
        sender = FakeSender(clock)
        worker = dispatcher(app, sender, clock)
        # 2026-03-02 21:00 in New York (EST, UTC-5) is 02:00 UTC on the 3rd.
        clock.now = datetime(2026, 3, 3, 1, 59, tzinfo=UTC)
        assert await worker.tick() == 0
        clock.now = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
        assert await worker.tick() == 1
        assert "today" in sender.sent[0].texts[0]

    async with running() as app:  # a restart: nothing in memory survives
        sender = FakeSender(clock)
        worker = dispatcher(app, sender, clock, owner="after-restart")
        clock.now = datetime(2026, 3, 4, 1, 59, tzinfo=UTC)
        assert await worker.tick() == 0
        clock.now = datetime(2026, 3, 4, 2, 0, 30, tzinfo=UTC)
        assert await worker.tick() == 1
        # After New York moves to summer time (8 March), still 21:00 there: 01:00 UTC.
        clock.now = datetime(2026, 3, 9, 0, 59, tzinfo=UTC)
        for _ in range(6):  # the evenings in between were missed by > 1 h: skipped
            await worker.tick()
        sent_before = len(sender.sent)
        clock.now = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
        assert await worker.tick() == 1
        assert len(sender.sent) == sent_before + 1


async def test_disable_and_reenable_for_adapters(app: App, clock: Clock) -> None:
    uid = await make_person(app, "55", now=clock.now)
    await store.disable_for_user(app.db, channel="telegram", external_id="55")
    async with app.db.session() as session:
        [schedule] = await store.list_schedules(session, user_id=uid)
        assert schedule.next_due_utc is None
    assert await store.reenable_for_user(app.db, channel="telegram", external_id="55") == 1
    assert await store.reenable_for_user(app.db, channel="telegram", external_id="55") == 0
    assert await store.reenable_for_user(app.db, channel="telegram", external_id="nobody") == 0


def test_fixed_offsets_read_the_way_people_write_them() -> None:
    from bot.reminders.actions import display_zone

    assert display_zone("Etc/GMT-2") == "UTC+2"
    assert display_zone("Etc/GMT+5") == "UTC-5"
    assert display_zone("Etc/UTC") == "UTC"
    assert display_zone("Europe/Berlin") == "Europe/Berlin"


SUMMER = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "zones"),
    [
        ("EST", ("America/New_York",)),  # the region, with its summer time: not UTC-5 all year
        ("edt", ("America/New_York",)),
        ("PDT", ("America/Los_Angeles",)),
        ("CET", ("Europe/Berlin",)),
        ("cest", ("Europe/Berlin",)),
        ("BST", ("Europe/London",)),
        ("AEST", ("Australia/Sydney", "Australia/Brisbane")),
        ("IST", ("Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem")),
        ("Eastern time", ("America/New_York",)),
    ],
)
def test_abbreviations_are_regions(typed: str, zones: tuple[str, ...]) -> None:
    found = zone_choices(typed, SUMMER)
    assert found.zones == zones
    assert found.why == ("one" if len(zones) == 1 else "abbreviation")


def test_est_follows_summer_time() -> None:
    (zone,) = zone_choices("EST", SUMMER).zones
    assert SUMMER.astimezone(ZoneInfo(zone)).utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("typed", "first", "count"),
    [
        ("USA", "America/New_York", 8),
        ("united states", "America/New_York", 8),
        ("Australia", "Australia/Sydney", 7),
        ("Canada", "America/Toronto", 10),
        ("Portugal", "Europe/Lisbon", 2),  # also an old zone name: the country wins
    ],
)
def test_countries_with_several_clocks_offer_each(typed: str, first: str, count: int) -> None:
    found = zone_choices(typed, SUMMER)
    assert found.why == "country"
    assert found.zones[0] == first
    assert len(found.zones) == count
    offsets = {SUMMER.astimezone(ZoneInfo(z)).utcoffset() for z in found.zones}
    assert len(offsets) >= 2
    assert zone_choices("Germany", SUMMER) == ZoneChoice("one", ("Europe/Berlin",))


def test_the_time_on_their_clock_offers_the_regions_showing_it() -> None:
    found = zone_choices("it's 9:15pm", datetime(2026, 12, 1, 2, 15, tzinfo=UTC))
    assert found.why == "time"
    assert found.zones[:2] == ("America/New_York", "America/Toronto")
    now = datetime(2026, 12, 1, 2, 15, tzinfo=UTC)
    assert all(now.astimezone(ZoneInfo(z)).hour == 21 for z in found.zones)
    # only one big region on that offset: kept at once
    assert zone_choices("it's 7:45am", now) == ZoneChoice("one", ("Asia/Kolkata",))


def test_a_location_button_survives_the_outbox() -> None:
    message = Message("Where are you?", location="📍 Share my location")
    assert decode(encode([message])) == [message]
    assert decode(encode([Message("plain")])) == [Message("plain")]
