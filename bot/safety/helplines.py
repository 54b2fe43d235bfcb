"""Crisis contacts per country, from `dialogs/helplines/<CC>.yaml` (plus `international.yaml`).

Each file is validated on load (file:line errors) and must say when it was last checked.
Which country a person gets: their own choice (/country), else the region of their language
tag ("en-GB", "pt-BR"), else the operator's `DEFAULT_COUNTRY`, else the international file.
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

FOLDER = "helplines"
INTERNATIONAL = "international"
_CODE = re.compile(r"^[A-Z]{2}$")
_TAG_REGION = re.compile(r"^[a-z]{2,3}(?:[-_][a-z]{4})?[-_]([a-z]{2})(?:[-_].*)?$", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextLine(_Strict):
    """A text (SMS) line: send `keyword` (optional) to `number`."""

    number: str = Field(min_length=2)
    keyword: str | None = None


class Helpline(_Strict):
    name: str = Field(min_length=2)
    phone: str | None = None
    text: TextLine | None = None
    website: str | None = Field(default=None, pattern=r"^https://")
    hours: str | None = None
    languages: list[str] = Field(default_factory=list)
    # Which screen categories this line is for; empty: every crisis (a general line).
    topics: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reachable(self) -> Helpline:
        if not (self.phone or self.text or self.website):
            raise ValueError("a helpline needs a phone, a text line or a website")
        return self


class CountryFile(_Strict):
    country: str
    name: str
    # Other ways people name the country for /country ("UK", "England", "Deutschland").
    aliases: list[str] = Field(default_factory=list)
    emergency: str | None = None
    last_checked: dt.date
    helplines: list[Helpline] = Field(min_length=1)


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    emergency: str | None
    last_checked: dt.date
    helplines: tuple[Helpline, ...]
    aliases: tuple[str, ...] = ()

    def primary(self, category: str | None = None) -> list[Helpline]:
        """The general crisis line first; for a category with its own line, that one too."""
        general = [h for h in self.helplines if not h.topics] or list(self.helplines)
        found = [general[0]]
        if category:
            special = [h for h in self.helplines if category in h.topics]
            if special and special[0] is not general[0]:
                found.append(special[0])
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
        """The code a person means by `typed`: a code, the name, or an alias (any case)."""
        wanted = _plain(typed).removeprefix("the ")
        if not wanted:
            return None
        for country in self.countries.values():
            names = {_plain(n) for n in (country.code, country.name, *country.aliases)}
            if wanted in names | {n.removeprefix("the ") for n in names}:
                return country.code
        return None


def _plain(text: str) -> str:
    kept = "".join(ch if ch.isalnum() else " " for ch in text.casefold())
    return " ".join(kept.split())


def region_of(language_tag: str | None) -> str | None:
    """The region of a language tag ("en-GB" → "GB", "pt_br" → "BR"), None if it has none."""
    if not language_tag:
        return None
    match = _TAG_REGION.match(language_tag.strip())
    return match.group(1).upper() if match else None


def resolve_country(
    chosen: str | None, language_tag: str | None, default: str | None
) -> str | None:
    """Which country's contacts to show (None: the international list)."""
    code = chosen or region_of(language_tag) or default
    return code.upper() if code else None


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
        try:
            spec = CountryFile.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc: list[Any] = list(err["loc"])
                where = ".".join(str(p) for p in loc) or "(top level)"
                errors.append(SourceError(display, line_of(raw, loc), f"{where}: {err['msg']}"))
            continue
        expected = INTERNATIONAL if path.stem == INTERNATIONAL else path.stem.upper()
        if path.stem != INTERNATIONAL and (not _CODE.match(path.stem) or spec.country != expected):
            errors.append(
                SourceError(
                    display,
                    line_of(raw, ["country"]),
                    f"file {path.name} must be named after its two-letter country code "
                    f"({spec.country}.yaml)",
                )
            )
            continue
        country = Country(
            code=spec.country,
            name=spec.name,
            emergency=spec.emergency,
            last_checked=spec.last_checked,
            helplines=tuple(spec.helplines),
            aliases=tuple(spec.aliases),
        )
        if path.stem == INTERNATIONAL:
            international = country
        else:
            countries[spec.country] = country
    if international is None:
        errors.append(SourceError(f"{root.name}/{FOLDER}", 0, "missing international.yaml"))
    if errors or international is None:
        return None, errors
    return Helplines(countries, international), []


Text = Callable[..., str]


def describe(helpline: Helpline, text: Text) -> str:
    """One line for a person: name, how to reach it, hours. Words come from messages.yaml."""
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
    return line


def emergency_of(country: Country, text: Text) -> str:
    if country.emergency:
        return country.emergency
    return text("emergency_unknown")


def contact_list(country: Country, text: Text) -> str:
    """Every contact of a country, one per line, with websites."""
    lines = []
    for helpline in country.helplines:
        line = "• " + describe(helpline, text)
        if helpline.website and (helpline.phone or helpline.text):
            line += f"\n  {helpline.website}"
        lines.append(line)
    return "\n".join(lines)
