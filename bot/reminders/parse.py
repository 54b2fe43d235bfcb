"""Reading what a person types for a time of day or a set of weekdays.

Every function returns None for anything it cannot read with confidence (an hour from 1 to 12
with no am/pm is ambiguous), so the dialog can ask again gently and change nothing.
"""

from __future__ import annotations

import re
from datetime import time

from bot.reminders.schedule import DAY_KEYS, EVERY_DAY, WEEKDAYS, WEEKENDS

_SPACES = re.compile(r"\s+")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm)?$")
_COMPACT = re.compile(r"^(\d{1,2})(\d{2})\s*(am|pm)?$")
_FILLER = re.compile(
    r"^(?:it'?s|it is|now|right now|at|about|around|maybe)\s+|\s+(?:o'?clock|now|here)$"
)
_ISH = re.compile(r"(?<=[\dm])\s*-?ish\b")
_WORDS = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}


def _clean(text: str) -> str:
    text = text.casefold().strip().rstrip(".!?")
    text = text.replace("’", "'").replace("a.m.", "am").replace("p.m.", "pm")
    text = text.replace("a.m", "am").replace("p.m", "pm")
    text = _ISH.sub("", text)  # "9ish pm", "9pm-ish": the time they gave
    return _SPACES.sub(" ", text).strip()


def parse_time(text: str) -> time | None:
    """A time of day: '21:00', '9pm', '9:30 pm', '21.30', '2130', '21h', 'noon'."""
    value = _clean(text)
    for _ in range(3):
        stripped = _FILLER.sub("", value).strip()
        if stripped == value:
            break
        value = stripped
    if value in _WORDS:
        return _WORDS[value]
    match = _CLOCK.match(value) or _COMPACT.match(value)
    if not match:
        return None
    hour, minute, suffix = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if minute > 59:
        return None
    if suffix:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    elif hour > 23:
        return None
    elif match.group(2) is None and 1 <= hour <= 12:
        return None  # "9" alone: morning or evening? Ask again rather than guess.
    return time(hour, minute)


_DAY_NAMES: dict[str, int] = {}
for _index, _key in enumerate(DAY_KEYS):
    for _name in (
        _key,
        _key[:2],
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[_index],
    ):
        _DAY_NAMES[_name] = _index
_DAY_NAMES.update({"tues": 1, "weds": 2, "thur": 3, "thurs": 3})
_DAY_SETS = {
    "every day": EVERY_DAY,
    "everyday": EVERY_DAY,
    "daily": EVERY_DAY,
    "all": EVERY_DAY,
    "all days": EVERY_DAY,
    "weekdays": WEEKDAYS,
    "workdays": WEEKDAYS,
    "weekends": WEEKENDS,
    "weekend": WEEKENDS,
}
_SEPARATORS = re.compile(r"\s*(?:,|/|&|\+|\band\b|\s)\s*")
_RANGE = re.compile(r"^([a-z]+)\s*(?:-|–|to|through|till|until)\s*([a-z]+)$")


def parse_days(text: str) -> int | None:
    """Weekdays as a bitmask (Monday = bit 0): 'every day', 'weekdays', 'mon wed fri',
    'mon-fri', 'Monday and Thursday'. None if any part is not a day."""
    value = _clean(text)
    if value in _DAY_SETS:
        return _DAY_SETS[value]
    mask = 0
    for part in re.split(r"\s*,\s*|\s+and\s+", value):
        ranged = _RANGE.match(part.strip())
        if ranged:
            first, last = (_DAY_NAMES.get(w) for w in ranged.groups())
            if first is None or last is None:
                return None
            day = first
            while True:
                mask |= 1 << day
                if day == last:
                    break
                day = (day + 1) % 7
            continue
        for word in _SEPARATORS.split(part):
            if not word:
                continue
            if word not in _DAY_NAMES:
                return None
            mask |= 1 << _DAY_NAMES[word]
    return mask or None
