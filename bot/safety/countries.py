"""Every country's name, for `/country <name>` and for saying which country a person chose.

The ISO 3166-1 table comes from the IANA time zone data (`iso3166.tab`, shipped by the
`tzdata` package, else the system's zoneinfo folder). Its names are short and sometimes odd
("Britain (UK)", "Korea (South)"), so `_DISPLAY` gives the name we show and `_ALIASES` the
other ways people write a country: official English names, common short forms, and the
name in the local language(s) for the countries people most often use kindbot from.

`suggest_country` guesses a country for onboarding from a language tag's region or from an
IANA time zone (`zone.tab`), and says nothing when the guess would be ambiguous.
"""

from __future__ import annotations

import importlib.resources
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

_SYSTEM_ZONEINFO = (Path("/usr/share/zoneinfo"), Path("/usr/lib/zoneinfo"))
_TAG_REGION = re.compile(r"^[a-z]{2,3}(?:[-_][a-z]{4})?[-_]([a-z]{2})(?:[-_].*)?$", re.IGNORECASE)

# The name to show when iso3166.tab's own is abbreviated or parenthesised.
_DISPLAY: dict[str, str] = {
    "AE": "the United Arab Emirates",
    "AG": "Antigua and Barbuda",
    "AS": "American Samoa",
    "BA": "Bosnia and Herzegovina",
    "BL": "Saint Barthélemy",
    "BQ": "the Caribbean Netherlands",
    "BS": "the Bahamas",
    "CC": "the Cocos (Keeling) Islands",
    "CD": "the Democratic Republic of the Congo",
    "CF": "the Central African Republic",
    "CG": "the Republic of the Congo",
    "CI": "Côte d'Ivoire",
    "CZ": "Czechia",
    "DO": "the Dominican Republic",
    "FK": "the Falkland Islands",
    "FO": "the Faroe Islands",
    "GB": "the United Kingdom",
    "GM": "the Gambia",
    "GS": "South Georgia and the South Sandwich Islands",
    "HM": "Heard Island and McDonald Islands",
    "IO": "the British Indian Ocean Territory",
    "KN": "Saint Kitts and Nevis",
    "KP": "North Korea",
    "KR": "South Korea",
    "KY": "the Cayman Islands",
    "LC": "Saint Lucia",
    "MF": "Saint Martin",
    "MH": "the Marshall Islands",
    "MM": "Myanmar",
    "MP": "the Northern Mariana Islands",
    "NL": "the Netherlands",
    "PH": "the Philippines",
    "PM": "Saint Pierre and Miquelon",
    "SB": "the Solomon Islands",
    "SH": "Saint Helena",
    "SJ": "Svalbard and Jan Mayen",
    "ST": "São Tomé and Príncipe",
    "SX": "Sint Maarten",
    "SZ": "Eswatini",
    "TC": "the Turks and Caicos Islands",
    "TF": "the French Southern Territories",
    "TL": "Timor-Leste",
    "TR": "Türkiye",
    "TT": "Trinidad and Tobago",
    "UM": "the US Minor Outlying Islands",
    "US": "the United States",
    "VA": "Vatican City",
    "VC": "Saint Vincent and the Grenadines",
    "VG": "the British Virgin Islands",
    "VI": "the US Virgin Islands",
    "WF": "Wallis and Futuna",
    "WS": "Samoa",
}

# Other names people use: official English names, short forms, local names.
_ALIASES: dict[str, tuple[str, ...]] = {
    "AE": ("UAE", "Emirates", "الإمارات", "الإمارات العربية المتحدة"),
    "AF": ("افغانستان",),
    "AL": ("Shqipëri", "Shqipëria"),
    "AM": ("Hayastan", "Հայաստան"),
    "AR": ("República Argentina",),
    "AT": ("Österreich", "Oesterreich"),
    "AX": ("Aland", "Aland Islands"),
    "AZ": ("Azərbaycan",),
    "BA": ("Bosnia", "Bosna i Hercegovina"),
    "BD": ("বাংলাদেশ",),
    "BE": ("België", "Belgique", "Belgien"),
    "BG": ("България", "Bulgariya"),
    "BN": ("Brunei Darussalam",),
    "BO": ("Bolivia, Plurinational State of", "Plurinational State of Bolivia"),
    "BR": ("Brasil",),
    "BY": ("Беларусь", "Belarus'", "Byelorussia"),
    "CD": (
        "DRC",
        "DR Congo",
        "Congo-Kinshasa",
        "Democratic Republic of Congo",
        "Congo, the Democratic Republic of the",
        "Zaire",
    ),
    "CG": ("Congo-Brazzaville", "Republic of Congo", "Congo Republic"),
    "CH": ("Schweiz", "Suisse", "Svizzera", "Svizra"),
    "CI": ("Ivory Coast", "Cote d'Ivoire"),
    "CL": ("República de Chile",),
    "CN": ("中国", "Zhongguo", "People's Republic of China", "PRC"),
    "CO": ("República de Colombia",),
    "CV": ("Cabo Verde",),
    "CY": ("Κύπρος", "Kıbrıs"),
    "CZ": ("Czech Republic", "Česko", "Česká republika", "Cesko"),
    "DE": ("Deutschland",),
    "DK": ("Danmark",),
    "DZ": ("Algérie", "الجزائر"),
    "EE": ("Eesti",),
    "EG": ("مصر", "Misr", "Masr"),
    "ES": ("España", "Espana"),
    "FI": ("Suomi",),
    "FM": ("Micronesia, Federated States of", "Federated States of Micronesia"),
    "GB": (
        "UK",
        "U.K.",
        "United Kingdom",
        "Great Britain",
        "Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
    ),
    "GE": ("Sakartvelo", "საქართველო"),
    "GR": ("Greece", "Ελλάδα", "Hellas", "Ellada"),
    "HK": ("香港", "Hong Kong SAR"),
    "HR": ("Hrvatska",),
    "HU": ("Magyarország", "Magyarorszag"),
    "ID": ("Republik Indonesia",),
    "IE": ("Éire", "Eire", "Republic of Ireland"),
    "IL": ("ישראל", "إسرائيل", "Yisrael"),
    "IN": ("Bharat", "भारत", "Hindustan"),
    "IQ": ("العراق",),
    "IR": ("Iran, Islamic Republic of", "Islamic Republic of Iran", "ایران", "Persia"),
    "IS": ("Ísland",),
    "IT": ("Italia",),
    "JO": ("الأردن",),
    "JP": ("日本", "Nihon", "Nippon"),
    "KG": ("Кыргызстан", "Kyrgyz Republic", "Kirghizia"),
    "KH": ("Kampuchea", "កម្ពុជា"),
    "KP": (
        "Democratic People's Republic of Korea",
        "DPRK",
        "Korea, Democratic People's Republic of",
    ),
    "KR": (
        "Korea",
        "Republic of Korea",
        "Korea, Republic of",
        "대한민국",
        "한국",
        "Hanguk",
        "Daehan Minguk",
        "ROK",
    ),
    "KZ": ("Қазақстан", "Казахстан", "Qazaqstan"),
    "LA": ("Lao People's Democratic Republic", "Lao PDR", "ລາວ"),
    "LB": ("لبنان", "Liban"),
    "LK": ("ශ්‍රී ලංකාව", "இலங்கை", "Ceylon"),
    "LT": ("Lietuva",),
    "LU": ("Lëtzebuerg", "Luxemburg"),
    "LV": ("Latvija",),
    "LY": ("ليبيا",),
    "MA": ("Maroc", "المغرب"),
    "MD": ("Moldova, Republic of", "Republic of Moldova"),
    "MK": ("Macedonia", "Северна Македонија", "Republic of North Macedonia"),
    "MM": ("Burma", "မြန်မာ"),
    "MO": ("Macao", "澳門", "澳门"),
    "MX": ("México", "Estados Unidos Mexicanos"),
    "MY": ("Malaysia",),
    "NG": ("Federal Republic of Nigeria", "Naija"),
    "NL": ("Holland", "Nederland"),
    "NO": ("Norge", "Noreg"),
    "NP": ("नेपाल",),
    "NZ": ("Aotearoa",),
    "PE": ("Perú",),
    "PH": ("Pilipinas", "Filipinas"),
    "PK": ("پاکستان",),
    "PL": ("Polska",),
    "PS": ("Palestine, State of", "State of Palestine", "فلسطين"),
    "PT": ("República Portuguesa",),
    "RO": ("România",),
    "RS": ("Србија", "Srbija"),
    "RU": ("Russian Federation", "Россия", "Rossiya", "Российская Федерация"),
    "SA": ("Saudi", "KSA", "السعودية", "المملكة العربية السعودية"),
    "SE": ("Sverige",),
    "SG": ("Singapura", "新加坡", "சிங்கப்பூர்"),
    "SI": ("Slovenija",),
    "SK": ("Slovensko", "Slovak Republic"),
    "SY": ("Syrian Arab Republic", "سوريا"),
    "SZ": ("Swaziland",),
    "TH": ("ประเทศไทย", "Prathet Thai", "Siam"),
    "TJ": ("Тоҷикистон",),
    "TL": ("East Timor", "Timor Leste"),
    "TM": ("Türkmenistan",),
    "TN": ("Tunisie", "تونس"),
    "TR": ("Turkey", "Turkiye", "Republic of Türkiye"),
    "TW": ("台灣", "臺灣", "Taiwan, Province of China"),
    "TZ": ("Tanzania, United Republic of", "United Republic of Tanzania"),
    "UA": ("Україна", "Ukraina", "Украина"),
    "US": ("USA", "U.S.", "U.S.A.", "America", "United States of America"),
    "UZ": ("Oʻzbekiston", "O'zbekiston", "Ўзбекистон", "Узбекистан", "Uzbekiston"),
    "VA": ("Holy See", "Vatican", "Città del Vaticano"),
    "VE": ("Venezuela, Bolivarian Republic of", "Bolivarian Republic of Venezuela"),
    "VN": ("Viet Nam", "Việt Nam"),
    "WS": ("Western Samoa", "Samoa"),
    "YE": ("اليمن",),
    "ZA": ("RSA", "Suid-Afrika", "iNingizimu Afrika", "Mzansi"),
}


def plain(text: str) -> str:
    """A name reduced for matching: case, accents and punctuation gone, no leading "the"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("&", " and "))
    kept = "".join(
        ch if ch.isalnum() else " "
        for ch in decomposed
        if unicodedata.category(ch) not in ("Mn", "Me", "Cf")
    )
    words = kept.split()
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def region_of(language_tag: str | None) -> str | None:
    """The region of a language tag ("en-GB" → "GB", "pt_br" → "BR"), None if it has none."""
    if not language_tag:
        return None
    match = _TAG_REGION.match(language_tag.strip())
    return match.group(1).upper() if match else None


def _zoneinfo_text(name: str) -> str | None:
    """A file of the time zone data: the `tzdata` package's copy, else the system's."""
    try:
        folder = importlib.resources.files("tzdata").joinpath("zoneinfo")
        return folder.joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        pass
    for folder in _SYSTEM_ZONEINFO:
        try:
            return (folder / name).read_text("utf-8")
        except OSError:
            continue
    return None


def _rows(text: str | None) -> Iterator[list[str]]:
    for line in (text or "").splitlines():
        if line.strip() and not line.startswith("#"):
            yield line.split("\t")


@cache
def iso_names() -> dict[str, str]:
    """Every ISO 3166-1 alpha-2 code with iso3166.tab's name for it (empty if unavailable)."""
    return {row[0]: row[1].strip() for row in _rows(_zoneinfo_text("iso3166.tab")) if len(row) > 1}


def display_name(code: str) -> str | None:
    """How to name a country in a sentence ("Bolivia", "the United Kingdom")."""
    code = code.upper()
    return _DISPLAY.get(code) or iso_names().get(code)


def _tab_variants(name: str) -> Iterator[str]:
    """ "Korea (South)" → "Korea South", "South Korea", "Korea"; "St Lucia" → "Saint Lucia"."""
    yield name
    found = re.fullmatch(r"(.+?)\s*\((.+)\)", name)
    if found:
        base, inner = found.group(1), found.group(2)
        yield f"{inner} {base}"
        yield base
    yield from _expand_saint(name)


def _expand_saint(name: str) -> Iterator[str]:
    if name.startswith("St "):
        yield "Saint " + name[3:]
        yield "St. " + name[3:]


@cache
def _index() -> dict[str, str]:
    """Plain name → code. Names two countries share are left out unless an alias claims one."""
    seen: dict[str, set[str]] = {}

    def add(code: str, names: Iterable[str]) -> None:
        for name in names:
            key = plain(name)
            if key:
                seen.setdefault(key, set()).add(code)

    for code, tab in iso_names().items():
        add(code, _tab_variants(tab))
        if code in _DISPLAY:
            add(code, [_DISPLAY[code], *_expand_saint(_DISPLAY[code].removeprefix("the "))])
    index = {key: next(iter(codes)) for key, codes in seen.items() if len(codes) == 1}
    known = set(iso_names())
    for code, names in _ALIASES.items():
        if code in known:
            for name in names:
                if key := plain(name):
                    index[key] = code
    for code in known:
        index[code.casefold()] = code
    return index


def country_code(typed: str) -> str | None:
    """The ISO code a person means by a code or a country's name, in any case or language."""
    key = plain(typed)
    if not key:
        return None
    return _index().get(key)


def all_names() -> dict[str, list[str]]:
    """Every name `country_code` knows, by code (for tests and the operator's checks)."""
    names: dict[str, list[str]] = {}
    for key, code in _index().items():
        names.setdefault(code, []).append(key)
    return names


@cache
def _zone_countries() -> dict[str, str]:
    """Zone name → the one country zone.tab lists it for."""
    return {row[2]: row[0] for row in _rows(_zoneinfo_text("zone.tab")) if len(row) > 2}


@cache
def _shared_zones() -> frozenset[str]:
    """Zones zone1970.tab lists for more than one country (a link to them says little)."""
    return frozenset(
        row[2] for row in _rows(_zoneinfo_text("zone1970.tab")) if len(row) > 2 and "," in row[0]
    )


@cache
def _links() -> dict[str, str]:
    """Old or alternative zone name → the zone it is a link to ("Asia/Calcutta" → Kolkata)."""
    links: dict[str, str] = {}
    for line in (_zoneinfo_text("tzdata.zi") or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    return links


def country_of_zone(timezone: str | None) -> str | None:
    """The country of an IANA time zone ("Europe/Warsaw" → "PL"); None if unknown or shared."""
    if not timezone:
        return None
    zone = timezone.strip()
    found = _zone_countries().get(zone)
    if found:
        return found
    target = _links().get(zone)
    for _ in range(5):  # links to links
        if target is None or target in _shared_zones():
            return None
        if target in _zone_countries():
            return _zone_countries()[target]
        target = _links().get(target)
    return None


def suggest_country(language_tag: str | None, timezone: str | None) -> str | None:
    """A country to offer at onboarding: the language tag's region, else the time zone's."""
    region = region_of(language_tag)
    if region and region in iso_names():
        return region
    return country_of_zone(timezone)
