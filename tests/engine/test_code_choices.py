"""Dialog validation of `choices_from` (choices made in code) and answer `label`s."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.app import known_actions
from bot.config import REPO_ROOT
from bot.engine.catalog import validate_tree

BAD = """\
dialog: picker
title: picker
start: pick
states:
  pick:
    say: "Pick one"
    choices_from: no_such_action
    expect: text
    label: "Nothing stored"
  other:
    choices_from: history_page
    say: "Pick"
    expect: choice
"""


def test_choices_from_and_labels_are_checked(tmp_path: Path) -> None:
    folder = tmp_path / "dialogs" / "en"
    folder.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dialogs" / "en" / "messages.yaml", folder)
    (folder / "picker.yaml").write_text(BAD, encoding="utf-8")
    errors, catalog = validate_tree(tmp_path / "dialogs", actions=known_actions())
    assert catalog is None
    text = "\n".join(str(e) for e in errors)
    assert "picker.yaml:7: state 'pick': unknown action 'no_such_action'" in text
    assert "state 'pick': choices_from needs expect: choice" in text
    assert "picker.yaml:9: state 'pick': a label names a stored answer" in text
    assert "state 'other': choices made in code need a next to go to" in text
    assert "expects a choice but offers no choices" not in text
