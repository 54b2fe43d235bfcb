"""The PTB Application built from settings, and `kindbot run` (polling or webhook).

The Application is plain PTB: a per-person ordered update processor, the routing table from
`handlers`, an error handler. It takes an optional `BaseRequest` so tests and the benchmark
drive the real thing offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from telegram import Bot, BotCommand
from telegram.error import BadRequest, InvalidToken
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ContextTypes,
    ExtBot,
    JobQueue,
)
from telegram.request import BaseRequest

from bot import metrics
from bot.app import App, open_app
from bot.config import Settings
from bot.engine.catalog import Catalog
from bot.monitoring import MonitoringServer
from bot.reminders.dispatcher import start_dispatcher
from bot.telegram.errors import Delivery
from bot.telegram.handlers import Handlers, routes
from bot.telegram.ordering import PerUserOrder
from bot.telegram.polling import Poller, PollingRefused
from bot.telegram.reminder_sender import TelegramSender
from bot.telegram.render import Renderer
from bot.telegram.replies import ReplySender
from bot.telegram.transport import LeanRequest
from bot.telegram.webhook import WebhookServer
from storage.db import Database

log = logging.getLogger(__name__)

TgApplication = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]

_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{30,}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
CORE_COMMANDS = ("start", "help", "cancel")
# The command menu's order: what helps in a hard moment first (a reframe, a check-in, crisis
# contacts), the rest after, and deleting everything last. A command not named here goes
# between the two lists. /help (messages.yaml) lists them in this order too (a test checks).
MENU_FIRST = (
    "reframe",
    "checkin",
    "sos",
    "breathe",
    "grounding",
    "practices",
    "learn",
    "reflect",
    "journal",
    "safetyplan",
    "reminders",
    "history",
    "progress",
    "summary",
    "export",
    "country",
    "settings",
)
MENU_LAST = ("help", "start", "cancel", "forget")


def menu_position(command: str) -> int:
    """Where a command sits in the menu (see MENU_FIRST and MENU_LAST)."""
    if command in MENU_FIRST:
        return MENU_FIRST.index(command)
    if command in MENU_LAST:
        return len(MENU_FIRST) + 1 + MENU_LAST.index(command)
    return len(MENU_FIRST)


REPLIES = "kindbot.replies"  # bot_data key: the handlers' ReplySender


class StartupProblem(Exception):
    """A setting kindbot cannot run Telegram with; the message is one line for the operator."""


def bot_token(settings: Settings) -> str:
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    if not token:
        raise StartupProblem(
            "TELEGRAM_BOT_TOKEN is not set (get one from @BotFather and put it in .env); "
            "`kindbot chat` works without one"
        )
    if not _TOKEN.match(token.strip()):
        raise StartupProblem(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (expected digits, a colon "
            "and the secret part, as @BotFather gives it)"
        )
    return token.strip()


def webhook_secret(settings: Settings) -> str:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not _SECRET.match(secret):
        raise StartupProblem(
            "WEBHOOK_URL is set, so WEBHOOK_SECRET is required: 1-256 characters "
            "from A-Z, a-z, 0-9, _ and -"
        )
    return secret


def build_application(
    app: App,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    delivery: Delivery | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    processor: BaseUpdateProcessor | None = None,
) -> TgApplication:
    """The Application for this kindbot, not yet initialized.

    `processor` replaces the per-person ordered one (only to show, in tests, why it exists).
    """
    # PTB 22 warns on every `retry_after` read unless timedeltas are opted into.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    settings = app.settings
    builder = (
        ApplicationBuilder()
        .token(bot_token(settings))
        .concurrent_updates(processor or PerUserOrder(settings.telegram_max_concurrent))
        .updater(None)  # updates come from `polling` or `webhook`, confirmed once handled
    )
    if settings.telegram_api_url:
        root = settings.telegram_api_url.rstrip("/")
        builder = builder.base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
    # The lean request class: PTB's stock one was most of a worker's CPU (bot/telegram/transport.py)
    builder = builder.request(request or LeanRequest(pool_size=256))
    builder = builder.get_updates_request(updates_request or LeanRequest(pool_size=1))
    application = builder.build()
    renderer = Renderer(application.bot, delivery or Delivery(), sleep=sleep)
    handlers = Handlers(app, renderer)
    for handler in routes(handlers):
        application.add_handler(handler)
    application.add_error_handler(handlers.on_error)
    application.bot_data[REPLIES] = handlers.replies
    return application


def sender_of(application: TgApplication) -> ReplySender:
    """The sender of outbox replies that this Application's handlers use."""
    replies = application.bot_data[REPLIES]
    assert isinstance(replies, ReplySender)
    return replies


def bot_commands(catalog: Catalog, locale: str, code: Iterable[str] = ()) -> list[BotCommand]:
    """The command menu in the locale's words: dialog commands (their `description`),
    commands answered by code (their `command_<name>` message), /start, /help and /cancel,
    in `menu_position` order."""
    texts = catalog.locale(locale)
    commands = [BotCommand("start", texts.message("command_start"))]
    for command, dialog in catalog.command_dialogs(locale).items():
        machine = catalog.dialog(dialog, locale)
        if machine is None or command in CORE_COMMANDS:
            continue
        description = machine.spec.description or machine.spec.title
        commands.append(BotCommand(command, description[:256]))
    for command in code:
        key = f"command_{command}"
        if command in CORE_COMMANDS:
            continue
        if key not in texts.messages:
            log.warning("/%s has no %s message; left out of the command menu", command, key)
            continue
        commands.append(BotCommand(command, texts.message(key)[:256]))
    commands.append(BotCommand("help", texts.message("command_help")))
    commands.append(BotCommand("cancel", texts.message("command_cancel")))
    # stable: commands at the same position keep the catalog's order
    return sorted(commands, key=lambda c: menu_position(c.command))


async def register_commands(bot: Bot, catalog: Catalog, code: Iterable[str] = ()) -> None:
    """setMyCommands for the default locale, and per language for every other locale."""
    code = sorted(code)
    await bot.set_my_commands(bot_commands(catalog, catalog.default, code))
    for locale in catalog.locales:
        if locale != catalog.default:
            await bot.set_my_commands(bot_commands(catalog, locale, code), language_code=locale)


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the bot until `stop` is set (or SIGINT/SIGTERM): polling, or a webhook server.

    Either way an update is confirmed to Telegram only after it was handled (see `polling`
    and `webhook`); on stop, what is running finishes first."""
    bot_token(settings)  # fail before touching the database
    secret = webhook_secret(settings) if settings.webhook_url else None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with open_app(settings) as app:
        application = build_application(app)
        try:
            await application.initialize()
        except InvalidToken:
            raise StartupProblem("Telegram does not accept TELEGRAM_BOT_TOKEN") from None
        try:
            await register_commands(application.bot, app.catalog, app.engine.commands)
            await application.start()
            replies = sender_of(application)
            budget = replies.renderer.delivery.budget  # one budget: replies first
            reminders = start_dispatcher(
                app.db,
                app.engine,
                TelegramSender(application.bot, budget),
                settings,
                spent_elsewhere=budget.recent_urgent,
            )
            # Replies a previous process left unsent go out before any update is fetched (a
            # redelivered update then finds its reply sent). A poller is Telegram's only
            # consumer of this bot's updates, and SQLite serves one process: everything
            # unsent is ours. Webhook workers on PostgreSQL may run side by side: each holds
            # a lock the server frees when it dies, and only a dead worker's replies (or
            # lapsed leases) are taken over.
            outbox = app.engine.outbox
            outbox.exclusive = not settings.webhook_url or not app.db.is_postgres
            await outbox.hold()
            sent = await replies.flush(force=outbox.exclusive)
            if sent:
                log.info("sent %d repl%s left unsent", sent, "y" if sent == 1 else "ies")
            sweeper = asyncio.ensure_future(replies.sweep())
            # Everything loaded so far (the crisis screen's model, dialogs, libraries) lives as
            # long as the process: keep it out of the garbage collector's full passes, which
            # otherwise stop every reply for tens of milliseconds (bench/stall.py).
            gc.freeze()
            source = update_source(application, settings, secret, app.db)
            metrics.describe(
                database=app.db.engine.dialect.name,
                mode="polling" if isinstance(source, Poller) else "webhook",
            )
            monitor = start_monitoring(app.db, settings)
            try:
                await _start(source, settings)
                await _until_stopped(stop, source)
                log.info("stopping")
            finally:
                await source.stop()
                # exercises still pacing out: their rest at once, before the outbox is let go
                await replies.idle(hurry=True)
                if monitor is not None:
                    await monitor.stop()
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                await outbox.release()
                await reminders.stop()
                await application.stop()
        finally:
            await application.shutdown()


def update_source(
    application: TgApplication, settings: Settings, secret: str | None, db: Database | None = None
) -> Poller | WebhookServer:
    """Where updates come from: a webhook server when WEBHOOK_URL is set, else polling.

    Given `db`, the webhook server also answers /healthz and /metrics."""
    if not settings.webhook_url:
        return Poller(application)
    assert secret is not None
    return WebhookServer(
        application,
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        path=urlsplit(settings.webhook_url).path,
        secret=secret,
        url=settings.webhook_url,
        max_connections=min(100, settings.telegram_max_concurrent),  # Telegram's maximum
        monitoring=db,
    )


def start_monitoring(db: Database, settings: Settings) -> MonitoringServer | None:
    """In polling mode, /healthz and /metrics on METRICS_HOST:METRICS_PORT (0: none).

    A port already taken is one warning and the bot runs on without them: a second bot on
    the same machine, or a test run beside a live bot, should not stop replying to people
    for the sake of its metrics. The probe that then fails says the rest."""
    if settings.webhook_url or not settings.metrics_port:
        return None  # the webhook server serves them, or the operator turned them off
    server = MonitoringServer(db, host=settings.metrics_host, port=settings.metrics_port)
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        server.start()
    except OSError as exc:
        log.warning(
            "cannot serve /healthz and /metrics on %s (%s): running without them; "
            "change METRICS_HOST or METRICS_PORT (0 turns them off)",
            where,
            exc.strerror or type(exc).__name__,
        )
        return None
    log.info("/healthz and /metrics on %s:%d", settings.metrics_host, server.port)
    return server


async def _start(source: Poller | WebhookServer, settings: Settings) -> None:
    if isinstance(source, Poller):
        await source.start()
        log.info("polling for updates")
        return
    try:
        await source.start()
    except OSError as exc:
        where = f"{settings.webhook_listen}:{settings.webhook_port}"
        raise StartupProblem(
            f"cannot listen on {where} ({exc.strerror or type(exc).__name__}): "
            "change WEBHOOK_LISTEN or WEBHOOK_PORT"
        ) from None
    except BadRequest as exc:
        raise StartupProblem(f"Telegram does not accept WEBHOOK_URL: {exc.message}") from None
    log.info("webhook listening on %s:%d", settings.webhook_listen, source.port)


async def _until_stopped(stop: asyncio.Event, source: Poller | WebhookServer) -> None:
    """Wait for `stop`; polling that Telegram refuses ends the wait with one line for the
    operator."""
    if not isinstance(source, Poller):
        await stop.wait()
        return
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopping, source.task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if source.task.done() and not source.task.cancelled():
        try:
            source.task.result()
        except PollingRefused as exc:
            raise StartupProblem(str(exc)) from None
