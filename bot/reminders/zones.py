"""Finding a person's IANA timezone from what they tell us.

Three ways, all offline: a typed city, country or zone name matched against the IANA database
shipped with Python/tzdata ("Berlin" → Europe/Berlin, "new york" → America/New_York); the
local time they see right now (the UTC offset is derived and a zone with that offset today is
picked); or a shared location (latitude/longitude → zone with tzfpy; never stored).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import available_timezones

from bot.reminders.parse import parse_time
from bot.reminders.schedule import is_zone, zone

_NOISE = re.compile(r"[_\-./,()']+|\s+")
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$")

# Common English names of places whose zone is named after another city.
ALIASES = {
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "portland": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles",
    "washington": "America/New_York",
    "washington dc": "America/New_York",
    "boston": "America/New_York",
    "philadelphia": "America/New_York",
    "atlanta": "America/New_York",
    "miami": "America/New_York",
    "nyc": "America/New_York",
    "houston": "America/Chicago",
    "dallas": "America/Chicago",
    "austin": "America/Chicago",
    "san antonio": "America/Chicago",
    "minneapolis": "America/Chicago",
    "salt lake city": "America/Denver",
    "calgary": "America/Edmonton",
    "montreal": "America/Toronto",
    "ottawa": "America/Toronto",
    "munich": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "cologne": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "geneva": "Europe/Zurich",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "florence": "Europe/Rome",
    "naples": "Europe/Rome",
    "edinburgh": "Europe/London",
    "manchester": "Europe/London",
    "glasgow": "Europe/London",
    "cardiff": "Europe/London",
    "kiev": "Europe/Kyiv",
    "st petersburg": "Europe/Moscow",
    "saint petersburg": "Europe/Moscow",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bombay": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "chennai": "Asia/Kolkata",
    "hyderabad": "Asia/Kolkata",
    "calcutta": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "guangzhou": "Asia/Shanghai",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "busan": "Asia/Seoul",
    "hanoi": "Asia/Bangkok",
    "abu dhabi": "Asia/Dubai",
    "canberra": "Australia/Sydney",
    "wellington": "Pacific/Auckland",
    "rio de janeiro": "America/Sao_Paulo",
    "rio": "America/Sao_Paulo",
    "brasilia": "America/Sao_Paulo",
    "cape town": "Africa/Johannesburg",
    "uk": "Europe/London",
    "united kingdom": "Europe/London",
    "england": "Europe/London",
    "scotland": "Europe/London",
    "wales": "Europe/London",
    "northern ireland": "Europe/London",
    "utc": "UTC",
    "gmt": "UTC",
    "z": "UTC",
    "zulu": "UTC",
}

# When only an offset is known, these are preferred (roughly by how many people live there).
PREFERRED = (
    "Asia/Kolkata",
    "Asia/Shanghai",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Nairobi",
    "Europe/Moscow",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "America/Bogota",
    "America/Argentina/Buenos_Aires",
    "America/Caracas",
    "America/Halifax",
    "America/St_Johns",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Atlantic/Azores",
    "Atlantic/Cape_Verde",
    "America/Noronha",
    "Africa/Johannesburg",
    "Europe/Istanbul",
    "Asia/Dubai",
    "Asia/Tehran",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Jakarta",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Eucla",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Sydney",
    "Australia/Brisbane",
    "Australia/Lord_Howe",
    "Pacific/Noumea",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Tongatapu",
    "Pacific/Kiritimati",
    "Pacific/Marquesas",
    "Pacific/Pago_Pago",
    "Pacific/Gambier",
)


def _key(text: str) -> str:
    """Case, accents, underscores and punctuation do not matter: 'São_Paulo' → 'sao paulo'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOISE.sub(" ", plain).strip()


def _read_tab(name: str) -> list[list[str]]:
    try:
        raw = resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - tzdata is required
        return []
    return [line.split("\t") for line in raw.splitlines() if line and not line.startswith("#")]


@cache
def canonical_zones() -> tuple[str, ...]:
    """Zones that name a region today (zone.tab), plus UTC; legacy links are left out."""
    names = {row[2] for row in _read_tab("zone.tab") if len(row) >= 3}
    names = {n for n in names if is_zone(n)} or set(available_timezones())
    return tuple(sorted(names | {"UTC"}))


@cache
def _index() -> dict[str, str]:
    """Normalized name → zone: full names, 'area city' and the city alone; canonical first."""
    index: dict[str, str] = {_key(alias): name for alias, name in ALIASES.items()}

    def add(name: str) -> None:
        if name.startswith("Etc/"):
            return  # "GMT-5" and "GMT+5" look alike once normalized; offsets are read apart
        parts = name.split("/")
        for key in (_key(name), _key(parts[-1]), _key(" ".join(parts[-2:]))):
            index.setdefault(key, name)

    for name in canonical_zones():
        add(name)
    countries = {row[0]: row[1] for row in _read_tab("iso3166.tab") if len(row) >= 2}
    per_country: dict[str, list[str]] = {}
    for row in _read_tab("zone.tab"):
        if len(row) >= 3:
            per_country.setdefault(row[0], []).append(row[2])
    year = datetime.now(UTC).year
    probes = [datetime(year, 1, 15, tzinfo=UTC), datetime(year, 7, 15, tzinfo=UTC)]
    for code, zones in per_country.items():
        offsets = {tuple(p.astimezone(zone(z)).utcoffset() for p in probes) for z in zones}
        if len(offsets) == 1 and code in countries:  # one clock for the whole country
            for country in re.split(r" & |\(|\)", countries[code]):
                if country.strip():
                    index.setdefault(_key(country), zones[0])
    for name in sorted(available_timezones()):  # legacy names last ("US/Eastern")
        add(name)
    return index


@cache
def _exact() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def match_zone_name(text: str) -> str | None:
    """A typed city, single-zone country or zone name → IANA zone; None if not recognized."""
    cleaned = text.strip().strip(".!?")
    if not cleaned or len(cleaned) > 80:
        return None
    exact = _exact().get(cleaned.casefold())
    if exact:
        return exact
    index = _index()
    candidates = [cleaned, cleaned.split(",")[0]]
    for candidate in candidates:
        found = index.get(_key(candidate))
        if found:
            return found
    return None


def _offset_minutes(text: str) -> int | None:
    match = _OFFSET.match(text.strip().lower().replace(" ", "").replace("−", "-"))
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes not in (0, 15, 30, 45):
        return None
    return sign * (hours * 60 + minutes)


def zone_for_offset(minutes: int, now: datetime) -> str | None:
    """A zone whose UTC offset is `minutes` right now: a preferred big city, else any."""
    wanted = timedelta(minutes=minutes)
    for name in (*PREFERRED, *canonical_zones()):
        if is_zone(name) and now.astimezone(zone(name)).utcoffset() == wanted:
            return name
    if minutes % 60 == 0 and -12 * 60 <= minutes <= 14 * 60:
        hours = -minutes // 60  # Etc/GMT signs are inverted by POSIX convention.
        return "UTC" if hours == 0 else f"Etc/GMT{hours:+d}"
    return None


def zone_from_local_time(local: time, now: datetime) -> str | None:
    """The zone of someone who sees `local` on their clock at `now` (to the quarter hour)."""
    utc = now.astimezone(UTC)
    diff = (local.hour * 60 + local.minute) - (utc.hour * 60 + utc.minute)
    diff = round(diff / 15) * 15 % 1440
    options = [diff - 1440 if diff > 720 else diff]
    options.append(options[0] + 1440 if options[0] <= 0 else options[0] - 1440)
    for minutes in options:
        if -12 * 60 <= minutes <= 14 * 60:
            found = zone_for_offset(minutes, now)
            if found:
                return found
    return None


def zone_from_text(text: str, now: datetime) -> str | None:
    """Whatever a person typed: a zone name, an offset like UTC+2, a place, or their time."""
    exact = _exact().get(text.strip().casefold())
    if exact:
        return exact
    offset = _offset_minutes(text)
    if offset is not None:
        # An offset typed on purpose is kept as a fixed offset where the database has one.
        if offset % 60 == 0 and -12 * 60 <= offset <= 14 * 60:
            return "UTC" if offset == 0 else f"Etc/GMT{-offset // 60:+d}"
        return zone_for_offset(offset, now)
    found = match_zone_name(text)
    if found:
        return found
    local = parse_time(text)
    if local is not None:
        return zone_from_local_time(local, now)
    return None


def zone_from_location(latitude: float, longitude: float) -> str | None:
    """Coordinates → IANA zone, offline (tzfpy). The coordinates are not kept anywhere."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    from tzfpy import get_tz  # imported on first use: its polygon data is large

    name: str = get_tz(longitude, latitude)
    return name if name and is_zone(name) else None
