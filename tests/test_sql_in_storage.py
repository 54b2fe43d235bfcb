"""All SQL lives in storage/: features call repository functions, they don't write queries.

A module under bot/ that imports SQLAlchemy or SQLModel is a query (or a session) outside
storage/, unless it is on the short list below, each entry with the reason it is there.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.config import REPO_ROOT

ORMS = ("sqlalchemy", "sqlmodel")
# path under bot/ → why it may import them; shrink it, never grow it without a reason.
ALLOWED = {
    "engine/runner.py": "the step's retry on a DBAPIError",
    "engine/turn.py": "the step's session (`Turn.session`), typed",
    "engine/outbox.py": "the connection that holds the outbox owner's advisory lock",
}


def orm_imports(path: Path) -> list[str]:
    """Every `import`/`from … import` of SQLAlchemy or SQLModel in a file, at any depth
    (inside a function or an `if TYPE_CHECKING:` block too), as `line: module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {m}" for m in modules if m.partition(".")[0] in ORMS]
    return found


def test_orm_imports_finds_every_form(tmp_path: Path) -> None:
    """The walk sees each way of importing, and nothing that only looks like it."""
    source = tmp_path / "mod.py"
    source.write_text(
        "import sqlalchemy\n"
        "import os, sqlmodel.sql as q\n"
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlmodel import col\n"
        "def f() -> None:\n"
        "    from sqlalchemy import select\n"
        "import sqlalchemy_utils\n"
        "from . import sqlalchemy\n"
        "x = 'sqlalchemy'\n",
        encoding="utf-8",
    )
    assert orm_imports(source) == [
        "1: sqlalchemy",
        "2: sqlmodel.sql",
        "3: sqlalchemy.ext.asyncio",
        "6: sqlmodel",
        "8: sqlalchemy",
    ]


def test_bot_imports_no_orm_outside_the_allowed_list() -> None:
    bot = REPO_ROOT / "bot"
    found = {
        path.relative_to(bot).as_posix(): imports
        for path in sorted(bot.rglob("*.py"))
        if (imports := orm_imports(path))
    }
    outside = {name: imports for name, imports in found.items() if name not in ALLOWED}
    assert not outside, f"queries belong in storage/ (a repository function): {outside}"
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"no longer imports SQLAlchemy/SQLModel: remove from ALLOWED: {stale}"
