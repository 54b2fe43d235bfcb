"""Crisis contacts per country, from `dialogs/helplines/<CC>.yaml` (plus `international.yaml`).

Each file is validated on load (file:line errors) and says plainly how far it can be trusted:

- `verified: false` until a person has checked every number against the services themselves;
  then `verified: true` with `verified_by: <name>` and `verified_on: <date>`.
- every helpline has its `hours` and either `sources` (where its number or website was
  confirmed: `{url, seen: <date>, note?}`) or `unconfirmed: true` (no confirmation was
  found). The emergency number has `emergency_source` or `emergency_unconfirmed: true`, and
  the international file lists the common emergency numbers by region (`emergency_by_region`).

An unconfirmed line is never shown on its own: wherever one appears, the emergency number is
shown first (`Country.primary`, `contact_list`).

Which country a person gets: their own choice (/country), else the region of their language
tag ("en-GB", "pt-BR"), else the operator's `DEFAULT_COUNTRY`, else the international file.
`/country` understands every country's name (`bot.safety.countries`), with or without a file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml
from bot.safety.countries import (
    country_code,
    display_name,
    plain,
    region_of,
    suggest_country,
)

__all__ = [
    "FOLDER",
    "INTERNATIONAL",
    "Country",
    "CountryFile",
    "EmergencyLine",
    "Helpline",
    "Helplines",
    "RegionalNumber",
    "Source",
    "contact_list",
    "describe",
    "emergency_of",
    "load_helplines",
    "region_of",
    "resolve_country",
    "suggest_country",
]

FOLDER = "helplines"
INTERNATIONAL = "international"
_CODE = re.compile(r"^[A-Z]{2}$")
# How many regional emergency numbers `emergency_of` quotes for the international list.
SHORT_REGIONS = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a number or website was confirmed, and when."""

    url: str = Field(pattern=r"^https?://\S+$")
    seen: dt.date
    note: str | None = None


def _check_sources(sources: list[Source], unconfirmed: bool, what: str) -> None:
    if unconfirmed and sources:
        raise ValueError(f"{what}: unconfirmed: true means no sources; remove one of them")
    if not unconfirmed and not sources:
        raise ValueError(
            f"{what}: add `sources` (where it was confirmed: url and seen date), "
            "or `unconfirmed: true` if it could not be confirmed"
        )


class TextLine(_Strict):
    """A text (SMS) line: send `keyword` (optional) to `number`."""

    number: str = Field(min_length=2)
    keyword: str | None = None


class Helpline(_Strict):
    name: str = Field(min_length=2)
    phone: str | None = None
    text: TextLine | None = None
    website: str | None = Field(default=None, pattern=r"^https://")
    hours: str = Field(min_length=2)
    languages: list[str] = Field(default_factory=list)
    # Which screen categories this line is for; empty: every crisis (a general line).
    topics: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    unconfirmed: bool = False

    @model_validator(mode="after")
    def _reachable_and_sourced(self) -> Helpline:
        if not (self.phone or self.text or self.website):
            raise ValueError("a helpline needs a phone, a text line or a website")
        _check_sources(self.sources, self.unconfirmed, "a helpline")
        return self

    @property
    def confirmed(self) -> bool:
        return not self.unconfirmed


class EmergencyLine(Helpline):
    """The emergency number shown as a contact (built from a country file, never written)."""


class RegionalNumber(_Strict):
    """An emergency number and where it works (the international list)."""

    number: str = Field(min_length=2)
    region: str = Field(min_length=2)
    # Where, in a few words, for a first crisis message ("112 in Europe"); omit to leave the
    # number out of it (the full contact list still has it).
    short: str | None = None
    sources: list[Source] = Field(default_factory=list)
    unconfirmed: bool = False

    @model_validator(mode="after")
    def _sourced(self) -> RegionalNumber:
        _check_sources(self.sources, self.unconfirmed, "an emergency number")
        return self


class CountryFile(_Strict):
    country: str
    name: str
    # Other ways people name the country for /country ("UK", "England", "Deutschland").
    aliases: list[str] = Field(default_factory=list)
    verified: bool
    verified_by: str | None = Field(default=None, min_length=2)
    verified_on: dt.date | None = None
    emergency: str | None = None
    emergency_source: list[Source] = Field(default_factory=list)
    emergency_unconfirmed: bool = False
    emergency_by_region: list[RegionalNumber] = Field(default_factory=list)
    helplines: list[Helpline] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CountryFile:
        if self.verified and not (self.verified_by and self.verified_on):
            raise ValueError("verified: true needs verified_by (who checked) and verified_on")
        if not self.verified and (self.verified_by or self.verified_on):
            raise ValueError(
                "verified_by/verified_on are only for a checked file: set verified: true, "
                "or remove them"
            )
        if self.emergency:
            _check_sources(
                self.emergency_source, self.emergency_unconfirmed, "the emergency number"
            )
        elif self.emergency_source or self.emergency_unconfirmed:
            raise ValueError("emergency_source/emergency_unconfirmed need an emergency number")
        has_emergency = bool(self.emergency or self.emergency_by_region)
        if not self.helplines and not has_emergency:
            raise ValueError("a file needs at least one helpline or an emergency number")
        if not has_emergency and any(h.unconfirmed for h in self.helplines):
            raise ValueError(
                "an unconfirmed helpline is only shown beside the emergency number: "
                "add `emergency` (or `emergency_by_region`)"
            )
        return self


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    emergency: str | None
    helplines: tuple[Helpline, ...]
    aliases: tuple[str, ...] = ()
    verified: bool = False
    verified_by: str | None = None
    verified_on: dt.date | None = None
    emergency_sources: tuple[Source, ...] = ()
    emergency_unconfirmed: bool = False
    emergency_by_region: tuple[RegionalNumber, ...] = ()

    @property
    def unconfirmed_lines(self) -> tuple[Helpline, ...]:
        return tuple(h for h in self.helplines if h.unconfirmed)

    def source_count(self) -> int:
        """Sources recorded in the file (emergency numbers and helplines)."""
        return (
            len(self.emergency_sources)
            + sum(len(r.sources) for r in self.emergency_by_region)
            + sum(len(h.sources) for h in self.helplines)
        )

    def emergency_line(self) -> EmergencyLine | None:
        """The emergency number(s) as a contact, to stand before any unconfirmed line."""
        if self.emergency:
            number = self.emergency
            sources = list(self.emergency_sources)
            unconfirmed = self.emergency_unconfirmed
        elif self.emergency_by_region:
            number = _regional(self.emergency_by_region, short=False)
            sources = [s for r in self.emergency_by_region for s in r.sources]
            unconfirmed = not sources
        else:
            return None
        return EmergencyLine(
            name="Emergency services",
            phone=number,
            hours="24/7",
            sources=[] if unconfirmed else sources,
            unconfirmed=unconfirmed,
        )

    def primary(self, category: str | None = None) -> list[Helpline]:
        """The general crisis line first; for a category with its own line, that one too.

        A confirmed general line is preferred. Whenever a line shown here is unconfirmed (or
        there is no line at all), the emergency number comes first.
        """
        general = [h for h in self.helplines if not h.topics]
        confirmed = [h for h in general if h.confirmed]
        found: list[Helpline] = []
        if confirmed:
            found.append(confirmed[0])
        elif general:
            found.append(general[0])
        if category:
            special = [h for h in self.helplines if category in h.topics]
            if special and special[0] not in found:
                found.append(special[0])
        if not found or any(h.unconfirmed for h in found):
            emergency = self.emergency_line()
            if emergency is not None:
                found.insert(0, emergency)
        return found


@dataclass(frozen=True)
class Helplines:
    countries: dict[str, Country]
    international: Country

    def get(self, code: str | None) -> Country:
        return self.countries.get((code or "").upper(), self.international)

    def known(self, code: str) -> bool:
        return code.upper() in self.countries

    def lookup(self, typed: str) -> str | None:
        """The ISO code a person means by `typed`: a code, a name or an alias, in any case or
        language, whether or not there is a file for that country (None: not a country)."""
        wanted = plain(typed)
        if not wanted:
            return None
        for country in self.countries.values():
            if wanted in {plain(n) for n in (country.code, country.name, *country.aliases)}:
                return country.code
        return country_code(typed)

    def name_of(self, code: str) -> str:
        """A display name for any ISO code ("Bolivia"); the file's own name if there is one."""
        code = code.upper()
        if code in self.countries:
            return self.countries[code].name
        return display_name(code) or code


def resolve_country(
    chosen: str | None, language_tag: str | None, default: str | None
) -> str | None:
    """Which country's contacts to show (None: the international list)."""
    code = chosen or region_of(language_tag) or default
    return code.upper() if code else None


def _validation_errors(raw: LineDict, display: str, exc: ValidationError) -> list[SourceError]:
    errors = []
    for err in exc.errors():
        loc: list[Any] = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = str(err["msg"]).removeprefix("Value error, ")
        errors.append(SourceError(display, line_of(raw, loc), f"{where}: {message}"))
    return errors


def load_helplines(root: Path) -> tuple[Helplines | None, list[SourceError]]:
    """Load every country file under `root/helplines`; all problems, each with its line."""
    folder = root / FOLDER
    errors: list[SourceError] = []
    countries: dict[str, Country] = {}
    international: Country | None = None
    if not folder.is_dir():
        return None, [SourceError(str(folder), 0, "no helplines folder")]
    for path in sorted(folder.glob("*.yaml")):
        display = f"{root.name}/{FOLDER}/{path.name}"
        raw, load_errors = load_yaml(path, display)
        if load_errors:
            errors.extend(load_errors)
            continue
        if not isinstance(raw, LineDict):
            errors.append(SourceError(display, 1, "expected a mapping"))
            continue
        if "last_checked" in raw:
            errors.append(
                SourceError(
                    display,
                    line_of(raw, ["last_checked"]),
                    "last_checked: replaced by `verified: false` (and verified_by/verified_on "
                    "once a person has checked every number); each line names its sources",
                )
            )
            continue
        try:
            spec = CountryFile.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_validation_errors(raw, display, exc))
            continue
        is_international = path.stem == INTERNATIONAL
        expected = INTERNATIONAL if is_international else path.stem.upper()
        if not is_international and (not _CODE.match(path.stem) or spec.country != expected):
            errors.append(
                SourceError(
                    display,
                    line_of(raw, ["country"]),
                    f"file {path.name} must be named after its two-letter country code "
                    f"({spec.country}.yaml)",
                )
            )
            continue
        if not is_international and not spec.emergency:
            errors.append(
                SourceError(
                    display,
                    line_of(raw, ["country"]),
                    "a country file needs its emergency number (`emergency`)",
                )
            )
            continue
        country = Country(
            code=spec.country,
            name=spec.name,
            emergency=spec.emergency,
            helplines=tuple(spec.helplines),
            aliases=tuple(spec.aliases),
            verified=spec.verified,
            verified_by=spec.verified_by,
            verified_on=spec.verified_on,
            emergency_sources=tuple(spec.emergency_source),
            emergency_unconfirmed=spec.emergency_unconfirmed,
            emergency_by_region=tuple(spec.emergency_by_region),
        )
        if is_international:
            international = country
        else:
            countries[spec.country] = country
    if international is None:
        errors.append(SourceError(f"{root.name}/{FOLDER}", 0, "missing international.yaml"))
    if errors or international is None:
        return None, errors
    return Helplines(countries, international), []


Text = Callable[..., str]


def _optional(text: Text, key: str, default: str, **values: str) -> str:
    """A locale's text for `key` if it has one, else `default` (keys added after this code)."""
    try:
        got = text(key, **values)
    except (KeyError, LookupError):
        got = key
    return default.format(**values) if got == key else got


def _regional(numbers: tuple[RegionalNumber, ...], *, short: bool) -> str:
    if short:
        picked = [(r.number, r.short) for r in numbers if r.short][:SHORT_REGIONS]
        return ", ".join(f"{number} in {label}" for number, label in picked)
    return ", ".join(f"{r.number} ({r.region})" for r in numbers)


def describe(helpline: Helpline, text: Text) -> str:
    """One line for a person: name, how to reach it, hours. Words come from messages.yaml."""
    if isinstance(helpline, EmergencyLine) and helpline.phone:
        name = _optional(text, "emergency_line_name", "Emergency services")
        return text("helpline_line", name=name, ways=text("helpline_call", number=helpline.phone))
    ways = []
    if helpline.phone:
        ways.append(text("helpline_call", number=helpline.phone))
    if helpline.text:
        if helpline.text.keyword:
            ways.append(
                text(
                    "helpline_text_keyword",
                    keyword=helpline.text.keyword,
                    number=helpline.text.number,
                )
            )
        else:
            ways.append(text("helpline_text", number=helpline.text.number))
    if not ways and helpline.website:
        ways.append(helpline.website)
    line = text("helpline_line", name=helpline.name, ways=text("helpline_or").join(ways))
    if helpline.hours:
        line = text("helpline_hours", line=line, hours=helpline.hours)
    if helpline.unconfirmed:
        # Only if the locale words it; an unconfirmed line always stands below the emergency one.
        line = _optional(text, "helpline_unconfirmed", "{line}", line=line)
    return line


def emergency_of(country: Country, text: Text) -> str:
    """The number to call in danger; for the international list, the common ones by region."""
    if country.emergency:
        return country.emergency
    unknown = text("emergency_unknown")
    numbers = _regional(country.emergency_by_region, short=True)
    if not numbers:
        return unknown
    return _optional(
        text, "emergency_by_region", "{unknown} ({numbers})", unknown=unknown, numbers=numbers
    )


def contact_list(country: Country, text: Text) -> str:
    """Every contact of a country, one per line, with websites.

    The emergency number comes first whenever an unconfirmed line is listed or the country has
    no confirmed general line; confirmed lines come before unconfirmed ones. The international list
    starts with the emergency numbers by region.
    """
    lines = []
    if country.emergency_by_region and not country.emergency:
        title = _optional(text, "emergency_numbers_title", "Emergency numbers")
        rows = [f"  {r.number}: {r.region}" for r in country.emergency_by_region]
        lines.append("• " + title + ":\n" + "\n".join(rows))
    elif country.unconfirmed_lines or not any(
        h.confirmed and not h.topics for h in country.helplines
    ):
        emergency = country.emergency_line()
        if emergency is not None:
            lines.append("• " + describe(emergency, text))
    ordered = [h for h in country.helplines if h.confirmed] + list(country.unconfirmed_lines)
    for helpline in ordered:
        line = "• " + describe(helpline, text)
        if helpline.website and (helpline.phone or helpline.text):
            line += f"\n  {helpline.website}"
        lines.append(line)
    return "\n".join(lines)
