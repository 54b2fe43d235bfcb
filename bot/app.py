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
from bot.engine.core import CORE
from bot.engine.feature import Feature
from bot.engine.runner import Engine
from bot.offload import DatabaseSource, Offload, producer
from bot.reminders.actions import ACTION_NAMES as REMINDER_ACTIONS
from bot.reminders.actions import reminders_feature
from bot.reminders.texts import ReminderTexts
from bot.safety import SAFETY_ACTIONS, Safety, load_safety, safety_feature
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
        "alembic",
        "aiosqlite",
        "sqlalchemy",
        "asyncpg",
        "fpdf",  # /summary's PDF: glyph names, and warnings that quote missing characters
        "fontTools",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # PTB logs whole updates and request parameters (what people wrote) at DEBUG: never that.
    logging.getLogger("telegram").setLevel(max(logging.INFO, logging.getLevelName(level.upper())))


def load_catalog(settings: Settings) -> Catalog:
    return Catalog.load(
        settings.dialogs_dir, default=settings.default_locale, actions=known_actions()
    )


def known_actions() -> set[str]:
    """Every action a dialog may name, known without building the features (which load
    models and texts), so `kindbot dialogs check` validates dialogs on its own."""
    from bot.forget import FORGET_ACTIONS
    from bot.history import HISTORY_ACTIONS
    from bot.summary import SUMMARY_ACTIONS

    return {
        *CORE.actions,
        *HISTORY_ACTIONS,
        *FORGET_ACTIONS,
        *SAFETY_ACTIONS,
        *REMINDER_ACTIONS,
        *SUMMARY_ACTIONS,
    }


def features(
    settings: Settings,
    catalog: Catalog,
    safety: Safety,
    reminder_texts: ReminderTexts,
    offload: Offload,
) -> list[Feature]:
    """Every feature, in the order its hooks run (`Engine.install`).

    Safety comes first, and stays first: its crisis screen reads every message (and every
    command's words, edit and caption) before any other feature or dialog may act on it,
    and its interceptors and offline fallback come before everyone else's.
    """
    from bot.forget import FORGET_ACTIONS
    from bot.history import history_actions

    thresholds = {"high": settings.high_distress_threshold, "low": settings.low_distress_threshold}
    return [
        safety_feature(safety, catalog, checkin_params=thresholds),
        CORE,
        Feature(
            "history",
            actions=history_actions(settings.default_timezone),
            gives_way=frozenset({"history"}),
        ),
        Feature("forget", actions=FORGET_ACTIONS),
        # what helps after a practice that left someone heavier; closes when they move on
        Feature("aftercare", gives_way=frozenset({"aftercare"})),
        # the practice library is a menu: it closes when another dialog is opened
        Feature("practices", gives_way=frozenset({"practices"})),
        Feature("lessons", gives_way=lesson_dialogs(catalog)),
        progress_feature(offload, settings.default_timezone),
        export_feature(offload, settings.default_timezone),
        summary_feature(offload, settings.default_timezone),
        reminders_feature(texts=reminder_texts, default_timezone=settings.default_timezone),
    ]


def lesson_dialogs(catalog: Catalog) -> frozenset[str]:
    """/learn's menu, its lessons and their check-in: every dialog named `learn` or
    `learn_*`, so a writer adds a lesson with a file alone. A lesson is reading, with no
    place worth coming back to (nothing is recorded), so it steps aside when the person opens
    something else, rather than waiting underneath to be offered again when that ends."""
    return frozenset(
        name
        for locale in catalog.locales.values()
        for name in locale.dialogs
        if name == "learn" or name.startswith("learn_")
    )


def progress_feature(offload: Offload, default_zone: str = "UTC") -> Feature:
    """/progress: answered in the step, its chart drawn after it in the offload worker."""
    from bot.progress import CHART, make_chart, progress_command

    return Feature(
        "progress",
        commands={"progress": progress_command(default_zone)},
        producers={CHART: producer(offload, make_chart)},
    )


def export_feature(offload: Offload, default_zone: str = "UTC") -> Feature:
    """/export: answered in the step, the file made after it in the offload worker."""
    from bot.export import EXPORT, export_command, make_export

    return Feature(
        "export",
        commands={"export": export_command(default_zone)},
        producers={EXPORT: producer(offload, make_export)},
    )


def summary_feature(offload: Offload, default_zone: str = "UTC") -> Feature:
    """/summary: the period chosen in its dialog, the files made after the step in the
    offload worker (as the export's are)."""
    from bot.summary import SUMMARY, make_summary, summary_actions

    return Feature(
        "summary",
        actions=summary_actions(default_zone),
        producers={SUMMARY: producer(offload, make_summary)},
    )


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
    db = await Database.open(
        url,
        Cipher.from_string(key),
        schema=schema,
        upgrade="if-new",
        pool_size=settings.database_pool_size,
    )
    offload = Offload(DatabaseSource(url, key, schema))
    try:
        engine = Engine(
            catalog,
            db,
            clock=clock,
            max_text_chars=settings.max_text_chars,
            split_seconds=settings.split_seconds,
            quiet_seconds=settings.quiet_seconds,
        )
        engine.install(features(settings, catalog, safety, reminder_texts, offload))
        yield App(settings, db, catalog, engine, safety)
    finally:
        offload.close()
        safety.assessor.close()
        await db.close()
