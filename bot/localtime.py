"""Times as a person sees them: in their own timezone, never UTC.

Everything is stored in UTC; a view (`/history`, `/progress`, the export's spreadsheet)
turns it into the person's clock: the zone they chose for reminders, else DEFAULT_TIMEZONE.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.reminders.schedule import is_zone, zone
from storage.models import as_utc


def person_zone(chosen: str | None, default: str) -> ZoneInfo:
    """The person's zone: the one they chose, else the default, else UTC."""
    for name in (chosen, default):
        if name and is_zone(name):
            return zone(name)
    return zone("UTC")


def local(moment: datetime, where: ZoneInfo) -> datetime:
    """A stored moment (naive means UTC, as SQLite gives it back) on the person's clock."""
    return as_utc(moment).astimezone(where)
