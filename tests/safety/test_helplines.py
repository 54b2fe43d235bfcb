"""Helpline files: the schema (verified, hours, sources or unconfirmed, errors with lines), the
display rule for unconfirmed lines, the international emergency numbers, country names for
/country, and the `kindbot helplines` listing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from bot.safety import countries
from bot.safety.helplines import (
    FOLDER,
    Country,
    EmergencyLine,
    Helpline,
    Helplines,
    contact_list,
    describe,
    emergency_of,
    load_helplines,
    region_of,
    resolve_country,
    suggest_country,
)

DIALOGS = REPO_ROOT / "dialogs"
REQUIRED = {"US", "CA", "GB", "IE", "AU", "NZ", "DE", "AT", "CH", "FR", "ES", "IT", "NL", "IN"}
REQUIRED |= {"BR", "MX"}
NEW = {"UA", "PL", "RU", "TR", "ID", "PH", "JP", "KR", "ZA", "NG", "EG", "KZ", "UZ", "BE", "PT"}
NEW |= {"AR", "CO", "CL", "PE", "SG", "IL"}
TEXTS = {
    "helpline_call": "call {number}",
    "helpline_text": "text {number}",
    "helpline_text_keyword": "text {keyword} to {number}",
    "helpline_line": "{name}: {ways}",
    "helpline_or": " or ",
    "helpline_hours": "{line} ({hours})",
    "emergency_unknown": "your local emergency number",
}


def text(key: str, **values: str) -> str:
    """Like the engine's: a key the locale does not have comes back as the key itself."""
    return TEXTS[key].format(**values) if key in TEXTS else key


@pytest.fixture(scope="module")
def helplines() -> Helplines:
    loaded, errors = load_helplines(DIALOGS)
    assert errors == []
    assert loaded is not None
    return loaded


def copy_dialogs(tmp_path: Path) -> Path:
    root = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, root)
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / FOLDER / name
    content = path.read_text(encoding="utf-8")
    assert old in content, (name, old)
    path.write_text(content.replace(old, new, 1), encoding="utf-8")


# -- the files ------------------------------------------------------------------------------------
def test_every_file_parses_and_says_how_far_it_can_be_trusted(helplines: Helplines) -> None:
    assert set(helplines.countries) >= REQUIRED | NEW
    files = {p.stem for p in (DIALOGS / FOLDER).glob("*.yaml")}
    assert files == set(helplines.countries) | {"international"}
    for country in [*helplines.countries.values(), helplines.international]:
        if country.verified:
            assert country.verified_by and country.verified_on, country.code
        else:
            assert country.verified_by is None and country.verified_on is None, country.code
        if country.code != "international":
            assert country.emergency, country.code
            assert country.emergency_sources or country.emergency_unconfirmed, country.code


def test_new_countries_are_unverified_and_named_in_their_own_language(
    helplines: Helplines,
) -> None:
    for code in NEW:
        assert not helplines.get(code).verified, code
    for typed, code in [
        ("Polska", "PL"),
        ("Україна", "UA"),
        ("Türkiye", "TR"),
        ("Россия", "RU"),
        ("日本", "JP"),
        ("대한민국", "KR"),
        ("Pilipinas", "PH"),
        ("Қазақстан", "KZ"),
        ("Oʻzbekiston", "UZ"),
        ("België", "BE"),
        ("Perú", "PE"),
        ("ישראל", "IL"),
        ("مصر", "EG"),
    ]:
        assert helplines.lookup(typed) == code, typed


def test_every_line_has_hours_and_sources_or_says_it_is_unconfirmed(
    helplines: Helplines,
) -> None:
    today = dt.date(2026, 11, 30)
    for country in [*helplines.countries.values(), helplines.international]:
        for line in country.helplines:
            assert line.hours.strip(), (country.code, line.name)
            assert bool(line.sources) != line.unconfirmed, (country.code, line.name)
            for source in line.sources:
                assert source.url.startswith(("https://", "http://"))
                assert source.seen <= today
        for regional in country.emergency_by_region:
            assert bool(regional.sources) != regional.unconfirmed, regional.number


def test_the_known_fixes_are_in(helplines: Helplines) -> None:
    def phones(code: str) -> list[str]:
        return [line.phone or "" for line in helplines.get(code).helplines]

    assert any("113" in p and "0800-0113" in p for p in phones("NL"))
    assert {"0800 111 0 111", "0800 111 0 222", "116 123"} <= set(phones("DE"))
    assert any(p.startswith("111") for p in phones("GB"))  # NHS 111, mental health option
    assert "0800 1111" in phones("GB")  # Childline
    assert helplines.get("IE").emergency == "112 or 999"
    assert any("14416" in p and "1-800-891-4416" in p for p in phones("IN"))
    italy = helplines.get("IT")
    assert italy.emergency == "112"
    general = [line for line in italy.helplines if not line.topics]
    assert general and all("24/7" not in line.hours.replace("not 24/7", "") for line in general)


def test_well_known_numbers(helplines: Helplines) -> None:
    assert helplines.get("US").primary()[0].phone == "988"
    assert helplines.get("gb").primary()[0].phone == "116 123"
    assert helplines.get("AU").emergency == "000"
    assert helplines.get("NZ").emergency == "111"
    assert helplines.get("XX") is helplines.international
    assert helplines.get(None) is helplines.international
    # a category with its own line adds it after the general one
    names = [h.name for h in helplines.get("GB").primary("harm_from_others")]
    assert names == ["Samaritans", "National Domestic Abuse Helpline"]


# -- the display rule -----------------------------------------------------------------------------
def test_an_unconfirmed_line_is_never_shown_alone(helplines: Helplines) -> None:
    for country in [*helplines.countries.values(), helplines.international]:
        for category in (None, "sos", "harm_from_others", "suicide"):
            shown = country.primary(category)
            assert shown, (country.code, category)
            if any(line.unconfirmed for line in shown):
                assert isinstance(shown[0], EmergencyLine), (country.code, category)
        listed = contact_list(country, text)
        if country.unconfirmed_lines:
            first = listed.splitlines()[0]
            assert "Emergency" in first, country.code
            for line in country.unconfirmed_lines:
                assert listed.index(line.name) > listed.index(first)


def test_a_confirmed_general_line_is_preferred_as_primary(helplines: Helplines) -> None:
    for country in helplines.countries.values():
        first = country.primary()[0]
        if any(line.confirmed and not line.topics for line in country.helplines):
            assert first.confirmed and not first.topics, country.code
        else:
            assert isinstance(first, EmergencyLine), country.code


def _with_unconfirmed_primary(helplines: Helplines) -> Country:
    """Poland as if its only general line could not be confirmed."""
    line = Helpline(name="A line", phone="000 000", hours="evenings", unconfirmed=True)
    return dataclasses.replace(helplines.get("PL"), helplines=(line,))


def test_when_the_primary_line_is_unconfirmed_the_emergency_number_comes_first(
    helplines: Helplines,
) -> None:
    poland = _with_unconfirmed_primary(helplines)
    shown = poland.primary()
    assert [type(h) for h in shown] == [EmergencyLine, Helpline]
    assert describe(shown[0], text) == "Emergency services: call 112"
    assert shown[1].phone == "000 000"
    listed = contact_list(poland, text).splitlines()
    assert listed[0] == "• Emergency services: call 112"
    assert "000 000" in listed[1]


def test_a_country_without_any_confirmed_line_shows_its_emergency_number(
    helplines: Helplines,
) -> None:
    uzbekistan = helplines.get("UZ")
    assert uzbekistan.helplines == ()
    assert [describe(h, text) for h in uzbekistan.primary()] == [
        "Emergency services: call 112 or 103 (ambulance)"
    ]
    assert contact_list(uzbekistan, text).startswith("• Emergency services: call 112")
    turkey = helplines.get("TR")
    assert isinstance(turkey.primary("sos")[0], EmergencyLine)
    assert contact_list(turkey, text).startswith("• Emergency services: call 112")


def test_a_locale_may_word_unconfirmed_lines_and_the_emergency_line(
    helplines: Helplines,
) -> None:
    poland = _with_unconfirmed_primary(helplines)
    words = {
        **TEXTS,
        "helpline_unconfirmed": "{line} - not yet confirmed",
        "emergency_line_name": "Notruf",
    }

    def worded(key: str, **values: str) -> str:
        return words[key].format(**values) if key in words else key

    shown = [describe(h, worded) for h in poland.primary()]
    assert shown[0] == "Notruf: call 112"
    assert shown[1].endswith("- not yet confirmed")


# -- the international list -----------------------------------------------------------------------
def test_the_international_list_shows_emergency_numbers(helplines: Helplines) -> None:
    world = helplines.international
    numbers = {r.number for r in world.emergency_by_region}
    assert {"112", "911", "999", "000", "111", "119", "110"} <= numbers
    short = emergency_of(world, text)
    assert short.startswith("your local emergency number (")
    assert "112 in Europe" in short and "911 in North America" in short
    assert "000 in Australia" in short
    assert len(short) < 120  # fits a first crisis message
    listed = contact_list(world, text)
    assert listed.startswith("• Emergency numbers:")
    for number in numbers:
        assert f"  {number}: " in listed
    assert "findahelpline.com" in listed and "befrienders.org" in listed


def test_a_country_file_quotes_its_own_emergency_number(helplines: Helplines) -> None:
    assert emergency_of(helplines.get("GB"), text) == "999"
    assert emergency_of(helplines.get("pl"), text) == "112"


# -- schema errors, with lines --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "old", "new", "fragment"),
    [
        ("GB.yaml", "verified: false\n", "", "verified"),
        ("GB.yaml", "verified: false\n", "verified: soon\n", "verified"),
        ("GB.yaml", "verified: false\n", "verified: true\n", "verified_by"),
        (
            "GB.yaml",
            "verified: false\n",
            "verified: true\nverified_by: Ana\n",
            "verified_on",
        ),
        (
            "GB.yaml",
            "verified: false\n",
            "verified: false\nverified_by: Ana\nverified_on: 2026-11-30\n",
            "only for a checked file",
        ),
        (
            "GB.yaml",
            "verified: false\n",
            "verified: false\nlast_checked: 2026-11-25\n",
            "last_checked",
        ),
        ("GB.yaml", '    hours: "24/7"\n', "", "hours"),
        (
            "GB.yaml",
            '    hours: "24/7"\n',
            '    hours: "24/7"\n    hours: always\n',
            "duplicate key",
        ),
        (
            "GB.yaml",
            "    website: https://www.samaritans.org\n",
            "    website: www.samaritans.org\n",
            "website",
        ),
        ("GB.yaml", "country: GB\n", "country: UK\n", "must be named after"),
        ("GB.yaml", "    seen: 2026-11-30\n", "    seen: recently\n", "seen"),
        ("GB.yaml", "  - url: https://www.samaritans.org/", "  - url: samaritans", "url"),
        ("GB.yaml", 'emergency: "999"\n', "", "emergency number"),
        (
            "GB.yaml",
            "emergency_source:\n",
            "emergency_unconfirmed: true\nemergency_source:\n",
            "unconfirmed",
        ),
        ("AT.yaml", "    unconfirmed: true\n", "", "sources"),
        (
            "AT.yaml",
            "    unconfirmed: true\n",
            "    unconfirmed: true\n    sources:\n"
            "      - {url: https://example.org, seen: 2026-11-30}\n",
            "unconfirmed: true means no sources",
        ),
        (
            "international.yaml",
            '    short: "Europe"\n',
            '    short: "Europe"\n    extra: 1\n',
            "extra",
        ),
    ],
)
def test_helpline_file_errors_name_the_line(
    tmp_path: Path, name: str, old: str, new: str, fragment: str
) -> None:
    root = copy_dialogs(tmp_path)
    edit(root, name, old, new)
    loaded, errors = load_helplines(root)
    assert loaded is None
    assert any(fragment in e.message and e.file.endswith(name) and e.line > 0 for e in errors), [
        str(e) for e in errors
    ]


def test_an_error_points_at_the_helpline_it_is_about(tmp_path: Path) -> None:
    root = copy_dialogs(tmp_path)
    lines = (root / FOLDER / "AT.yaml").read_text(encoding="utf-8").splitlines()
    rat = next(i for i, line in enumerate(lines, 1) if "Rat auf Draht" in line)
    edit(root, "AT.yaml", "    unconfirmed: true\n", "")
    _, errors = load_helplines(root)
    assert any(e.line == rat and "helplines.1" in e.message for e in errors), errors


def test_an_unconfirmed_line_needs_an_emergency_number(tmp_path: Path) -> None:
    root = copy_dialogs(tmp_path)
    (root / FOLDER / "XY.yaml").write_text(
        "country: XY\nname: Nowhere\nverified: false\nhelplines:\n"
        '  - {name: A line, phone: "123", hours: "24/7", unconfirmed: true}\n',
        encoding="utf-8",
    )
    _, errors = load_helplines(root)
    assert any(
        "only shown beside the emergency number" in str(e) and "XY.yaml:" in str(e) for e in errors
    ), errors


def test_a_helpline_needs_a_way_to_reach_it(tmp_path: Path) -> None:
    root = copy_dialogs(tmp_path)
    edit(root, "MX.yaml", '    phone: "800 911 2000"\n', "")
    _, errors = load_helplines(root)
    assert any("a phone, a text line or a website" in str(e) for e in errors)


def test_a_verified_file_loads(tmp_path: Path) -> None:
    root = copy_dialogs(tmp_path)
    edit(
        root,
        "GB.yaml",
        "verified: false\n",
        "verified: true\nverified_by: Ana Example\nverified_on: 2026-12-01\n",
    )
    loaded, errors = load_helplines(root)
    assert errors == [] and loaded is not None
    britain = loaded.get("GB")
    assert britain.verified and britain.verified_by == "Ana Example"
    assert britain.verified_on == dt.date(2026, 12, 1)


# -- country names --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("UK", "GB"),
        ("gb", "GB"),
        ("England", "GB"),
        ("scotland", "GB"),
        ("Wales", "GB"),
        ("Northern Ireland", "GB"),
        ("United Kingdom", "GB"),
        ("the UK", "GB"),
        ("USA", "US"),
        ("America", "US"),
        ("the United States", "US"),
        ("u.s.", "US"),
        ("germany", "DE"),
        ("Deutschland", "DE"),
        ("Österreich", "AT"),
        ("de", "DE"),
        ("Poland", "PL"),
        ("polska", "PL"),
        ("PL", "PL"),
        ("Bolivia", "BO"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d’Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("south korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("North Korea", "KP"),
        ("Czech Republic", "CZ"),
        ("Antigua & Barbuda", "AG"),
        ("Saint Lucia", "LC"),
        ("Burma", "MM"),
        ("Turkey", "TR"),
        ("Viet Nam", "VN"),
        ("Atlantis", None),
        ("", None),
        ("XX", None),
        ("Congo", None),  # two countries: ask for the full name
    ],
)
def test_countries_are_found_by_code_name_or_alias(
    helplines: Helplines, typed: str, code: str | None
) -> None:
    assert helplines.lookup(typed) == code


def test_every_iso_country_round_trips(helplines: Helplines) -> None:
    table = countries.iso_names()
    assert len(table) >= 249
    for code, tab_name in table.items():
        assert helplines.lookup(code) == code, code
        assert helplines.lookup(code.lower()) == code, code
        assert helplines.lookup(tab_name) == code, tab_name
        name = helplines.name_of(code)
        assert name and name != code, code
        assert helplines.lookup(name) == code, name
        assert helplines.lookup(name.upper()) == code, name


def test_every_alias_points_at_its_own_country() -> None:
    assert countries.all_names()["PL"]
    for code, aliases in countries._ALIASES.items():
        assert code in countries.iso_names(), code
        for alias in aliases:
            assert countries.country_code(alias) == code, alias


def test_names_for_the_flow(helplines: Helplines) -> None:
    assert helplines.name_of("bo") == "Bolivia"
    assert helplines.name_of("GB") == "the United Kingdom"
    assert helplines.name_of("PL") == "Poland"
    assert helplines.name_of("KR") == "South Korea"
    assert helplines.name_of("CI") == "Côte d'Ivoire"
    assert helplines.name_of("XX") == "XX"
    assert not helplines.known("BO")


# -- which country --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tag", "region"),
    [
        ("en-GB", "GB"),
        ("pt-br", "BR"),
        ("pt_BR", "BR"),
        ("en", None),
        ("zh-Hant-TW", "TW"),
        (None, None),
        ("", None),
        ("english", None),
    ],
)
def test_region_of_a_language_tag(tag: str | None, region: str | None) -> None:
    assert region_of(tag) == region


def test_country_resolution_order() -> None:
    assert resolve_country("ie", "en-GB", "US") == "IE"
    assert resolve_country(None, "en-GB", "US") == "GB"
    assert resolve_country(None, "en", "us") == "US"
    assert resolve_country(None, None, None) is None


@pytest.mark.parametrize(
    ("tag", "zone", "expected"),
    [
        ("en-GB", "Europe/Warsaw", "GB"),  # the language tag's region first
        ("pl", "Europe/Warsaw", "PL"),
        (None, "America/Argentina/Buenos_Aires", "AR"),
        (None, "Asia/Calcutta", "IN"),  # an old name, linked to Asia/Kolkata
        (None, "Europe/Kiev", "UA"),
        (None, "Europe/Oslo", "NO"),
        (None, "Arctic/Longyearbyen", "SJ"),
        (None, "Atlantic/Jan_Mayen", None),  # a link to a zone several countries share
        ("en", "UTC", None),
        ("en-XA", None, None),  # not a country
        (None, "Mars/Olympus", None),
        (None, None, None),
    ],
)
def test_suggest_country(tag: str | None, zone: str | None, expected: str | None) -> None:
    assert suggest_country(tag, zone) == expected


# -- kindbot helplines ----------------------------------------------------------------------------
def test_kindbot_helplines_lists_everything_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["helplines", "--dir", str(DIALOGS)]) == 0
    out = capsys.readouterr().out
    assert "PL            Poland - UNVERIFIED" in out
    assert "Samaritans: 116 123 - 24/7 [3 source(s)]" in out
    assert "Rat auf Draht (children and young people): 147" in out
    assert "UNCONFIRMED" in out
    assert "emergency 112 (the EU" in out  # the international list
    assert "unverified" in out.splitlines()[-1]
    assert main(["helplines", "--dir", str(DIALOGS), "--require-verified"]) == 1


def test_kindbot_helplines_flags_an_old_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    root = copy_dialogs(tmp_path)
    edit(
        root,
        "GB.yaml",
        "verified: false\n",
        "verified: true\nverified_by: Ana Example\nverified_on: 2020-01-01\n",
    )
    assert main(["helplines", "--dir", str(root)]) == 1
    captured = capsys.readouterr()
    assert "verified by Ana Example on 2020-01-01" in captured.out
    assert "not verified for over 365 days" in captured.err


def test_kindbot_helplines_reports_file_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    root = copy_dialogs(tmp_path)
    edit(root, "GB.yaml", "verified: false\n", "")
    assert main(["helplines", "--dir", str(root)]) == 1
    assert "GB.yaml:" in capsys.readouterr().err


def test_dialogs_check_reports_safety_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    root = copy_dialogs(tmp_path)
    edit(root, "PL.yaml", "verified: false\n", "verified: maybe\n")
    assert main(["dialogs", "check", "--dir", str(root)]) == 1
    assert "PL.yaml:" in capsys.readouterr().out
