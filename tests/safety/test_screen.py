"""The crisis screen on the phrase sets in phrases.yaml, its normalization, and its file checks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import REPO_ROOT
from bot.safety import validate_safety
from bot.safety.screen import PATTERN_FILE, Screen, compile_pattern, load_screen, normalize

PHRASES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "phrases.yaml").read_text(encoding="utf-8")
)
DIALOGS = REPO_ROOT / "dialogs"
HOLDOUTS = [v for k, v in PHRASES.items() if k.startswith("holdout")]
HOLDOUT_CRISIS = [t for h in HOLDOUTS for t in h["crisis"]]
HOLDOUT_CALM = [t for h in HOLDOUTS for t in h["calm"]]


@pytest.fixture(scope="module")
def screen() -> Screen:
    found, errors = load_screen(DIALOGS / "en" / PATTERN_FILE, PATTERN_FILE)
    assert errors == []
    assert found is not None
    return found


CRISIS = [(cat, text) for cat, texts in PHRASES["crisis"].items() for text in texts]
# Phrases whose category is knowingly another one (the opening differs, the pause does not).
CATEGORY_EXCEPTIONS = {"they keep telling me to kill myself"}


@pytest.mark.parametrize(("category", "text"), CRISIS)
def test_crisis_phrases_interrupt_with_their_category(
    screen: Screen, category: str, text: str
) -> None:
    found = screen.check_text(text)
    assert found is not None, text
    if text not in CATEGORY_EXCEPTIONS:
        assert found.category == category


@pytest.mark.parametrize("text", PHRASES["unsure"])
def test_unsure_phrases_get_the_gentle_check(screen: Screen, text: str) -> None:
    found = screen.check_text(text)
    assert found is not None, text
    assert found.level == "check"


@pytest.mark.parametrize("text", PHRASES["worried"])
def test_someone_else_in_danger_now_is_worried(screen: Screen, text: str) -> None:
    found = screen.check_text(text)
    assert found is not None, text
    assert found.level == "worried"


@pytest.mark.parametrize("text", PHRASES["others_past"])
def test_someone_elses_past_is_a_concern(screen: Screen, text: str) -> None:
    found = screen.check_text(text)
    assert found is not None, text
    assert found.level == "concern"


@pytest.mark.parametrize(
    "text",
    [
        "my bf says he wants to die and honestly i want to die too",
        "every time I try to leave he threatens to kill himself and then me",
        "they keep telling me to jump in front of the train",
        "the boys had a beer after, been cutting my arms in the walk-in on breaks",
    ],
)
def test_someone_elses_danger_does_not_hide_my_own(screen: Screen, text: str) -> None:
    """Never `worried` (which the model may not raise): the person's own danger is heard by
    the patterns, or left to the model."""
    found = screen.check_text(text)
    assert found is None or found.level in ("crisis", "check"), found


@pytest.mark.parametrize("text", PHRASES["ordinary"] + HOLDOUT_CALM)
def test_ordinary_self_criticism_and_idioms_do_not_interrupt(screen: Screen, text: str) -> None:
    assert screen.check_text(text) is None


@pytest.mark.parametrize("text", PHRASES["mentions"])
def test_passing_mentions_do_not_interrupt(screen: Screen, text: str) -> None:
    assert screen.check_text(text) is None


@pytest.mark.parametrize("text", HOLDOUT_CRISIS)
def test_holdout_crisis_phrases_interrupt(screen: Screen, text: str) -> None:
    assert screen.check_text(text) is not None


def test_a_clear_crisis_beats_a_passing_mention(screen: Screen) -> None:
    found = screen.check_text("I watched a film about suicide and now I want to kill myself")
    assert found is not None
    assert found.level == "crisis"


@pytest.mark.parametrize(
    "text",
    [
        "My sister attempted suicide last year and I feel guilty",
        "my best friend tried to kill herself and I don't know what to say",
        "My dad committed suicide when I was 12",
    ],
)
def test_someone_elses_attempt_is_a_gentle_concern(screen: Screen, text: str) -> None:
    found = screen.check_text(text)
    assert found is not None
    assert found.level == "concern"


def test_someone_elses_attempt_does_not_hide_my_own_danger(screen: Screen) -> None:
    found = screen.check_text("my brother attempted suicide and now I want to kill myself")
    assert found is not None
    assert found.level == "crisis"


@pytest.mark.parametrize(
    "text",
    [
        "i want to kill my self",
        "i want to hurt my self",
        "im going to cut my self",
        "i wanna end my self",
        "I want to HURT MY SELF!!",
        "i want to harm my self",
    ],
)
def test_my_self_in_two_words_is_screened(screen: Screen, text: str) -> None:
    found = screen.check_text(text)
    assert found is not None, text


def test_jokes_soften_but_never_silence(screen: Screen) -> None:
    found = screen.check_text("lol i want to kill myself")
    assert found is not None
    assert found.level == "check"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("KILLL   myselfff!!!", "kil myself"),
        ("I don’t want to", "i dont want to"),
        ("k1ll mys3lf", "kil myself"),
        ("$uicide", "suicide"),
        ("k.i.l.l myself", "kil myself"),
        ("Ça va, très bien", "ca va tres bien"),
        ("I ran 10 kms", "i ran 10 kms"),
        ("hurt my self", "hurt myself"),
        ("them selves", "themselves"),
        ("my self-esteem", "my self estem"),
        ("i want 2 die", "i want to die"),
        ("I have 2 kids", "i have 2 kids"),
        ("I W A N T TO DIE", "iwant to die"),
    ],
)
def test_normalization(raw: str, normal: str) -> None:
    assert normalize(raw) == normal


def test_patterns_are_normalized_like_messages() -> None:
    assert compile_pattern("Don't  want to LIVE").search(normalize("i dont want to live"))
    assert compile_pattern("kill myself").search("kilmyself")
    assert not compile_pattern("kill myself").search("skil myself")


def test_shipped_files_validate() -> None:
    assert validate_safety(DIALOGS) == []


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, root)
    return root


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('        - "kms"\n', '        - "(kms"\n', "pattern '(kms'"),
        ('        - "kms"\n', '        - "Ünïcode ok but <this> is not"\n', "never occur"),
        ('        - "kms"\n', '        - "(kms)?"\n', "empty message"),
        ("  ignore:\n", "  ignored:\n", "ignored"),
        ("    immediate_danger:\n", "    danger_now:\n", "danger_now"),
    ],
)
def test_pattern_file_errors_name_the_line(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    root = _tree(tmp_path)
    path = root / "en" / PATTERN_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    errors = [str(e) for e in validate_safety(root)]
    assert errors, "expected an error"
    assert any(fragment in e and f"{PATTERN_FILE}:{line}:" in e for e in errors), errors


def test_a_missing_safety_message_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    path = root / "en" / "messages.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  helpline_or:", "  helpline_either:"), encoding="utf-8")
    errors = [str(e) for e in validate_safety(root)]
    assert any("missing safety text for: helpline_or" in e for e in errors), errors
