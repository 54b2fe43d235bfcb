"""Reminders meet Telegram: a shared location sets the zone; blocking pauses reminders."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from bot.app import App
from bot.reminders.store import set_schedule
from bot.testing.botapi import Call
from bot.testing.harness import Harness, harness
from storage.models import ReminderSchedule, User, utcnow
from tests.telegram.helpers import find_user

MIA = 5151


async def consent(h: Harness) -> None:
    await h.say(MIA, "/start")
    await h.press(MIA, "Yes, that's okay")
    await h.press(MIA, "Skip")
    await h.press(MIA, "Nothing right now")


async def test_a_shared_location_sets_the_timezone_and_is_not_stored(app: App) -> None:
    async with harness(app) as h:
        await consent(h)
        replies = await h.process(h.updates.location(MIA))  # Berlin
        assert any("Europe/Berlin" in c.text for c in replies)
        user = await find_user(app, MIA)
        assert user is not None
        assert user.timezone == "Europe/Berlin"
        for column in User.__table__.columns:  # type: ignore[attr-defined]
            assert "52.5" not in str(getattr(user, column.name))


async def test_blocking_pauses_reminders_and_start_resumes_them(app: App) -> None:
    async with harness(app) as h:
        await consent(h)
        user = await find_user(app, MIA)
        assert user is not None
        assert user.id is not None
        async with app.db.session() as session:
            await set_schedule(
                session,
                user_id=user.id,
                kind="reflection",
                local_time="21:00",
                timezone="Europe/Berlin",
                now=utcnow(),
            )
            await session.commit()

        async def next_due() -> object:
            async with app.db.session() as session:
                query = select(ReminderSchedule.next_due_utc).where(
                    col(ReminderSchedule.user_id) == user.id
                )
                return (await session.execute(query)).scalar_one()

        assert await next_due() is not None
        await h.process(h.updates.membership(MIA, "member", "kicked"))
        assert await next_due() is None
        await h.say(MIA, "/start")
        assert await next_due() is not None


def markup_of(call: Call) -> dict[str, Any]:
    markup = call.params.get("reply_markup") or {}
    return json.loads(markup) if isinstance(markup, str) else dict(markup)


async def test_the_zone_question_has_a_share_location_button(app: App) -> None:
    """Telegram's own location button under "Where are you?" (typing still works); it goes
    away with the next message without buttons, whichever way the zone was given."""
    async with harness(app) as h:
        await consent(h)
        await h.say(MIA, "/reminders")
        await h.press(MIA, "My timezone")
        [asked] = [c for c in h.api.sent("sendMessage", MIA) if "Where are you?" in c.text]
        assert markup_of(asked) == {
            "keyboard": [[{"text": "📍 Share my location", "request_location": True}]],
            "one_time_keyboard": True,
            "resize_keyboard": True,
        }
        replies = await h.process(h.updates.location(MIA))  # Berlin
        thanked = next(c for c in replies if "Europe/Berlin" in c.text)
        assert markup_of(thanked) == {"remove_keyboard": True}
        # typed instead: a place not found asks again with the button, a city found takes it off
        await h.press(MIA, "My timezone")
        replies = await h.say(MIA, "Narnia")
        [again] = [c for c in replies if c.method == "sendMessage"]
        assert "timezone" in again.text and "keyboard" in markup_of(again)
        replies = await h.say(MIA, "Lisbon")
        thanked = next(c for c in replies if "Europe/Lisbon" in c.text)
        assert markup_of(thanked) == {"remove_keyboard": True}
        later = await h.say(MIA, "/help")
        assert all("remove_keyboard" not in markup_of(c) for c in later)
