"""Telegram tests: the shared `settings` (and so `app`) carry a bot token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.botapi import TOKEN
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, telegram_bot_token=TOKEN)
