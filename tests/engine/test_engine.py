"""Engine units: input parsing, phrasing choice, the machine (its independence from
Telegram: tests/test_layers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.app import App
from bot.config import REPO_ROOT
from bot.engine.events import ChoiceMade, Message, Scale, Text, UserRef
from bot.engine.machine import Position
from bot.engine.parsing import clean_text, parse_scale
from bot.engine.schema import Condition
from bot.engine.texts import fill, pick


def scale_filler_words() -> list[str]:
    """The English dialog files' words around a rating (`scale_filler_words`)."""
    data = yaml.safe_load((REPO_ROOT / "dialogs" / "en" / "messages.yaml").read_text())
    return str(data["messages"]["scale_filler_words"]).split(",")


FILLER = scale_filler_words()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        (" 10 ", 10),
        ("0", 0),
        ("7/10", 7),
        ("3 out of 10", 3),
        ("seven", 7),
        ("Seven.", 7),
        ("11", None),
        ("-1", None),
        ("7.5", None),
        ("lots", None),
        ("", None),
        ("٧", 7),
        ("🙂", None),
        ("1e1", None),
        # hedged, with the dialog files' filler words
        ("like a 7 maybe", 7),
        ("maybe 5/10 tbh", 5),
        ("7ish", 7),
        ("I'd say six", 6),
        ("idk like 4", 4),
        ("at least an 8 right now", 8),
        ("still 3 out of 10 i guess", 3),
        ("pretty bad, like 8", 8),
        ("not bad, 3", None),
        ("6 or 7", None),
        ("not a 7", None),
        ("down to 4", None),
        ("maybe 7.5", None),
        ("like -1", None),
        ("like a 12", None),
        ("i think its 7 because everything went wrong today and i cant sleep", None),
        ("100", None),
    ],
)
def test_parse_scale(text: str, value: int | None) -> None:
    assert parse_scale(text, Scale(0, 10), FILLER) == value
    if value is not None and not text.strip().isdigit():
        hedged = any(w in text.lower() for w in ("like", "maybe", "ish", "say", "idk", "least"))
        if hedged:  # without the filler words, a hedged rating is none
            assert parse_scale(text, Scale(0, 10)) is None


def test_clean_text_removes_invisible_and_control_characters() -> None:
    assert clean_text("  \u200bhello\u202e\x00 ") == "hello"
    assert clean_text("\u200b\u200b") == ""
    assert clean_text("שלום עולם") == "שלום עולם"
    assert clean_text("e\u0301") == "é"


def test_phrasing_rotates_between_runs_and_is_stable_within_one() -> None:
    phrasings = ["a", "b", "c"]
    picks = [pick(phrasings, run=run, salt="reframe.thought") for run in range(3)]
    assert sorted(picks) == phrasings
    assert pick(phrasings, run=1, salt="x") == pick(phrasings, run=1, salt="x")


def test_fill_leaves_missing_values_as_an_ellipsis() -> None:
    assert fill("{a} and {b}", {"a": "x"}) == "x and …"


@pytest.mark.parametrize(
    ("condition", "answers", "holds"),
    [
        ({"answer": "r", "gte": 7}, {"r": 7}, True),
        ({"answer": "r", "gte": 7}, {"r": 6}, False),
        ({"answer": "r", "lt": 0}, {"r": -2}, True),
        ({"answer": "r", "equals": 0}, {"r": 0}, True),
        ({"answer": "c", "in": ["a", "b"]}, {"c": "b"}, True),
        ({"answer": "c", "gte": 1}, {"c": "text"}, False),
        ({"answer": "missing", "equals": 1}, {}, False),
    ],
)
def test_conditions(condition: dict[str, object], answers: dict[str, object], holds: bool) -> None:
    assert Condition.model_validate(condition).holds(answers) is holds


def test_one_machine_serves_many_positions(app: App) -> None:
    machine = app.catalog.dialog("reframe")
    assert machine is not None
    a = Position("rating_after", {"rating_before": 8, "rating_after": 3, "change": -5})
    b = Position("rating_after", {"rating_before": 3, "rating_after": 8, "change": 5})
    assert machine.advance(a) and machine.advance(b)
    assert (a.state, b.state) == ("need", "close_heavier")
    assert machine.machine.models == []  # no model is kept by the machine


def test_graph_is_drawn_from_the_machine(app: App) -> None:
    machine = app.catalog.dialog("reframe")
    assert machine is not None
    diagram = machine.mermaid()
    assert diagram.startswith("stateDiagram-v2")
    assert "close --> close_lighter : change < 0" in diagram


async def test_outputs_carry_the_step_that_offered_them(app: App) -> None:
    ref = UserRef("console", "stepper")
    outputs = await app.engine.handle(ref, Text("/start"))
    offer = [o for o in outputs if isinstance(o, Message) and o.options][-1]
    assert offer.step is not None
    later = await app.engine.handle(ref, ChoiceMade("yes", offer.step))
    assert any(isinstance(o, Message) and "Thank you" in o.text for o in later)
    again = await app.engine.handle(ref, ChoiceMade("yes", offer.step))
    assert [o.text for o in again if isinstance(o, Message)] == [
        "That step has passed — let's carry on from where we are now."
    ]


async def test_an_internal_error_is_answered_gently(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("I forgot my keys, the person wrote")

    monkeypatch.setattr(app.engine, "dispatch", broken)
    outputs = await app.engine.handle(UserRef("console", "x"), Text("I forgot my keys"))
    assert next(o.text for o in outputs if isinstance(o, Message)).startswith("Sorry")
    assert "forgot my keys" not in caplog.text
    assert "ValueError" in caplog.text


def test_dialog_folder_has_no_python() -> None:
    assert not list(Path(REPO_ROOT / "dialogs").rglob("*.py"))
