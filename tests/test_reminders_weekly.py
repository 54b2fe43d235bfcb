"""The weekly look back on a real database: what a week with entries says, what an empty
week says, whose entries it reads (only the person's own, only the last seven days), the
quote only with permission, and its arrival through the dispatcher at the chosen time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import App
from bot.engine.events import Message, Reminder
from bot.reminders import store
from bot.reminders.schedule import days_from_names
from storage import repo
from tests.chat import Person
from tests.conftest import Clock
from tests.reminder_fakes import FakeSender, dispatcher, make_person


async def opt_in(app: App, name: str, *, quote: bool, now: datetime) -> None:
    """Turn the weekly look back on for a console person, as the settings dialog does."""
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id=name)
        assert user.id is not None
        await store.set_schedule(
            session,
            user_id=user.id,
            kind=store.WEEKLY,
            local_time="18:00",
            days=days_from_names(["sun"]),
            timezone="UTC",
            now=now,
            quote=quote,
        )
        await session.commit()


async def look_back(app: App, person: Person) -> str:
    reply = await app.engine.handle(person.ref, Reminder(store.WEEKLY))
    texts = [o.text for o in reply if isinstance(o, Message)]
    assert len(texts) == 1, texts
    return texts[0]


async def test_a_week_with_entries(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = Person(app, "alice"), Person(app, "bob")
    await alice.consent()
    await bob.consent()
    # Monday 2 March: a reframe that will be more than a week old by the look back.
    await alice.reframe("I ruin everything", kind="OLD WORDS from last week", before=9, after=9)
    clock.advance(days=4)  # Friday 6 March
    await alice.reframe("I am a failure", before=8, after=4, kind="I am learning, and that's ok.")
    clock.advance(hours=2)
    await alice.reframe("Nobody likes me", before=6, after=2, kind="Rest is allowed for me too.")
    await bob.reframe("I am so lazy", before=7, after=5, kind="Bob, be gentle with Bob.")
    clock.advance(days=3, hours=1)  # Monday 9 March, 12:00 UTC
    await opt_in(app, "alice", quote=True, now=clock.now)

    text = await look_back(app, alice)
    assert "2 Mar – 9 Mar" in text
    assert "• 2 reframes — your ratings on average: 7 before, 3 after" in text
    assert "“Rest is allowed for me too.”" in text  # the newest kind sentence of the week
    assert "learning" not in text  # one quote, not all of them
    assert "OLD WORDS" not in text and "9 before" not in text  # older than seven days
    assert "Bob" not in text  # another person's entries never appear
    assert "check-in" not in text and "journal" not in text  # kinds not practised: no line
    assert "streak" not in text.lower()

    # Without permission to quote: the numbers only.
    await opt_in(app, "alice", quote=False, now=clock.now)
    text = await look_back(app, alice)
    assert "• 2 reframes" in text
    assert "Rest is allowed" not in text and "“" not in text

    # Bob's look back holds his one reframe, in the singular, and not Alice's.
    await opt_in(app, "bob", quote=True, now=clock.now)
    text = await look_back(app, bob)
    assert "• 1 reframe — your ratings on average: 7 before, 5 after" in text
    assert "Bob, be gentle with Bob." in text
    assert "Rest is allowed" not in text and "2 reframes" not in text

    # What they wrote is sent to them, never logged.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Rest is allowed" not in logged and "gentle with Bob" not in logged


async def test_an_empty_week_gets_one_gentle_line(app: App, clock: Clock) -> None:
    carol = Person(app, "carol")
    await carol.consent()
    await carol.reframe("I always mess up", kind="Long ago words")
    clock.advance(days=8)
    await opt_in(app, "carol", quote=True, now=clock.now)
    text = await look_back(app, carol)
    assert "that's okay" in text or "perfectly fine" in text
    assert "I'm here" in text
    assert "reframe" not in text and "Long ago" not in text and "•" not in text


async def test_no_look_back_without_consent(app: App) -> None:
    stranger = Person(app, "dora")
    await stranger.send("/reminders")
    assert await app.engine.handle(stranger.ref, Reminder(store.WEEKLY)) == []


async def test_not_on_top_of_a_conversation_in_progress(app: App, clock: Clock) -> None:
    erin = Person(app, "erin")
    await erin.consent()
    await erin.send("/reframe")
    await erin.send("I can't do anything right")
    # (The conversation row is stamped with the wall clock, so it counts as just now.)
    await opt_in(app, "erin", quote=False, now=clock.now)
    assert await app.engine.handle(erin.ref, Reminder(store.WEEKLY)) == []
    reply = await erin.send("sad")  # the reframe carries on where it was: the rating next
    assert any(isinstance(o, Message) and o.scale for o in reply)


async def test_arrives_through_the_dispatcher_on_the_chosen_day(app: App, clock: Clock) -> None:
    # Clock: Monday 2 March 2026, 09:00 UTC. Sunday 18:00 in Berlin is 17:00 UTC on 8 March.
    await make_person(
        app,
        "77",
        reminders=[(store.WEEKLY, 0, "18:00")],
        days=days_from_names(["sun"]),
        now=clock.now,
    )
    sender = FakeSender(clock)
    worker = dispatcher(app, sender, clock)
    sunday = datetime(2026, 3, 8, 17, tzinfo=UTC)
    clock.now = sunday - timedelta(seconds=1)
    assert await worker.tick() == 0
    clock.now = sunday
    assert await worker.tick() == 1
    [sent] = sender.to("77")
    assert any("A quiet week" in t or "Nothing here this week" in t for t in sent.texts)
    clock.now = sunday + timedelta(days=6, hours=23)
    assert await worker.tick() == 0  # once a week, not daily


async def test_forget_removes_the_weekly_schedule(app: App, clock: Clock) -> None:
    fay = Person(app, "fay")
    await fay.consent()
    await opt_in(app, "fay", quote=True, now=clock.now)
    async with app.db.session() as session:
        user, _ = await repo.get_or_create_user(session, channel="console", external_id="fay")
        uid = user.id
        assert uid is not None
        assert [s.kind for s in await store.list_schedules(session, user_id=uid)] == ["weekly"]
    await fay.send("/forget")
    await fay.press("Yes, delete everything")
    async with app.db.session() as session:
        assert await store.list_schedules(session, user_id=uid) == []
