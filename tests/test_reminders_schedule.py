"""Next-occurrence computation across daylight-saving changes, in several zones."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reminders import store
from bot.reminders.schedule import (
    EVERY_DAY,
    WEEKDAYS,
    days_from_names,
    exists,
    next_occurrence,
    zone,
)
from storage.models import ReminderSchedule

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Europe/London",
    "UTC",
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone_name", "after", "at", "expected"),
    [
        # 21:00 stays 21:00 local across the spring change (Berlin: 29 March 2026).
        ("Europe/Berlin", utc(2026, 3, 28, 12), time(21), utc(2026, 3, 28, 20)),
        ("Europe/Berlin", utc(2026, 3, 28, 20), time(21), utc(2026, 3, 29, 19)),
        # ... and across the autumn change (25 October 2026).
        ("Europe/Berlin", utc(2026, 10, 24, 12), time(21), utc(2026, 10, 24, 19)),
        ("Europe/Berlin", utc(2026, 10, 24, 20), time(21), utc(2026, 10, 25, 20)),
        # 02:30 does not exist on 29 March in Berlin: sent at the next valid minute, 03:00.
        ("Europe/Berlin", utc(2026, 3, 28, 12), time(2, 30), utc(2026, 3, 29, 1)),
        # 02:30 happens twice on 25 October: sent once, at the first (CEST, UTC+2).
        ("Europe/Berlin", utc(2026, 10, 24, 12), time(2, 30), utc(2026, 10, 25, 0, 30)),
        ("Europe/Berlin", utc(2026, 10, 25, 0, 30), time(2, 30), utc(2026, 10, 26, 1, 30)),
        # New York: 8 March and 1 November 2026.
        ("America/New_York", utc(2026, 3, 7, 12), time(21), utc(2026, 3, 8, 2)),
        ("America/New_York", utc(2026, 3, 8, 2), time(21), utc(2026, 3, 9, 1)),
        ("America/New_York", utc(2026, 3, 7, 12), time(2, 15), utc(2026, 3, 8, 7)),
        ("America/New_York", utc(2026, 10, 31, 12), time(1, 30), utc(2026, 11, 1, 5, 30)),
        ("America/New_York", utc(2026, 11, 1, 5, 30), time(1, 30), utc(2026, 11, 2, 6, 30)),
        # Sydney: DST ends 5 April 2026 (03:00 → 02:00), starts 4 October 2026 (02:00 → 03:00).
        ("Australia/Sydney", utc(2026, 4, 4, 0), time(2, 30), utc(2026, 4, 4, 15, 30)),
        ("Australia/Sydney", utc(2026, 4, 4, 15, 30), time(2, 30), utc(2026, 4, 5, 16, 30)),
        ("Australia/Sydney", utc(2026, 10, 3, 0), time(2, 30), utc(2026, 10, 3, 16)),
        ("Australia/Sydney", utc(2026, 10, 3, 16), time(21), utc(2026, 10, 4, 10)),
        # Kolkata has no DST: always UTC+5:30.
        ("Asia/Kolkata", utc(2026, 3, 29, 0), time(21), utc(2026, 3, 29, 15, 30)),
        ("Asia/Kolkata", utc(2026, 10, 25, 0), time(21), utc(2026, 10, 25, 15, 30)),
        # São Paulo had DST until 2019, changing at midnight: 00:30 did not exist on
        # 4 November 2018 and is sent at 01:00 (UTC-2).
        ("America/Sao_Paulo", utc(2018, 11, 3, 12), time(0, 30), utc(2018, 11, 4, 3)),
        ("America/Sao_Paulo", utc(2026, 6, 1, 12), time(21), utc(2026, 6, 2, 0)),
        # Lord Howe moves by 30 minutes (4 October 2026, 02:00 → 02:30).
        ("Australia/Lord_Howe", utc(2026, 10, 3, 0), time(2, 10), utc(2026, 10, 3, 15, 30)),
        # Samoa skipped 30 December 2011 entirely: that day's 21:00 falls in the gap and
        # goes at the next valid minute (00:00 on the 31st), then the 31st's own 21:00.
        ("Pacific/Apia", utc(2011, 12, 29, 12), time(21), utc(2011, 12, 30, 7)),
        ("Pacific/Apia", utc(2011, 12, 30, 7), time(21), utc(2011, 12, 30, 10)),
        ("Pacific/Apia", utc(2011, 12, 30, 10), time(21), utc(2011, 12, 31, 7)),
    ],
)
def test_known_transitions(zone_name: str, after: datetime, at: time, expected: datetime) -> None:
    assert next_occurrence(after, at, zone(zone_name)) == expected


def test_weekdays_and_pause() -> None:
    berlin = zone("Europe/Berlin")
    friday_evening = utc(2026, 3, 6, 21)  # Friday 22:00 in Berlin
    found = next_occurrence(friday_evening, time(9), berlin, days=WEEKDAYS)
    assert found == utc(2026, 3, 9, 8)  # Monday 09:00
    assert next_occurrence(friday_evening, time(9), berlin, days=0) is None
    mon_wed = days_from_names(["mon", "wed"])
    assert next_occurrence(utc(2026, 3, 9, 9), time(9), berlin, days=mon_wed) == utc(2026, 3, 11, 8)
    paused = next_occurrence(utc(2026, 3, 2, 9), time(21), berlin, paused_until=utc(2026, 3, 9, 9))
    assert paused == utc(2026, 3, 9, 20)
    # A pause ending exactly at an occurrence does not swallow it.
    assert next_occurrence(
        utc(2026, 3, 2, 9), time(21), berlin, paused_until=utc(2026, 3, 4, 20)
    ) == utc(2026, 3, 4, 20)


instants = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
times = st.times().map(lambda t: t.replace(second=0, microsecond=0))
masks = st.integers(min_value=1, max_value=EVERY_DAY)


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES), after=instants, at=times, days=masks)
def test_next_occurrence_properties(zone_name: str, after: datetime, at: time, days: int) -> None:
    tz = zone(zone_name)
    found = next_occurrence(after, at, tz, days=days)
    assert found is not None
    assert found > after
    assert found - after <= timedelta(days=8)
    local = found.astimezone(tz)
    wanted = datetime.combine(local.date(), at)
    if exists(wanted, tz):
        # The wall-clock time is kept, and a repeated time is taken at its first instant.
        assert local.replace(tzinfo=None) == wanted
        assert found == wanted.replace(tzinfo=tz, fold=0).astimezone(UTC)
        assert days >> local.weekday() & 1
    else:  # pragma: no cover - only on transition days
        # In a gap: the first minute after it, on the same local day (or the one after).
        assert local.replace(tzinfo=None) > wanted
        assert exists(local.replace(tzinfo=None), tz)
        before = (found - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
        assert not exists(before, tz) or before < wanted
    # Nothing is skipped: asking again from just before it finds the same instant, and
    # from the instant itself finds a later one (one occurrence per local day at most).
    assert next_occurrence(found - timedelta(microseconds=1), at, tz, days=days) == found
    following = next_occurrence(found, at, tz, days=days)
    assert following is not None
    assert following.astimezone(tz).date() > local.date() or following - found >= timedelta(
        hours=22
    )


@settings(max_examples=100, deadline=None)
@given(zone_name=st.sampled_from(ZONES), start=instants, at=times)
def test_a_daily_reminder_fires_once_per_local_day(
    zone_name: str, start: datetime, at: time
) -> None:
    """Walking 40 occurrences: each on its own local date, none missing."""
    tz = zone(zone_name)
    current = start
    seen: list[date] = []
    for _ in range(40):
        found = next_occurrence(current, at, tz)
        assert found is not None
        seen.append(found.astimezone(tz).date())
        current = found
    gaps = {(b - a).days for a, b in itertools.pairwise(seen)}
    # One per day; a skipped local date (Samoa 2011) would show as 2, a double as 0.
    assert gaps <= {1}


def _weekly(day: str, at: str, zone_name: str, **more: object) -> ReminderSchedule:
    """A weekly look back as the settings store it: one weekday bit, a local time."""
    return ReminderSchedule(
        user_id=1,
        kind=store.WEEKLY,
        local_time=at,
        days=days_from_names([day]),
        timezone=zone_name,
        updated_at=utc(2026, 1, 1),
        **more,
    )


def test_weekly_look_back_due_times_across_daylight_saving() -> None:
    """Once a week, on the chosen day at the chosen local time, DST or not."""
    # Sunday 18:00 in Berlin: 22 March is CET (17:00 UTC), 29 March already CEST (16:00
    # UTC) — 6 days 23 hours apart, not a fixed 7 * 24 hours.
    sunday = _weekly("sun", "18:00", "Europe/Berlin")
    first = store.next_due_for(sunday, utc(2026, 3, 20, 12))
    assert first == utc(2026, 3, 22, 17)
    assert first is not None
    second = store.next_due_for(sunday, first)
    assert second == utc(2026, 3, 29, 16)
    assert second is not None
    assert store.next_due_for(sunday, second) == utc(2026, 4, 5, 16)
    # 02:30 on the spring-forward Sunday does not exist: sent at 03:00 CEST, once.
    early = _weekly("sun", "02:30", "Europe/Berlin")
    assert store.next_due_for(early, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    # 01:30 happens twice on New York's fall-back Sunday (1 November): the first one.
    twice = _weekly("sun", "01:30", "America/New_York")
    assert store.next_due_for(twice, utc(2026, 10, 31, 12)) == utc(2026, 11, 1, 5, 30)
    assert store.next_due_for(twice, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 8, 6, 30)
    # Asked exactly at its time, the next one is a week later; a minute before, the same day.
    friday = _weekly("fri", "20:00", "Asia/Kolkata")
    assert store.next_due_for(friday, utc(2026, 3, 6, 14, 30)) == utc(2026, 3, 13, 14, 30)
    assert store.next_due_for(friday, utc(2026, 3, 6, 14, 29)) == utc(2026, 3, 6, 14, 30)


def test_weekly_look_back_pause_and_off() -> None:
    """A pause skips the weeks it covers; off (or blocked) means nothing is due."""
    paused = _weekly("mon", "09:00", "Europe/Berlin", paused_until=utc(2026, 3, 3, 12))
    # Monday 2 March is inside the pause: next is Monday 9 March.
    assert store.next_due_for(paused, utc(2026, 3, 1, 12)) == utc(2026, 3, 9, 8)
    assert (
        store.next_due_for(_weekly("mon", "09:00", "UTC", enabled=False), utc(2026, 3, 1)) is None
    )
    blocked = _weekly("mon", "09:00", "UTC", disabled_reason="blocked")
    assert store.next_due_for(blocked, utc(2026, 3, 1)) is None
