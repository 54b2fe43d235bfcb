"""The layers' import rules, checked on the source and on a real import.

Only the Telegram adapter (bot/telegram/, and bot/testing/, its fake Bot API) may import
python-telegram-bot: the engine, the features and storage run without it (the terminal
adapter, `kindbot chat`, needs nothing else). bot/reminders/ holds no SQL: its statements
live in storage/.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.config import REPO_ROOT

ADAPTER = ("bot/telegram", "bot/testing")
OUTSIDE_THE_ADAPTER = ("bot", "storage")


def modules(*folders: str, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    for folder in folders:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if not any(relative.startswith(f"{s}/") for s in skip):
                yield path


def imported(path: Path) -> Iterator[str]:
    """Every module an import statement in `path` names, lazy ones (in functions) included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def test_the_modules_are_found() -> None:
    found = {p.relative_to(REPO_ROOT).as_posix() for p in modules(*OUTSIDE_THE_ADAPTER)}
    assert {"bot/engine/runner.py", "bot/reminders/dispatcher.py", "storage/db.py"} <= found
    assert "bot/telegram/render.py" in found
    kept = {p.relative_to(REPO_ROOT).as_posix() for p in modules("bot", skip=ADAPTER)}
    assert "bot/telegram/render.py" not in kept


def test_only_the_telegram_adapter_imports_telegram() -> None:
    for path in modules(*OUTSIDE_THE_ADAPTER, skip=ADAPTER):
        for name in imported(path):
            assert not within(name, "telegram"), f"{path} imports {name}"


def test_nothing_outside_the_adapter_imports_telegram_when_loaded() -> None:
    """Every module outside the adapter imported in a fresh interpreter: no `telegram`."""
    names = [
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in modules(*OUTSIDE_THE_ADAPTER, skip=ADAPTER)
        if "migrations" not in p.parts
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(k for k in sys.modules if k == 'telegram' or k.startswith('telegram.'))\n"
        "assert not bad, bad[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_reminders_hold_no_sql() -> None:
    for path in modules("bot/reminders"):
        for name in imported(path):
            assert not within(name, "sqlalchemy"), f"{path} imports {name}"
            assert not within(name, "sqlmodel"), f"{path} imports {name}"
