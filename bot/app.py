"""Assembling kindbot from settings: database, dialogs, engine. Shared by every adapter."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from pythonjsonlogger.json import JsonFormatter

from bot.config import Settings
from bot.engine.catalog import Catalog
from bot.engine.runner import CORE_ACTIONS, Action, CommandHandler, Engine, Producer
from bot.offload import DatabaseSource, Offload
from bot.reminders.actions import ACTION_NAMES as REMINDER_ACTIONS
from bot.reminders.actions import install as install_reminders
from bot.reminders.texts import ReminderTexts
from bot.safety import SAFETY_ACTIONS, Safety, install, load_safety
from storage.crypto import Cipher, load_or_create_key
from storage.db import Database
from storage.models import utcnow


@dataclass
class App:
    settings: Settings
    db: Database
    catalog: Catalog
    engine: Engine
    safety: Safety | None = None


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log format and level; called by the command line only, never at import.

    `fmt="json"` writes one JSON object per line (time, level, logger, message) through
    python-json-logger, for log collectors; the messages are the same content-free lines.
    """
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # Libraries that would log SQL parameters or raw updates stay at WARNING.
    for noisy in (
        "httpx",
        "transitions",
        "alembic.runtime.migration",
        "aiosqlite",
        "sqlalchemy",
        "asyncpg",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # PTB logs whole updates and request parameters (what people wrote) at DEBUG: never that.
    logging.getLogger("telegram").setLevel(max(logging.INFO, logging.getLevelName(level.upper())))


def load_catalog(settings: Settings) -> Catalog:
    return Catalog.load(
        settings.dialogs_dir, default=settings.default_locale, actions=known_actions()
    )


def all_actions() -> dict[str, Action]:
    from bot.forget import FORGET_ACTIONS
    from bot.history import HISTORY_ACTIONS

    return {**CORE_ACTIONS, **HISTORY_ACTIONS, **FORGET_ACTIONS}


def known_actions() -> set[str]:
    return set(all_actions()) | SAFETY_ACTIONS | REMINDER_ACTIONS


def all_commands() -> dict[str, CommandHandler]:
    """Slash commands answered by code rather than by a dialog."""
    from bot.export import send_export
    from bot.progress import show_progress

    return {"progress": show_progress, "export": send_export}


def all_producers(offload: Offload) -> dict[str, Producer]:
    """What makes each kind of `Later` output (charts, exports), after the step commits."""
    from bot.export import EXPORT, make_export
    from bot.offload import producer
    from bot.progress import CHART, make_chart

    return {CHART: producer(offload, make_chart), EXPORT: producer(offload, make_export)}


@asynccontextmanager
async def open_app(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow, schema: str | None = None
) -> AsyncIterator[App]:
    """Open the database (migrating it), load and validate dialogs, build the engine."""
    catalog = load_catalog(settings)
    safety = load_safety(
        settings.dialogs_dir,
        default=settings.default_locale,
        default_country=settings.default_country,
        semantic=settings.semantic_screen,
    )
    reminder_texts = ReminderTexts.load(settings.dialogs_dir, default=settings.default_locale)
    key = load_or_create_key(settings.encryption_key, settings.key_file)
    url = settings.resolved_database_url()
    db = await Database.open(url, Cipher.from_string(key), schema=schema, upgrade="if-new")
    offload = Offload(DatabaseSource(url, key, schema))
    try:
        engine = Engine(catalog, db, clock=clock, max_text_chars=settings.max_text_chars)
        engine.actions.update(all_actions())
        engine.commands.update(all_commands())
        engine.producers.update(all_producers(offload))
        engine.gives_way.add("history")
        install(
            engine,
            safety,
            checkin_params={
                "high": settings.high_distress_threshold,
                "low": settings.low_distress_threshold,
            },
        )
        install_reminders(engine, texts=reminder_texts, default_timezone=settings.default_timezone)
        yield App(settings, db, catalog, engine, safety)
    finally:
        offload.close()
        safety.assessor.close()
        await db.close()
