"""Failures a person can fix, each as one line: what is wrong and what to do about it.

The command line prints that line (exit 2) instead of a traceback; the traceback is for bugs,
and for `--debug`. Anything not recognised here is treated as a bug and shown in full.
"""

from __future__ import annotations

import errno
import getpass
import sys
from pathlib import Path

from pydantic import ValidationError

from bot.config import Settings
from storage.crypto import MalformedKeyError, WrongKeyError, pending_key_file
from storage.db import DatabaseProblem


class Problem(Exception):
    """A failure the operator can fix; the message is one line that names the fix."""


def explain(exc: BaseException, settings: Settings | None) -> str | None:
    """The one line for a failure a person can fix; None for anything else (a bug)."""
    if isinstance(exc, Problem | DatabaseProblem):
        return str(exc)
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return invalid_settings(exc)
    startup = _loaded("bot.telegram.application", "StartupProblem")
    if startup is not None and isinstance(exc, startup):
        return str(exc)
    unreachable = _loaded("telegram.error", "NetworkError")
    if unreachable is not None and isinstance(exc, unreachable):
        return (
            f"cannot reach Telegram ({type(exc).__name__}: {exc}): check this machine's "
            "network (and TELEGRAM_API_URL, if set)"
        )
    if isinstance(exc, WrongKeyError):
        return _key_problem(exc, settings)
    if isinstance(exc, OSError) and exc.filename:
        return _path_problem(exc, settings)
    return None


def invalid_settings(exc: ValidationError) -> str:
    """Every invalid setting, on one line, by its environment variable's name."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return f"invalid setting {'; '.join(parts)} (fix it in the environment or .env)"


def _loaded(module: str, name: str) -> type[Exception] | None:
    """An exception class of a module already imported: only `kindbot run` imports the
    Telegram side, and it is not imported just to compare."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, Exception) else None


def _key_problem(exc: WrongKeyError, settings: Settings | None) -> str:
    if settings is None or settings.encryption_key:
        return str(exc)  # it names ENCRYPTION_KEY already
    key_file = settings.key_file
    if isinstance(exc, MalformedKeyError):
        return (
            f"{key_file} does not hold a valid key (32 url-safe base64 bytes): restore it "
            "from your backup, or set ENCRYPTION_KEY"
        )
    pending = pending_key_file(key_file)
    if pending.exists():
        return (
            f"the key in {key_file} does not read this database, and {pending} is there: "
            "a `kindbot rotate-key` was interrupted; run `kindbot rotate-key` again to finish it"
        )
    return (
        f"the key in {key_file} does not match the key this database was written with: "
        "restore that file from your backup (or set ENCRYPTION_KEY to the right key)"
    )


def _path_problem(exc: OSError, settings: Settings | None) -> str:
    path = Path(str(exc.filename))
    setting = _setting_for(path, settings)
    fix = f"set {setting} to a folder kindbot can use" if setting else "use another path"
    if isinstance(exc, PermissionError):
        return (
            f"permission denied: {path} (kindbot runs as {_user()}): let that user write "
            f"there, or {fix}"
        )
    if isinstance(exc, NotADirectoryError):
        return f"{path} is a file, so no folder can be made inside it: {fix}"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder, not a file: {fix}"
    if exc.errno == errno.EROFS:
        return f"{path} is on a read-only file system: {fix}"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the disk holding {path}: free some space"
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {path}: {fix}"


def _setting_for(path: Path, settings: Settings | None) -> str | None:
    """The setting that chose `path`, so the message can say what to change."""
    if settings is None:
        return None
    for name, root in (("DATA_DIR", settings.data_dir), ("DIALOGS_DIR", settings.dialogs_dir)):
        if _within(path, root):
            return name
    data_dir = settings.data_dir.absolute()
    if data_dir.is_relative_to(path.absolute()):  # a parent DATA_DIR needs is in the way
        return "DATA_DIR"
    return None


def _within(path: Path, root: Path) -> bool:
    return path.absolute().is_relative_to(root.absolute())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "this user"
