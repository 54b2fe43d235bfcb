"""The README and docs/ stay true to the code they describe.

A reader follows their links and copies their commands and examples, so each of those is
checked here: relative links land on a file (and heading) that exists, the two set-up
commands are the ones CI runs, the files they name exist, the example dialog passes the
validator, and the privacy page describes every table the database has.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.app import known_actions
from bot.config import REPO_ROOT
from bot.engine.catalog import validate_tree

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)
# A path in the repository named in backticks: `bot/telegram/polling.py`, `tests/transcripts/`.
REPO_PATH = re.compile(r"`((?:bot|storage|tests|bench|dialogs|docs|\.ci)/[^`\s]*)`")


def prose(text: str) -> str:
    """The text without code blocks, where `[x](y)` is code, not a link."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(prose(page.read_text(encoding="utf-8"))):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def relative_links(page: Path) -> list[str]:
    text = INLINE_CODE.sub("", prose(page.read_text(encoding="utf-8")))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_pages_exist() -> None:
    names = {p.name for p in DOCS}
    assert {"architecture.md", "dialogs.md", "operations.md", "privacy.md", "safety.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_heading(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: {broken}"


def test_every_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_files_named_in_backticks_exist(page: Path) -> None:
    """`bot/…`, `tests/…` and the like: a renamed or deleted file must take its mention along."""
    missing = []
    for named in REPO_PATH.findall(page.read_text(encoding="utf-8")):
        pattern = named.replace("<locale>", "en").replace("<CC>", "*").rstrip("/")
        if not any(REPO_ROOT.glob(pattern)):
            missing.append(named)
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def test_the_two_setup_commands_are_the_ones_ci_runs() -> None:
    """`.ci/run` runs the README's test command; both commands stay as they are."""
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^```sh\n(.*?)\n```$", setup, re.M | re.S)
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/kindbot run",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
        ".venv/bin/python -m pytest",
    ]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci


def test_the_example_dialog_is_valid(tmp_path: Path) -> None:
    """The dialog in docs/dialogs.md passes the same validator as `kindbot dialogs check`."""
    text = (REPO_ROOT / "docs" / "dialogs.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```yaml\n(.*?)^```$", text, re.M | re.S)
    folder = tmp_path / "dialogs" / "en"
    folder.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dialogs" / "en" / "messages.yaml", folder)
    (folder / "gratitude.yaml").write_text(example, encoding="utf-8")
    errors, catalog = validate_tree(tmp_path / "dialogs", actions=known_actions())
    assert [str(e) for e in errors] == []
    assert catalog is not None
    assert catalog.dialog("gratitude") is not None


def test_privacy_describes_every_table() -> None:
    """A new table is a new kind of data kept about people: docs/privacy.md must say what."""
    text = (REPO_ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    described = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert described == set(SQLModel.metadata.tables)


def test_what_the_docs_say_about_verified_helplines_holds() -> None:
    """'No file is verified yet' warns every operator; it must go once a file is verified."""
    files = sorted((REPO_ROOT / "dialogs" / "helplines").glob("*.yaml"))
    verified = [f.name for f in files if yaml.safe_load(f.read_text(encoding="utf-8"))["verified"]]
    says_none = {
        page.name
        for page in PAGES
        if re.search(
            r"no file (?:in `dialogs/helplines/` )?(?:has been|is) verified",
            page.read_text(encoding="utf-8").replace("\n", " "),
            re.I,
        )
    }
    assert files
    if verified:
        assert not says_none, f"{sorted(says_none)} say none is, yet {verified} are"
    else:
        assert {"README.md", "safety.md"} <= says_none  # the warning stays while it holds
