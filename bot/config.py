"""Typed settings, read from the environment and `.env` (see `.env.example`).

Settings are built explicitly (never at import time) so tests can make their own.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything an operator can configure; each field is documented in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    dialogs_dir: Path = REPO_ROOT / "dialogs"
    default_locale: str = "en"
    encryption_key: str | None = None
    log_level: str = "INFO"
    max_text_chars: int = Field(default=1000, ge=50, le=4000)

    # Telegram (`kindbot run`); checked when the bot starts, so `kindbot chat` needs none.
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    telegram_max_concurrent: int = Field(default=256, ge=1, le=100_000)

    def resolved_database_url(self) -> str:
        """The database to use: `DATABASE_URL`, else a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'kindbot.db'}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "kindbot.key"
