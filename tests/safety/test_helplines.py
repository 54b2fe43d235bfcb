"""Helpline files: every one parses, has a last-checked date; country resolution."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from bot.safety.helplines import FOLDER, load_helplines, region_of, resolve_country

DIALOGS = REPO_ROOT / "dialogs"
REQUIRED = {
    "US",
    "CA",
    "GB",
    "IE",
    "AU",
    "NZ",
    "DE",
    "AT",
    "CH",
    "FR",
    "ES",
    "IT",
    "NL",
    "IN",
    "BR",
    "MX",
}


def test_every_country_file_parses_and_has_a_last_checked_date() -> None:
    helplines, errors = load_helplines(DIALOGS)
    assert errors == []
    assert helplines is not None
    assert set(helplines.countries) >= REQUIRED
    files = {p.stem for p in (DIALOGS / FOLDER).glob("*.yaml")}
    assert files == set(helplines.countries) | {"international"}
    for country in [*helplines.countries.values(), helplines.international]:
        assert isinstance(country.last_checked, dt.date), country.code
        assert country.helplines, country.code
        # the first (primary) line is a general crisis line, reachable by phone or text
        primary = country.primary()[0]
        assert not primary.topics
        if country.code != "international":
            assert country.emergency, country.code
            assert primary.phone or primary.text, country.code


def test_well_known_numbers() -> None:
    helplines, _ = load_helplines(DIALOGS)
    assert helplines is not None
    assert helplines.get("US").primary()[0].phone == "988"
    assert helplines.get("gb").primary()[0].phone == "116 123"
    assert helplines.get("AU").emergency == "000"
    assert helplines.get("NZ").emergency == "111"
    assert helplines.get("XX") is helplines.international
    assert helplines.get(None) is helplines.international
    # a category with its own line adds it after the general one
    names = [h.name for h in helplines.get("GB").primary("harm_from_others")]
    assert names == ["Samaritans", "National Domestic Abuse Helpline"]


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
    ("old", "new", "fragment"),
    [
        ("last_checked: 2026-11-25\n", "", "last_checked"),
        ("last_checked: 2026-11-25\n", "last_checked: soon\n", "last_checked"),
        (
            "    website: https://www.samaritans.org\n",
            "    website: www.samaritans.org\n",
            "website",
        ),
        ("country: GB\n", "country: UK\n", "must be named after"),
        ("    hours: 24/7\n", "    hours: 24/7\n    hours: always\n", "duplicate key"),
    ],
)
def test_helpline_file_errors_name_the_line(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    root = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, root)
    path = root / FOLDER / "GB.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    helplines, errors = load_helplines(root)
    assert helplines is None
    messages = [str(e) for e in errors]
    assert any(fragment in m and "GB.yaml:" in m for m in messages), messages


def test_a_helpline_needs_a_way_to_reach_it(tmp_path: Path) -> None:
    root = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, root)
    path = root / FOLDER / "MX.yaml"
    text = path.read_text(encoding="utf-8").replace('    phone: "800 911 2000"\n', "")
    path.write_text(text, encoding="utf-8")
    _, errors = load_helplines(root)
    assert any("a phone, a text line or a website" in str(e) for e in errors)


def test_kindbot_helplines_lists_dates(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["helplines", "--dir", str(DIALOGS)]) == 0
    out = capsys.readouterr().out
    assert "GB            checked" in out
    assert "Samaritans: 116 123" in out
    assert main(["helplines", "--dir", str(DIALOGS), "--max-age", "-1"]) == 1


def test_dialogs_check_reports_safety_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    root = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, root)
    path = root / "en" / "crisis_patterns.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"kms"', '"(kms"'), "utf-8")
    assert main(["dialogs", "check", "--dir", str(root)]) == 1
    assert "crisis_patterns.yaml:" in capsys.readouterr().out


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
        ("Atlantis", None),
        ("", None),
        ("PL", None),
    ],
)
def test_countries_are_found_by_code_name_or_alias(typed: str, code: str | None) -> None:
    helplines, errors = load_helplines(REPO_ROOT / "dialogs")
    assert errors == []
    assert helplines is not None
    assert helplines.lookup(typed) == code
