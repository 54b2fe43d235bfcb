"""The screen's cheap string tests never change a verdict: the same `ScreenResult` as searching
every regex on the whole message (the old screen), and needs that every match contains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.config import REPO_ROOT
from bot.safety.literals import (
    Needs,
    grams,
    keys_of,
    needs_of,
    needs_of_joined,
    required_strings,
)
from bot.safety.screen import (
    CATEGORIES,
    PATTERN_FILE,
    Guarded,
    Screen,
    ScreenResult,
    compile_joined,
    compile_pattern,
    guard_joined,
    load_screen,
    normalize,
)
from bot.safety.semantic import load_examples

PATTERN_FILES = sorted((REPO_ROOT / "dialogs").glob(f"*/{PATTERN_FILE}"))


def _load(path: Path) -> Screen:
    screen, errors = load_screen(path, str(path))
    assert errors == []
    assert screen is not None
    return screen


SCREENS = {path.parent.name: _load(path) for path in PATTERN_FILES}


def reference(screen: Screen, text: str) -> ScreenResult | None:
    """The old screen, kept plain: every compiled regex searched on the whole text."""

    def found(patterns: list[Guarded]) -> bool:
        return any(p.rx.search(norm) for p in patterns)

    norm = normalize(text)
    for pattern in screen.ignore:
        norm = pattern.rx.sub(" | ", norm)
    others = worried = False
    for pattern in screen.about_others:
        norm, count = pattern.rx.subn(" | ", norm)
        others = others or count > 0
    for pattern in screen.someone_at_risk:
        norm, count = pattern.rx.subn(" | ", norm)
        worried = worried or count > 0
    for category in CATEGORIES:
        if found(screen.crisis.get(category, [])) or found(screen.joined.get(category, [])):
            if found(screen.negation) or found(screen.distant_past):
                return ScreenResult(category, "check", capped=True)
            softened = found(screen.softer)
            return ScreenResult(category, "check" if softened else "crisis")
    for category in CATEGORIES:
        if found(screen.check.get(category, [])):
            if not found(screen.not_about_me):
                return ScreenResult(category, "check")
            break
    if worried and found(screen.not_about_me):
        return None
    if worried and not found(screen.distant_past):
        return ScreenResult("suicide", "worried")
    if others or worried:
        return ScreenResult("suicide", "concern")
    return None


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def base_texts() -> list[str]:
    """Every example line, every phrase of phrases.yaml, and a few everyday messages."""
    phrases = yaml.safe_load((Path(__file__).parent / "phrases.yaml").read_text("utf-8"))
    everyday = ["7", "I'm having the thought that I always mess up", "ok", "", "thanks!"]
    return [e.text for e in load_examples()] + list(_strings(phrases)) + everyday


def _doubled(text: str) -> str:
    return "".join(ch * 2 if ch.isalpha() else ch for ch in text)


VARIANTS = {
    "as written": lambda t: t,
    "no spaces": lambda t: t.replace(" ", ""),
    "letters doubled": _doubled,
    "glued to a word": lambda t: "so" + t,
    "uppercased": str.upper,
    "with emoji": lambda t: f"😢 {t} 💔",
}


@pytest.mark.parametrize("locale", sorted(SCREENS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_screen_gives_the_old_verdicts(locale: str, variant: str) -> None:
    screen, change = SCREENS[locale], VARIANTS[variant]
    texts = base_texts()
    # as the assessor joins a message with the ones before it
    texts += [f"{a} {b}" for a, b in zip(texts[::7], texts[1::7], strict=False)]
    differ = [t for t in map(change, texts) if screen.check_text(t) != reference(screen, t)]
    assert differ == []


@pytest.mark.parametrize("locale", sorted(SCREENS))
def test_every_match_of_every_pattern_passes_its_needs(locale: str) -> None:
    """Stricter than equal verdicts: one pattern wrongly skipped may hide behind another."""
    norms = [normalize(t) for t in base_texts()]
    norms += [n.replace(" ", "") for n in norms]
    wrong = [
        (p.rx.pattern, n)
        for patterns in SCREENS[locale].lists()
        for p in patterns
        for n in norms
        if p.rx.search(n) and not p.may_occur(n, grams(n))
    ]
    assert wrong == []


ALL_PATTERNS = [
    pytest.param(p, id=f"{locale}-{i}")
    for locale, screen in SCREENS.items()
    for i, p in enumerate(p for ps in screen.lists() for p in ps)
]


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_matches_pass_the_needs(pattern: Guarded, data: st.DataObject) -> None:
    alphabet = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789 ")
    text = data.draw(st.from_regex(pattern.rx, alphabet=alphabet))
    assume(pattern.rx.search(text))
    assert pattern.may_occur(text, grams(text))


def required(regex: str) -> set[frozenset[str]] | None:
    found = required_strings(regex)
    return None if found is None else set(found)


def built(source: str) -> str:
    """The regex text `compile_pattern` builds from a pattern as written."""
    return compile_pattern(source).pattern


def test_a_plain_phrase_needs_itself() -> None:
    assert required("kms") == {frozenset({"kms"})}


def test_an_alternation_needs_one_of_its_spellings() -> None:
    assert required("(cut|slit) my wrist") == {frozenset({"cut my wrist", "slit my wrist"})}
    assert required("suicide|overdose") == {frozenset({"suicide", "overdose"})}


def test_an_optional_space_gives_both_spellings() -> None:
    assert required(built("wanna die")) == {frozenset({"wanadie", "wana die"})}
    assert required(built("(kill|end) myself")) == {
        frozenset({"kilmyself", "kil myself", "endmyself", "end myself"})
    }


def test_optional_groups_and_lookarounds_add_nothing() -> None:
    # "sad" alone: "very sad" and "verysad" contain it
    assert required(built("(very )?sad(?! about)")) == {frozenset({"sad"})}
    # a lookahead takes no room: what is around it stays joined
    assert required("ab(?!cd)ef") == {frozenset({"abef"})}
    assert required("(x)?(?=yes)") == set()


def test_a_repeat_needs_what_one_repetition_needs() -> None:
    assert required("(ab)+c") == {frozenset({"ab"}), frozenset({"c"})}
    assert required("(ab){2}") == {frozenset({"ab"})}
    assert required("x(yz){0,4}") == {frozenset({"x"})}
    assert required("[a-z ]{0,30}to die") == {frozenset({"to die"})}


def test_a_character_class_splits_what_is_needed() -> None:
    assert required("my [a-z]+ hurts me") == {frozenset({"my "}), frozenset({" hurts me"})}
    assert required(built("(took|taken) [0-9]{2,} (pills|tablets)")) == {
        frozenset({"tok", "taken"}),
        frozenset({"pils", "tablets"}),
    }


def test_what_the_reader_does_not_know_is_always_searched() -> None:
    for regex in ("(?i)kill", r"(a)\1", "a{x}", "(?P=name)", r"\n", "(ab", "ab)"):
        assert needs_of(regex) is None, regex


def test_needs_keep_pieces_of_at_most_six_letters_and_no_single_letters() -> None:
    needs = needs_of("(cut|slit) my wrist")
    assert needs is not None
    assert needs.groups == ((" my wr",),)
    assert needs_of("a{2,3}") is None  # "a" is in almost every message


def test_a_joined_phrase_needs_each_pair_of_letters_with_or_without_a_space() -> None:
    needs = needs_of_joined("wanadie")
    assert needs is not None
    rx = compile_joined("wanna die")
    for text in ("iwannadie", "wwaannna ddie", "w a n n a d i e", "wanna die"):
        assert rx.search(text)
        assert needs.could_match(text)
    assert not needs.could_match("i want to diet")


def test_a_joined_pattern_is_skipped_only_when_it_cannot_match() -> None:
    pattern = guard_joined("i want to die")
    for text in ("iwanttodie", "i wantt to die", "ok i w a n t to die"):
        assert pattern.rx.search(text)
        assert pattern.may_occur(text, grams(text))
    assert not pattern.may_occur("hello there", grams("hello there"))


def test_a_key_holds_one_three_letter_piece_of_each_string() -> None:
    keys = keys_of(["myself", "kil it"])
    assert len(keys) == 2
    for key in keys:
        assert len(key) == 2
        assert all(len(piece) == 3 for piece in key)
        assert any(piece in "myself" for piece in key)
        assert any(piece in "kil it" for piece in key)
    assert keys_of(["kms"]) == [frozenset({"kms"})]  # one piece: one key
    assert keys_of(["me", "myself"]) == []  # "me" has no three-letter piece


def test_needs_could_match_is_an_and_of_ors() -> None:
    needs = Needs((("abc", "xyz"), ("def",)))
    assert needs.could_match("xyz def")
    assert not needs.could_match("abc de f")
    assert not needs.could_match("def")


def test_the_cover_keeps_a_shared_piece() -> None:
    needs = needs_of(built("(kill|end) myself"))
    assert needs is not None
    assert needs.groups == (("myself",),)
