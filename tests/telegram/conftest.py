"""Telegram tests: the shared `settings` (and so `app`) carry a bot token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import make_settings
from tests.telegram.fakes import TOKEN


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, telegram_bot_token=TOKEN)
