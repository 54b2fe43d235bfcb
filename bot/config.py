"""Typed settings, read from the environment and `.env` (see `.env.example`).

Settings are built explicitly (never at import time) so tests can make their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def shipped_dialogs() -> Path:
    """The dialogs installed with the package (a wheel), else this checkout's `dialogs/`."""
    installed = Path(__file__).resolve().parent / "dialogs"
    return installed if installed.is_dir() else REPO_ROOT / "dialogs"


class Settings(BaseSettings):
    """Everything an operator can configure; each field is documented in `.env.example`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    # PostgreSQL connections kept open per process (as many again may be opened for a burst).
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    dialogs_dir: Path = Field(default_factory=shipped_dialogs)
    default_locale: str = "en"
    encryption_key: str | None = None
    log_level: str = "INFO"
    # "text" for people reading a terminal; "json" (one object per line) for log collectors.
    log_format: Literal["text", "json"] = "text"
    max_text_chars: int = Field(default=1000, ge=50, le=4000)
    # Messages this close together while a question is open are one answer (0: never joined).
    split_seconds: float = Field(default=4.0, ge=0, le=60)
    # At most one correction per question in this many seconds (0: every wrong answer).
    quiet_seconds: float = Field(default=5.0, ge=0, le=60)
    # Crisis contacts for people whose country is unknown (ISO code; unset: international).
    default_country: str | None = Field(default=None, pattern=r"^([A-Za-z]{2})?$")
    # The crisis screen's semantic layer (a multilingual model, see bot/safety/semantic.py).
    # Off only on purpose: the bot then says at every start that it screens on patterns only.
    semantic_screen: bool = True
    # Check-in bands: at or above `high` → grounding first; at or below `low` → low band.
    high_distress_threshold: int = Field(default=7, ge=1, le=10)
    low_distress_threshold: int = Field(default=3, ge=0, le=9)

    # Telegram (`kindbot run`); checked when the bot starts, so `kindbot chat` needs none.
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    telegram_max_concurrent: int = Field(default=256, ge=1, le=100_000)
    # /healthz and /metrics (bot/monitoring.py). With a webhook they are served by the
    # webhook server; in polling mode by a small server on this address (port 0: none).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)

    default_timezone: str = "UTC"
    reminder_rate_limit: float = Field(default=25.0, ge=0)
    reminder_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    reminder_lease_seconds: float = Field(default=120.0, ge=5)
    reminder_max_attempts: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _bands_in_order(self) -> Settings:
        if self.low_distress_threshold >= self.high_distress_threshold:
            raise ValueError("LOW_DISTRESS_THRESHOLD must be below HIGH_DISTRESS_THRESHOLD")
        return self

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (KeyError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Berlin)") from None
        return value

    def resolved_database_url(self) -> str:
        """The database to use: `DATABASE_URL`, else a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'kindbot.db'}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "kindbot.key"
