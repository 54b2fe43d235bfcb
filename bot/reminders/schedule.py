"""When a reminder is next due: local wall-clock time on chosen weekdays, in an IANA zone.

Occurrences are computed per local *date*, never by adding 24 hours, so a 21:00 reminder stays
at 21:00 across daylight-saving changes. On the spring-forward day a time that does not exist
(02:30 in Berlin) is sent at the next valid minute (03:00); on the fall-back day a time that
happens twice (02:30) is sent once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EVERY_DAY = 0b1111111
WEEKDAYS = 0b0011111
WEEKENDS = 0b1100000
# The longest gap a zone has ever skipped is under a day; real spring-forward gaps are 30–60 min.
_MAX_GAP_MINUTES = 24 * 60


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """A cached ZoneInfo; raises ZoneInfoNotFoundError (a KeyError) for unknown names."""
    return ZoneInfo(name)


def is_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_hhmm(value: str) -> time:
    """'21:05' → time(21, 5): the storage format of a schedule's local time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def format_hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def exists(naive: datetime, tz: ZoneInfo) -> bool:
    """Whether this wall-clock time happens at all in `tz` (not skipped by a DST gap)."""
    aware = naive.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def resolve(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of `at` on local `day`: next valid minute in a gap, first of two."""
    naive = datetime.combine(day, at.replace(second=0, microsecond=0))
    for _ in range(_MAX_GAP_MINUTES):
        if exists(naive, tz):
            # fold=0 is the earlier of two instants when the wall time repeats.
            return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        naive += timedelta(minutes=1)
    raise ValueError(f"no valid time near {day} {at} in {tz.key}")


def next_occurrence(
    after: datetime,
    at: time,
    tz: ZoneInfo,
    *,
    days: int = EVERY_DAY,
    paused_until: datetime | None = None,
) -> datetime | None:
    """The first occurrence strictly after `after` (and not before `paused_until`), in UTC.

    `days` is a bitmask of weekdays, bit 0 = Monday … bit 6 = Sunday; 0 means never (None).
    """
    if not days & EVERY_DAY:
        return None
    if after.tzinfo is None:
        raise ValueError("`after` must be timezone-aware")
    if paused_until is not None and paused_until > after:
        after = paused_until - timedelta(microseconds=1)
    # Start a day early: the local date of `after` may already be past the wanted instant
    # or, near a transition, the previous local date's occurrence may still lie ahead.
    day = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(10):
        if days >> day.weekday() & 1:
            instant = resolve(day, at, tz)
            if instant > after:
                return instant
        day += timedelta(days=1)
    raise AssertionError("unreachable: some weekday in the mask occurs within 10 days")


def days_from_names(words: list[str]) -> int:
    """Helper for tests and parsing: ['mon', 'wed'] → bitmask."""
    mask = 0
    for word in words:
        mask |= 1 << DAY_KEYS.index(word[:3].lower())
    return mask


DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def local_now(now: datetime, tz_name: str) -> datetime:
    return now.astimezone(zone(tz_name))
