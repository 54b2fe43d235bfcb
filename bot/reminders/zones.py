"""Finding a person's IANA timezone from what they tell us.

Three ways, all offline: a typed city, country, abbreviation or zone name matched against
the IANA database shipped with Python/tzdata ("Berlin" → Europe/Berlin, "new york" →
America/New_York, "EST" → America/New_York, the region's zone with its summer time, not a
fixed offset); the local time they see right now (the UTC offset is derived); or a shared
location (latitude/longitude → zone with tzfpy; never stored).

Where the answer is not one zone, `zone_choices` says so and lists the candidates, for the
person to pick: a country with several clocks ("USA", "Australia"), an abbreviation several
regions use ("IST": India, Ireland or Israel), or a time on their clock (every big region
showing 9:15 pm right now). `zone_from_text` keeps the old single answer (the first).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any
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

# Time-zone abbreviations people type, to the regions' zones (with their summer time); where
# several regions use one, each is offered, the most populous first.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "est": ("America/New_York",),
    "edt": ("America/New_York",),
    "eastern": ("America/New_York",),
    "eastern time": ("America/New_York",),
    "cst": ("America/Chicago", "Asia/Shanghai"),
    "cdt": ("America/Chicago",),
    "central": ("America/Chicago",),
    "central time": ("America/Chicago",),
    "mst": ("America/Denver", "America/Phoenix"),
    "mdt": ("America/Denver",),
    "mountain": ("America/Denver",),
    "mountain time": ("America/Denver",),
    "pst": ("America/Los_Angeles", "Asia/Manila"),
    "pdt": ("America/Los_Angeles",),
    "pacific": ("America/Los_Angeles",),
    "pacific time": ("America/Los_Angeles",),
    "akst": ("America/Anchorage",),
    "akdt": ("America/Anchorage",),
    "hst": ("Pacific/Honolulu",),
    "ast": ("America/Halifax", "Asia/Riyadh"),
    "adt": ("America/Halifax",),
    "nst": ("America/St_Johns",),
    "ndt": ("America/St_Johns",),
    "gmt": ("Europe/London", "UTC"),
    "bst": ("Europe/London",),
    "ist": ("Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem"),
    "wet": ("Europe/Lisbon",),
    "west": ("Europe/Lisbon",),
    "cet": ("Europe/Berlin",),
    "cest": ("Europe/Berlin",),
    "eet": ("Europe/Athens",),
    "eest": ("Europe/Athens",),
    "msk": ("Europe/Moscow",),
    "sast": ("Africa/Johannesburg",),
    "cat": ("Africa/Maputo",),
    "eat": ("Africa/Nairobi",),
    "wat": ("Africa/Lagos",),
    "pkt": ("Asia/Karachi",),
    "npt": ("Asia/Kathmandu",),
    "ict": ("Asia/Bangkok",),
    "wib": ("Asia/Jakarta",),
    "sgt": ("Asia/Singapore",),
    "hkt": ("Asia/Hong_Kong",),
    "pht": ("Asia/Manila",),
    "jst": ("Asia/Tokyo",),
    "kst": ("Asia/Seoul",),
    "awst": ("Australia/Perth",),
    "acst": ("Australia/Adelaide", "Australia/Darwin"),
    "acdt": ("Australia/Adelaide",),
    "aest": ("Australia/Sydney", "Australia/Brisbane"),
    "aedt": ("Australia/Sydney",),
    "nzst": ("Pacific/Auckland",),
    "nzdt": ("Pacific/Auckland",),
    "brt": ("America/Sao_Paulo",),
    "art": ("America/Argentina/Buenos_Aires",),
}

# Other names of countries with several clocks (iso3166.tab has "United States", "Russia"…).
COUNTRY_ALIASES = {
    "usa": "US",
    "us": "US",
    "u s": "US",
    "u s a": "US",
    "america": "US",
    "the us": "US",
    "the usa": "US",
    "the states": "US",
    "united states of america": "US",
    "the united states": "US",
    "russian federation": "RU",
    "brasil": "BR",
    "oz": "AU",
}
MAX_CHOICES = 10  # a country's clocks offered at most (Russia has eleven)
MAX_TIME_CHOICES = 5  # regions offered for a time on their clock

# When only an offset is known, these are preferred (roughly by how many people live there).
PREFERRED = (
    "Asia/Kolkata",
    "Asia/Shanghai",
    "America/New_York",
    "America/Toronto",
    "America/Chicago",
    "America/Winnipeg",
    "America/Denver",
    "America/Edmonton",
    "America/Los_Angeles",
    "America/Vancouver",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Europe/Madrid",
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
    "Australia/Sydney",
    "Australia/Brisbane",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Eucla",
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


def _probes() -> list[datetime]:
    year = datetime.now(UTC).year
    return [datetime(year, 1, 15, tzinfo=UTC), datetime(year, 7, 15, tzinfo=UTC)]


@cache
def zone_of_country(code: str) -> str | None:
    """The zone of a country (ISO code) that has one clock ("DE" → Europe/Berlin, zone.tab's
    first); None for a country with several ("US", "ES") or an unknown code."""
    zones = [row[2] for row in _read_tab("zone.tab") if len(row) >= 3 and row[0] == code.upper()]
    probes = _probes()
    clocks = {tuple(p.astimezone(zone(z)).utcoffset() for p in probes) for z in zones}
    return zones[0] if len(clocks) == 1 else None


@cache
def country_names() -> dict[str, str]:
    """Normalized country name (or alias) → the country's name as iso3166.tab spells it."""
    names = {row[0]: row[1] for row in _read_tab("iso3166.tab") if len(row) >= 2}
    found = {_key(name): name for name in names.values()}
    found.update(
        {_key(alias): names[code] for alias, code in COUNTRY_ALIASES.items() if code in names}
    )
    return found


@cache
def country_clocks() -> dict[str, tuple[str, ...]]:
    """Normalized country name → one zone per distinct clock, for countries with several
    (a preferred big city where there is one, else zone.tab's first): "australia" →
    Perth, Darwin, Adelaide, Brisbane, Sydney, ... Countries with one clock are in `_index`."""
    per_country: dict[str, list[str]] = {}
    for row in _read_tab("zone.tab"):
        if len(row) >= 3 and is_zone(row[2]):
            per_country.setdefault(row[0], []).append(row[2])
    names = {row[0]: row[1] for row in _read_tab("iso3166.tab") if len(row) >= 2}
    probes = _probes()
    rank = {name: i for i, name in enumerate(PREFERRED)}
    clocks: dict[str, tuple[str, ...]] = {}
    by_code: dict[str, tuple[str, ...]] = {}
    for code, zones in per_country.items():
        groups: dict[tuple[Any, ...], list[str]] = {}
        for z in zones:
            groups.setdefault(tuple(p.astimezone(zone(z)).utcoffset() for p in probes), []).append(
                z
            )
        if len(groups) < 2:
            continue
        chosen = [
            min(g, key=lambda z: (rank.get(z, len(rank)), zones.index(z))) for g in groups.values()
        ]
        # the most populous first (PREFERRED's order), then west to east
        chosen.sort(
            key=lambda z: (
                rank.get(z, len(rank)),
                tuple(p.astimezone(zone(z)).utcoffset() for p in probes),
            )
        )
        by_code[code] = tuple(chosen)
        if code in names:
            for country in re.split(r" & |\(|\)", names[code]):
                if country.strip():
                    clocks[_key(country)] = by_code[code]
    for alias, code in COUNTRY_ALIASES.items():
        if code in by_code:
            clocks[_key(alias)] = by_code[code]
    return clocks


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


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """What a typed answer says about the zone: `why` is "one" (found), "abbreviation",
    "country" or "time" (several `zones`, to pick from), or "none"."""

    why: str
    zones: tuple[str, ...] = ()
    place: str = ""  # a country's name, as the zone database spells it ("United States")


def zones_showing(local: time, now: datetime) -> tuple[str, ...]:
    """Big regions whose clocks show `local` at `now` (to the quarter hour), most populous
    first: near midnight a time can be today in one place and yesterday in another."""
    utc = now.astimezone(UTC)
    diff = (local.hour * 60 + local.minute) - (utc.hour * 60 + utc.minute)
    diff = round(diff / 15) * 15 % 1440
    found: list[str] = []
    for minutes in (diff, diff - 1440):
        if not -12 * 60 <= minutes <= 14 * 60:
            continue
        wanted = timedelta(minutes=minutes)
        found += [
            name
            for name in PREFERRED
            if is_zone(name) and now.astimezone(zone(name)).utcoffset() == wanted
        ][:MAX_TIME_CHOICES]
        if not any(now.astimezone(zone(n)).utcoffset() == wanted for n in found):
            fallback = zone_for_offset(minutes, now)
            if fallback:
                found.append(fallback)
    return tuple(found)


def zone_choices(text: str, now: datetime) -> ZoneChoice:
    """Whatever a person typed, as one zone or the zones to offer (see `ZoneChoice`)."""
    cleaned = text.strip().strip(".!?")
    key = _key(cleaned)
    abbreviation = ABBREVIATIONS.get(key) or ABBREVIATIONS.get(key.removesuffix(" time"))
    if abbreviation:
        return ZoneChoice("one" if len(abbreviation) == 1 else "abbreviation", abbreviation)
    clocks = country_clocks().get(key)
    if clocks:  # before zone names: "Portugal" is also an old name of Lisbon's zone
        return ZoneChoice("country", clocks[:MAX_CHOICES], country_names().get(key, cleaned))
    exact = _exact().get(cleaned.casefold())
    if exact:
        return ZoneChoice("one", (exact,))
    found = zone_from_text(cleaned, now)
    local = parse_time(cleaned)
    if local is not None and found is not None and match_zone_name(cleaned) is None:
        showing = zones_showing(local, now)
        if len(showing) > 1:
            return ZoneChoice("time", showing)
    return ZoneChoice("one", (found,)) if found else ZoneChoice("none")
