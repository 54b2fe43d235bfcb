"""Engine features added for the safety work: `call`, `record`, `retry`, choice `aliases`,
dialog params from settings (and derived values on them), router states, typed commands
with arguments, and data folders beside the locales."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.app import App, known_actions, open_app
from bot.config import REPO_ROOT
from bot.engine.catalog import validate_tree
from bot.engine.events import Message, Text, UserRef
from tests.chat import Person
from tests.conftest import Clock, make_settings

SHIPPED = REPO_ROOT / "dialogs"

DEMO = """\
dialog: demo
title: demo
command: demo
params: [limit]
derived:
  over: {difference: [limit, score]}
start: route
states:
  route:
    next:
      - when: {answer: limit, gte: 100}
        to: never
      - to: rate
  never:
    say: "unreachable in practice"
    end: true
  rate:
    say: "How much, 0 to 10?"
    expect: scale
    store: score
    retry: "Just a number from 0 to 10 is perfect."
    next:
      - when: {answer: over, gte: 0}
        to: high
      - to: ask
  high:
    record: {band: high}
    say: "High. Let's breathe."
    call: breathing
    next: ask
  ask:
    say: "Again?"
    expect: choice
    retry: "Yes or no is fine."
    choices:
      - {value: again, label: "Again", next: rate, aliases: ["yes", "yeah"]}
      - {value: done, label: "Done", next: bye, aliases: ["no", "nope"]}
  bye:
    say: "Bye ({band})."
    end: true
"""


def tree(tmp_path: Path, demo: str) -> Path:
    root = tmp_path / "dialogs"
    shutil.copytree(SHIPPED, root)
    (root / "en" / "demo.yaml").write_text(demo, encoding="utf-8")
    return root


def errors_for(tmp_path: Path, demo: str) -> list[str]:
    errors, _ = validate_tree(tree(tmp_path, demo), actions=known_actions())
    return [str(e) for e in errors]


def test_the_demo_is_valid_and_the_helplines_folder_is_not_a_locale(tmp_path: Path) -> None:
    root = tree(tmp_path, DEMO)
    assert (root / "helplines").is_dir()
    errors, catalog = validate_tree(root, actions=known_actions())
    assert errors == []
    assert catalog is not None
    assert set(catalog.locales) == {"en"}


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("    call: breathing\n", "    call: breathe_slowly\n", "unknown dialog 'breathe_slowly'"),
        (
            "    call: breathing\n    next: ask\n",
            "    call: breathing\n    end: true\n",
            "calls a dialog",
        ),
        ('    retry: "Just a number', '    retrx: "Just a number', "retrx"),
        (
            "  over: {difference: [limit, score]}",
            "  over: {difference: [limits, score]}",
            "no param and no state stores",
        ),
        ('  never:\n    say: "unreachable in practice"\n', "  never:\n", "no text to say"),
    ],
)
def test_mistakes_in_the_new_fields_name_the_line(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    assert old in DEMO
    errors = errors_for(tmp_path, DEMO.replace(old, new, 1))
    assert any(fragment in e and "demo.yaml:" in e for e in errors), errors


def test_retry_only_on_choice_or_scale(tmp_path: Path) -> None:
    bad = DEMO.replace('    say: "Bye ({band})."\n', '    say: "Bye ({band})."\n    retry: "x"\n')
    errors = errors_for(tmp_path, bad)
    assert any("'retry' is only for choice or scale" in e for e in errors), errors


async def test_the_new_fields_at_work(app: App, tmp_path: Path) -> None:
    # The demo is not shipped; run the same ideas through the shipped check-in instead:
    # params from settings, derived on a param, record, call and carry-on after the call.
    ref = UserRef("console", "features")
    await app.engine.handle(ref, Text("/start"))
    await app.engine.handle(ref, Text("1"))
    out = await app.engine.handle(ref, Text("/checkin"))
    out = await app.engine.handle(ref, Text("eleven"))
    assert "0 (calm) to 10" in out[-1].text or "A whole number" in out[-1].text  # type: ignore[union-attr]
    out = await app.engine.handle(ref, Text("8"))
    out = await app.engine.handle(ref, Text("2"))  # "Noticing my senses", typed as its number
    for _ in range(5):
        out = await app.engine.handle(ref, Text("done"))
    said = [o.text for o in out if isinstance(o, Message)]
    assert any("You're here, in this moment" in t for t in said)
    assert "distressed do you feel" in said[-1]  # carried on after the call: a re-rating
    out = await app.engine.handle(ref, Text("4"))
    said = [o.text for o in out if isinstance(o, Message)]
    assert any("This is a moment of suffering" in t for t in said)  # then the break


async def test_aliases_and_retry_in_the_crisis_pause(app: App) -> None:
    ref = UserRef("console", "alias")
    await app.engine.handle(ref, Text("/sos"))
    out = await app.engine.handle(ref, Text("hmm"))
    assert "Are you safe" in out[-1].text  # type: ignore[union-attr]
    out = await app.engine.handle(ref, Text("Nope."))
    assert any(
        "right now, or ask someone near you" in o.text for o in out if isinstance(o, Message)
    )


async def test_typed_commands_take_arguments(app: App) -> None:
    ref = UserRef("console", "cmd")
    out = await app.engine.handle(ref, Text("/country   nz"))
    assert "New Zealand" in out[0].text  # type: ignore[union-attr]
    out = await app.engine.handle(ref, Text("/ not a command"))
    assert not any("don't know" in o.text for o in out if isinstance(o, Message))


async def test_words_after_a_command_are_screened_too(app: App) -> None:
    ref = UserRef("console", "cmdargs")
    out = await app.engine.handle(ref, Text("/reframe i want to kill myself"))
    assert "Are you safe right now?" in out[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("typed", ["I'm safe", "im safe", "I’m safe.", "YES"])
async def test_aliases_ignore_apostrophes_and_case(app: App, typed: str) -> None:
    ref = UserRef("console", "apostrophe")
    await app.engine.handle(ref, Text("/sos"))
    out = await app.engine.handle(ref, Text(typed))
    assert any("glad" in o.text for o in out if isinstance(o, Message))


# Buttons under a text question (a ready answer, or a way round it) and `earlier_runs`.
NOTE = """\
dialog: demo
title: demo note
command: demo
start: begin
states:
  begin:
    next:
      - when: {answer: earlier_runs, lte: 0}
        to: first
      - to: ask
  first:
    say: "First time here."
    next: ask
  ask:
    say: "How do you feel? (run {earlier_runs})"
    expect: text
    store: mood
    choices:
      - {value: calm, label: "Calm"}
      - {value: skip, label: "Skip", next: bye}
    next: bye
  bye:
    say: "Noted: {mood}."
    end: true
"""


async def test_text_question_buttons_answer_or_go_round_and_runs_are_counted(
    tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(tmp_path, dialogs_dir=tree(tmp_path, NOTE))
    async with open_app(settings, clock=clock) as app:
        me = Person(app, "noter")
        await me.consent()
        await me.send("/demo")
        assert me.texts == ["First time here.", "How do you feel? (run 0)"]
        assert me.labels == ["Calm", "Skip"]
        await me.press("Calm")  # a ready answer: its label is stored as if typed
        assert me.texts == ["Noted: Calm."]
        await me.send("/demo")
        assert me.texts == ["How do you feel? (run 1)"]  # no first-use note the second time
        await me.send("Calm enough, thanks")  # typed words stay the answer
        assert me.texts == ["Noted: Calm enough, thanks."]
        await me.send("/demo")
        await me.press("Skip")  # a way round: nothing is stored
        assert me.texts == ["Noted: …."]
        await me.send("/demo")
        await me.send("3")  # a number that names no button is words
        assert me.texts == ["Noted: 3."]
        await me.send("/demo")
        await me.send("1")  # a button's number, as the terminal lists them
        assert me.texts == ["Noted: Calm."]


def test_buttons_under_a_text_question_take_no_aliases(tmp_path: Path) -> None:
    bad = NOTE.replace('label: "Calm"}', 'label: "Calm", aliases: ["ok"]}')
    errors = errors_for(tmp_path, bad)
    assert any("takes no aliases" in e and "demo.yaml:" in e for e in errors), errors


def test_earlier_runs_is_known_to_the_validator_and_a_typo_is_not(tmp_path: Path) -> None:
    assert errors_for(tmp_path / "good", NOTE) == []
    typo = NOTE.replace("answer: earlier_runs", "answer: earlier_run")
    errors = errors_for(tmp_path / "typo", typo)
    assert any("unknown answer 'earlier_run'" in e for e in errors), errors
