"""A command-line test's environment: only the settings the test sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import REPO_ROOT, Settings


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No setting from the caller's environment or a .env file; DATA_DIR in `tmp_path`.

    Returns DATA_DIR (not made: kindbot makes it)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIALOGS_DIR", str(REPO_ROOT / "dialogs"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
