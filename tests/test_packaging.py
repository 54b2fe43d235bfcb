"""What a wheel carries: every package, and the dialogs kindbot finds when DIALOGS_DIR is unset.

The wheel itself is built, installed and run from another folder by `.ci/wheel-check`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import REPO_ROOT, Settings


def test_default_dialogs_hold_the_default_locale_and_the_helplines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIALOGS_DIR", raising=False)
    root = Settings(_env_file=None).dialogs_dir
    assert root.is_dir()
    assert (root / "en" / "messages.yaml").is_file()
    assert len(list((root / "en").glob("*.yaml"))) > 1
    assert (root / "helplines" / "international.yaml").is_file()


def test_dialogs_dir_still_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIALOGS_DIR", str(tmp_path))
    assert Settings(_env_file=None).dialogs_dir == tmp_path


def test_the_wheel_lists_every_package_and_ships_the_dialogs() -> None:
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["tool"][
        "setuptools"
    ]
    on_disk = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for top in ("bot", "storage")
        for init in (REPO_ROOT / top).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk | {"bot.dialogs"}
    assert setuptools["package-dir"] == {"bot.dialogs": "dialogs"}
    shipped = setuptools["package-data"]["bot.dialogs"]
    every_file = {p for p in (REPO_ROOT / "dialogs").rglob("*") if p.is_file()}
    assert every_file == {p for pattern in shipped for p in (REPO_ROOT / "dialogs").glob(pattern)}
