"""The dialog validator: every kind of mistake is reported with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.app import known_actions
from bot.config import REPO_ROOT
from bot.engine.catalog import Catalog, DialogsInvalid, validate_tree

SHIPPED = REPO_ROOT / "dialogs"

GOOD = """\
dialog: demo
title: demo
start: ask
states:
  ask:
    say: "What is on your mind?"
    expect: text
    store: thing
    next: rate
  rate:
    say: "How much, 0 to 10, is “{thing}” on your mind?"
    expect: scale
    store: score
    next:
      - when: {answer: score, gte: 5}
        to: high
      - to: low
  high:
    say: "That is a lot."
    end: true
  low:
    say: "Thanks."
    end: true
"""


def make_tree(tmp_path: Path, demo: str) -> Path:
    root = tmp_path / "dialogs"
    shutil.copytree(SHIPPED, root)
    (root / "en" / "demo.yaml").write_text(demo, encoding="utf-8")
    return root


def errors_for(tmp_path: Path, demo: str) -> list[str]:
    errors, _ = validate_tree(make_tree(tmp_path, demo), actions=known_actions())
    return [str(e) for e in errors]


def test_shipped_dialogs_are_valid() -> None:
    errors, catalog = validate_tree(SHIPPED, actions=known_actions())
    assert errors == []
    assert catalog is not None
    assert {"onboarding", "reframe", "menu", "resume"} <= set(catalog.locales["en"].dialogs)


def test_a_good_dialog_passes(tmp_path: Path) -> None:
    assert errors_for(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("    next: rate\n", "    next: rates\n", 9, "unknown state 'rates'"),
        ("  ask:\n", "  ask:\n    say: twice\n", 7, "duplicate key 'say'"),
        ("{thing}", "{thingy}", 11, "unknown template variable {thingy}"),
        ("{thing}", "{thing!r}", 11, "bad placeholder"),
        ('    say: "Thanks."\n', "    say: []\n", 21, "no text to say"),
        (
            '    say: "That is a lot."\n    end: true\n',
            '    say: "That is a lot."\n',
            18,
            "no way out",
        ),
        (
            "      - to: low\n",
            "      - when: {answer: score, lt: 5}\n        to: low\n",
            14,
            "last branch",
        ),
        ("    expect: scale\n", "    expect: scales\n", 12, "expect"),
        ("    store: thing\n", "    store: thing\n    colour: blue\n", 9, "colour"),
        ("start: ask", "start: begin", 3, "start state 'begin' is not defined"),
        (
            '  low:\n    say: "Thanks."\n    end: true\n',
            '  low:\n    say: "Thanks."\n    end: true\n  orphan:\n    say: lost\n    end: true\n',
            24,
            "can never be reached",
        ),
        (
            "    end: true\n  low:",
            "    end: true\n    action: fly\n  low:",
            21,
            "unknown action 'fly'",
        ),
        ("    expect: text\n", "    expect: choice\n", 5, "offers no choices"),
        (
            "    store: thing\n",
            "    store: thing\n    choices:\n      - {value: x, label: X, aliases: [x]}\n",
            10,
            "a ready answer under a text question takes no aliases",
        ),
        ("    next: rate\n", "    next: rate\n    typed: rate\n", 10, "'typed' is for a choice"),
        ("    next: rate\n", "    next: rate\n    typed: rat\n", 10, "unknown state 'rat'"),
        ("dialog: demo", "dialog: other", 1, "must live in other.yaml"),
        ("    next: rate\n", "    next: rate\n  bad: [unclosed\n", 11, "invalid YAML"),
    ],
)
def test_each_mistake_names_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, fragment: str
) -> None:
    assert old in GOOD
    errors = errors_for(tmp_path, GOOD.replace(old, new, 1))
    assert errors, "expected an error"
    matching = [e for e in errors if fragment in e]
    assert matching, errors
    assert matching[0].startswith(f"dialogs/en/demo.yaml:{line}:"), matching


def test_all_errors_are_listed_at_once(tmp_path: Path) -> None:
    broken = GOOD.replace("next: rate", "next: nowhere").replace("{thing}", "{nothing}")
    errors = errors_for(tmp_path, broken)
    assert any("nowhere" in e for e in errors)
    assert any("{nothing}" in e for e in errors)


def test_missing_engine_texts_are_errors(tmp_path: Path) -> None:
    root = make_tree(tmp_path, GOOD)
    messages = root / "en" / "messages.yaml"
    messages.write_text(
        messages.read_text(encoding="utf-8").replace("  help: |-", "  helpp: |-"), "utf-8"
    )
    errors = [str(e) for e in validate_tree(root, actions=known_actions())[0]]
    assert any(e.startswith("dialogs/en/messages.yaml:") and "help" in e for e in errors)


def test_loading_an_invalid_tree_refuses_to_start(tmp_path: Path) -> None:
    root = make_tree(tmp_path, GOOD.replace("next: rate", "next: nowhere"))
    with pytest.raises(DialogsInvalid) as info:
        Catalog.load(root, actions=known_actions())
    assert "dialogs/en/demo.yaml:9" in str(info.value)


RECORDED = """\
dialog: demo
title: demo
entry: demo
recorded:
  band:
    label: "How it felt"
    values: {high: "Very hard"}
start: high
states:
  high:
    record: {band: high}
    say: "That is a lot."
    end: true
"""


def test_recorded_answers_have_words_in_a_kept_dialog(tmp_path: Path) -> None:
    trees = iter(range(10))

    def check(demo: str) -> list[str]:
        return errors_for(tmp_path / str(next(trees)), demo)

    assert check(RECORDED) == []
    without = RECORDED.replace(
        'recorded:\n  band:\n    label: "How it felt"\n    values: {high: "Very hard"}\n', ""
    )
    assert check(without) == [
        "dialogs/en/demo.yaml:7: state 'high' records 'band': give it words under `recorded:`"
    ]
    missing_value = RECORDED.replace("{band: high}", "{band: low}")
    assert check(missing_value) == [
        "dialogs/en/demo.yaml:5: recorded 'band' has no words for the value 'low' (state 'high')",
        "dialogs/en/demo.yaml:7: recorded 'band': no state records the value 'high'",
    ]
    not_recorded = RECORDED.replace("  band:\n", "  bands:\n")
    assert "dialogs/en/demo.yaml:5: recorded 'bands': no state records it" in check(not_recorded)
    # a dialog that keeps no entry shows nothing in the history: words are optional there
    assert check(without.replace("entry: demo\n", "")) == []
