"""`kindbot doctor`: what would stop kindbot, or quietly weaken it, found before it starts.

Every check only reads: nothing is created, migrated or rewritten (SQLite is opened
read-only), so the doctor is safe before a first start and beside a running bot. Each
finding is one line, and a problem's line says what to do.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.config import Settings
from bot.reminders import store
from storage.crypto import Cipher, WrongKeyError, pending_key_file
from storage.db import DatabaseProblem, key_reads
from storage.files import mode_of, too_open
from storage.models import ReminderSchedule, utcnow
from storage.readonly import ReadonlyDatabase, shown_url, sqlite_files

HELPLINE_MAX_AGE_DAYS = 365  # as `kindbot helplines`


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    text: str  # what was found; for a problem, also what to do

    def line(self) -> str:
        return f"{'ok' if self.ok else 'PROBLEM':<8} {self.check}: {self.text}"


def ok(check: str, text: str) -> Finding:
    return Finding(check, True, text)


def problem(check: str, text: str) -> Finding:
    return Finding(check, False, text)


async def examine(settings: Settings) -> list[Finding]:
    """Every check, in the order a start meets them."""
    url = settings.resolved_database_url()
    findings = [ok("settings", f"read (database: {_shown(url)}; DATA_DIR {settings.data_dir})")]
    findings += telegram(settings)
    findings += [dialogs(settings), *helplines(settings), data_dir(settings)]
    key_finding, keys = key(settings)
    findings.append(key_finding)
    findings += await database(settings, keys)
    return findings


def _shown(url: str) -> str:
    return shown_url(url) or "DATABASE_URL (not a URL)"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "this user"


def telegram(settings: Settings) -> list[Finding]:
    """The token's form (Telegram itself is not asked) and the webhook's settings."""
    from bot.telegram.application import StartupProblem, bot_token, webhook_secret

    found = []
    if settings.telegram_bot_token is None:
        found.append(ok("telegram", "no TELEGRAM_BOT_TOKEN: `kindbot chat` only (run needs one)"))
    else:
        try:
            bot_token(settings)
            found.append(ok("telegram", "TELEGRAM_BOT_TOKEN has a bot token's form"))
        except StartupProblem as exc:
            found.append(problem("telegram", str(exc)))
    if settings.webhook_url:
        try:
            webhook_secret(settings)
            if urlsplit(settings.webhook_url).scheme != "https":
                raise StartupProblem(
                    "WEBHOOK_URL must start with https:// (Telegram posts to HTTPS only)"
                )
            found.append(ok("webhook", f"{settings.webhook_url}, with WEBHOOK_SECRET"))
        except StartupProblem as exc:
            found.append(problem("webhook", str(exc)))
    return found


def dialogs(settings: Settings) -> Finding:
    """What `kindbot dialogs check` checks of the dialog files."""
    from bot.app import known_actions
    from bot.engine.catalog import validate_tree

    root = settings.dialogs_dir
    errors, catalog = validate_tree(root, default=settings.default_locale, actions=known_actions())
    if errors or catalog is None:
        first = f": {errors[0]}" if errors else ""
        return problem(
            "dialogs",
            f"{len(errors)} error(s) in {root}{first} (all: `kindbot dialogs check`)",
        )
    count = sum(len(locale.dialogs) for locale in catalog.locales.values())
    return ok("dialogs", f"{count} dialog(s) in {len(catalog.locales)} locale(s)")


def helplines(settings: Settings) -> list[Finding]:
    """The crisis patterns, helpline files and safety messages; helplines' verification."""
    from bot.safety import validate_safety
    from bot.safety.helplines import load_helplines

    root = settings.dialogs_dir
    errors = validate_safety(root, default=settings.default_locale)
    if errors:
        return [
            problem(
                "safety files",
                f"{len(errors)} error(s): {errors[0]} (all: `kindbot dialogs check`)",
            )
        ]
    loaded, _ = load_helplines(root)
    if loaded is None:  # validate_safety reports what stops it loading
        return [problem("helplines", f"cannot be loaded from {root}")]
    countries = [*loaded.countries.values(), loaded.international]
    today = dt.date.today()
    unverified = sum(1 for c in countries if not (c.verified and c.verified_on))
    stale = [
        c.code
        for c in countries
        if c.verified_on and (today - c.verified_on).days > HELPLINE_MAX_AGE_DAYS
    ]
    found = [ok("safety files", "crisis patterns, helplines and safety messages are valid")]
    if stale:
        found.append(
            problem(
                "helplines",
                f"{', '.join(stale)} last verified over {HELPLINE_MAX_AGE_DAYS} days ago: check "
                "them again and update verified_on (`kindbot helplines`)",
            )
        )
    else:
        found.append(
            ok(
                "helplines",
                f"{len(countries)} file(s), {unverified} not verified by a person yet "
                "(`kindbot helplines`)",
            )
        )
    return found


def data_dir(settings: Settings) -> Finding:
    """DATA_DIR: there (or makeable), writable, and closed to other users."""
    path = settings.data_dir
    if not path.exists():
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return problem(
                "data dir", f"{parent} is a file, so {path} cannot be made: set DATA_DIR"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            return problem(
                "data dir",
                f"{path} cannot be made: {parent} is not writable by {_user()} "
                "(make it so, or set DATA_DIR)",
            )
        return ok("data dir", f"{path} is made (0700) on first start")
    if not path.is_dir():
        return problem("data dir", f"DATA_DIR {path} is a file, not a folder: set DATA_DIR")
    if not os.access(path, os.W_OK | os.X_OK):
        return problem(
            "data dir",
            f"{path} is not writable by {_user()}: give that user the folder, or set DATA_DIR",
        )
    if too_open(path):
        return problem(
            "data dir",
            f"{path} is mode {mode_of(path):04o} (others may look inside): chmod 700 {path}",
        )
    return ok("data dir", f"{path} (mode {mode_of(path):04o})")


def key(settings: Settings) -> tuple[Finding, list[str] | None]:
    """The key's form and the key file's mode; the keys, for the database's key check."""
    if settings.encryption_key:
        keys = [k.strip() for k in settings.encryption_key.split(",") if k.strip()]
        try:
            Cipher(keys)
        except WrongKeyError as exc:
            return problem("key", str(exc)), None
        return ok("key", "ENCRYPTION_KEY is a well-formed key"), keys
    key_file = settings.key_file
    if not key_file.exists():
        return ok("key", f"{key_file} is made (0600) on first start: back it up then"), None
    try:
        keys = [k.strip() for k in key_file.read_text(encoding="ascii").split(",") if k.strip()]
        Cipher(keys)
    except (OSError, UnicodeError, ValueError, WrongKeyError):
        return problem(
            "key",
            f"{key_file} does not hold a valid key: restore it from your backup",
        ), None
    if too_open(key_file):
        mode = mode_of(key_file)
        return problem(
            "key", f"{key_file} is mode {mode:04o} (others may read it): chmod 600 {key_file}"
        ), keys
    return ok("key", f"{key_file} (mode {mode_of(key_file):04o})"), keys


async def database(settings: Settings, keys: list[str] | None) -> list[Finding]:
    """Reachable, schema current (not migrated), the key reads it, its files, its due times."""
    url = settings.resolved_database_url()
    try:
        db = await ReadonlyDatabase.open(url)
    except DatabaseProblem as exc:
        return [problem("database", str(exc))]
    if db is None:
        return [ok("database", "not made yet: made and migrated on first start")]
    try:
        return [
            await schema(db),
            await key_check(db, settings, keys),
            *database_files(url),
            await due_times(db),
            await waiting_replies(db),
        ]
    except Exception as exc:  # it answered the first question, then failed
        return [problem("database", db.unreachable(exc))]
    finally:
        await db.close()


async def schema(db: ReadonlyDatabase) -> Finding:
    found, heads = await db.schema_revisions()
    head = ", ".join(sorted(heads))
    if found == heads:
        return ok("database", f"reachable; schema at revision {head} (current)")
    if not found:
        return ok("database", "reachable and empty: tables are made on first start")
    at = ", ".join(sorted(found))
    from alembic.script import ScriptDirectory

    from storage.schema import alembic_config

    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if found - known:
        return problem(
            "database",
            f"schema at revision {at}, which this kindbot does not know (a newer version "
            "wrote it): run that version, or restore a backup",
        )
    return problem(
        "database",
        f"schema at revision {at}, this kindbot expects {head}: back the database up, then "
        "start kindbot once (it migrates on start)",
    )


async def key_check(db: ReadonlyDatabase, settings: Settings, keys: list[str] | None) -> Finding:
    """Whether the configured key reads the database, and what a pending rotation left."""
    token = await db.key_check()
    pending = pending_key_file(settings.key_file)
    pending_keys: list[str] = []
    if not settings.encryption_key and pending.exists():
        pending_keys = [k.strip() for k in pending.read_text(encoding="ascii").split(",")]
    source = "ENCRYPTION_KEY" if settings.encryption_key else f"the key in {settings.key_file}"
    if token is not None and pending_keys and key_reads(token, pending_keys):
        return problem(
            "key check",
            f"{pending} reads the database and {source} does not: a `kindbot rotate-key` was "
            "interrupted; run `kindbot rotate-key` to finish it",
        )
    leftover = problem(
        "key check",
        f"{pending} is left from a `kindbot rotate-key` interrupted before it changed the "
        "database (it encrypted nothing): remove it before rotating again",
    )
    if token is None:
        return leftover if pending_keys else ok("key check", "nothing encrypted yet")
    if keys is None:
        return problem(
            "key check",
            f"the database is encrypted but there is no key (no ENCRYPTION_KEY, no "
            f"{settings.key_file}): restore the key file from your backup, or set ENCRYPTION_KEY",
        )
    if key_reads(token, keys):
        return leftover if pending_keys else ok("key check", f"{source} reads the database")
    also = f" (nor does {pending})" if pending_keys else ""
    return problem(
        "key check",
        f"{source} does not match the key this database was written with{also}: set the "
        "right key (from your backup)",
    )


def database_files(url: str) -> list[Finding]:
    """The SQLite file and its -wal/-shm: closed to other users (PostgreSQL: not ours)."""
    files = sqlite_files(url)
    if not files:
        return []
    base = files[0]
    open_ = [f for f in files if f.exists() and too_open(f)]
    if open_:
        modes = ", ".join(f"{f} is {mode_of(f):04o}" for f in open_)
        names = " ".join(str(f) for f in open_)
        return [problem("database files", f"{modes} (others may read them): chmod 600 {names}")]
    return [ok("database files", f"{base} (mode {mode_of(base):04o})")]


async def due_times(db: ReadonlyDatabase) -> Finding:
    """Reminder due times stored in a form the dispatcher would not compare right."""
    if not await db.has_table(ReminderSchedule.__tablename__):
        return ok("due times", "no reminders table yet")
    async with db.session() as session:
        odd = await store.odd_due_times(session)
        unreadable = [o for o in odd if o.reads_as is None]
        stuck = []
        for item in unreadable:
            try:
                await store.recompute_due(session, schedule_id=item.schedule_id, now=utcnow())
            except (ValueError, LookupError):
                stuck.append(item.schedule_id)
    if stuck:
        ids = ", ".join(str(i) for i in stuck)
        return problem(
            "due times",
            f"reminder schedule(s) {ids}: the due time is not a time and the reminder's own "
            "time or zone cannot be read either; they are not sent until the person sets "
            "them again (or fix local_time/timezone in reminder_schedules)",
        )
    if unreadable:
        ids = ", ".join(str(o.schedule_id) for o in unreadable)
        return problem(
            "due times",
            f"reminder schedule(s) {ids}: the due time is not a time; `kindbot run` computes "
            "it again from the reminder's local time (or set those reminders again)",
        )
    if odd:
        return ok(
            "due times",
            f"{len(odd)} stored in another text form; `kindbot run` rewrites them (same instant)",
        )
    return ok("due times", "all readable")


async def waiting_replies(db: ReadonlyDatabase) -> Finding:
    """Replies kept in the outbox: those of a bot that is running now, or left by one that
    stopped or died (sent at its next start). Only their number and age, never content."""
    backlog = await db.outbox_backlog()
    if backlog is None:
        return ok("outbox", "no outbox table yet")
    count, oldest = backlog
    if not count:
        return ok("outbox", "no reply waiting to be sent")
    return ok(
        "outbox",
        f"{count} repl{'y' if count == 1 else 'ies'} waiting since {oldest}: sent by the running "
        "bot, or by `kindbot run` when it starts",
    )
