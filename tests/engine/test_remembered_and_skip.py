"""Two engine additions for the practice library: a scale question's "Skip" button (a way
round it, storing nothing; a typed number there is always a rating), and `remembered`
answers, read at a run's start from the person's latest entry of the dialog's kind, with
the `present` condition to tell whether there is one yet."""

from __future__ import annotations

from pathlib import Path

from bot.app import open_app
from bot.engine.events import Message, Scale
from bot.engine.schema import Condition
from bot.telegram.render import keyboard
from tests.chat import Person
from tests.conftest import Clock, make_settings
from tests.engine.test_engine_additions import errors_for, tree

PHRASE = """\
dialog: demo
title: demo
command: demo
entry: demo
remembered: [phrase]
start: rate
states:
  rate:
    say: "How heavy, 0 to 10?"
    expect: scale
    store: before
    choices:
      - {value: skip, label: "Skip", next: route}
    next: route
  route:
    next:
      - when: {answer: phrase, present: true}
        to: show
      - to: write
  write:
    say: "Write your phrase."
    expect: text
    store: phrase
    next: show
  show:
    say: "Your phrase: {phrase}"
    expect: choice
    choices:
      - {value: use, label: "Use it", next: bye}
      - {value: change, label: "Change it", next: write}
  bye:
    say: "Bye."
    end: true
"""


def test_the_demo_is_valid(tmp_path: Path) -> None:
    assert errors_for(tmp_path, PHRASE) == []


def test_a_remembered_answer_needs_an_entry_and_a_state_that_stores_it(tmp_path: Path) -> None:
    no_entry = errors_for(tmp_path / "a", PHRASE.replace("entry: demo\n", ""))
    remembers = "only a dialog kept as an entry remembers"
    assert any(remembers in e and "demo.yaml:" in e for e in no_entry), no_entry
    unknown = errors_for(tmp_path / "b", PHRASE.replace("[phrase]", "[phrases]"))
    assert any("remembered 'phrases': no state stores it" in e for e in unknown), unknown


def test_a_button_under_a_scale_must_go_round_it(tmp_path: Path) -> None:
    bad = PHRASE.replace('label: "Skip", next: route}', 'label: "Skip"}')
    errors = errors_for(tmp_path, bad)
    assert any("a button under a scale goes round it" in e and "demo.yaml:" in e for e in errors)


def test_present_holds_for_a_given_answer_and_its_absence() -> None:
    assert Condition(answer="a", present=True).holds({"a": "x"})
    assert not Condition(answer="a", present=True).holds({"a": ""})
    assert not Condition(answer="a", present=True).holds({})
    assert Condition(answer="a", present=False).holds({})
    assert Condition(answer="a", present=False).holds({"a": ""})
    assert not Condition(answer="a", present=False).holds({"a": "x"})


def test_telegram_shows_a_scales_buttons_under_its_numbers() -> None:
    from bot.engine.events import Option

    markup = keyboard(Message("How heavy?", (Option("skip", "Skip", False),), Scale(0, 10), 3))
    assert markup is not None
    rows = markup["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == [str(n) for n in range(6)]
    assert [b["text"] for b in rows[-1]] == ["Skip"]


async def test_skip_and_a_phrase_remembered_across_runs(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, dialogs_dir=tree(tmp_path, PHRASE))
    async with open_app(settings, clock=clock) as app:
        me = Person(app, "phrases")
        await me.consent()
        await me.send("/demo")
        assert me.labels == ["Skip"]
        assert not me.offer or not me.offer.options[0].numbered  # a number is a rating here
        await me.press("Skip")
        assert me.texts == ["Write your phrase."]
        await me.send("May I be gentle")
        await me.press("Use it")
        # the next run quotes it, and a typed "skip" goes round the rating too
        await me.send("/demo")
        await me.send("skip")
        assert me.texts == ["Your phrase: May I be gentle"]
        await me.press("Change it")
        await me.send("I'm allowed to rest")
        await me.press("Use it")
        # a typed "1" is a rating, not the Skip button's place
        await me.send("/demo")
        await me.send("1")
        assert me.texts == ["Your phrase: I'm allowed to rest"]
        await me.press("Use it")
        # stopped before writing anything new: no "unfinished" entry is left behind, so
        # the next run starts afresh (no offer to continue) and still has the phrase
        await me.send("/demo")
        await me.send("stop")
        assert "saved as unfinished" not in me.text
        await me.send("/demo")
        assert me.texts == ["How heavy, 0 to 10?"]
        await me.send("4")
        assert me.texts == ["Your phrase: I'm allowed to rest"]
