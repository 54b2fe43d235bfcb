"""The pure parts of bot/engine/habits.py and parsing.is_throwaway."""

from __future__ import annotations

import pytest

from bot.engine.habits import first_part
from bot.engine.parsing import is_throwaway

WORDS = ["k", "ok", "idk", "i dont know", "hi"]


@pytest.mark.parametrize(
    "text",
    ["k", "K.", "ok!", "idk", "IDK?", "I don't know", "i dont know...", "hi", "👍", "🙂🙂", "❤️"],
)
def test_throwaway_answers(text: str) -> None:
    assert is_throwaway(text, WORDS)


@pytest.mark.parametrize(
    "text",
    ["sad", "ok I guess I'm sad", "kind", "8", "🙂 tired", "I know", "hi, I feel awful", "."],
)
def test_answers_in_words_are_not_throwaway(text: str) -> None:
    assert not is_throwaway(text, WORDS)


def test_first_part_ends_at_a_sentence_when_one_is_far_enough_in() -> None:
    text = "One two three. " * 10  # 150 characters
    part = first_part(text, 100)
    assert part.endswith("three.") and len(part) <= 100 and part.startswith("One")


def test_first_part_ends_at_a_word_without_a_sentence_end() -> None:
    text = "word " * 40
    part = first_part(text, 52)
    assert part == " ".join(["word"] * 10)


def test_first_part_of_one_long_word_is_cut_at_the_limit() -> None:
    assert first_part("x" * 300, 100) == "x" * 100


def test_text_within_the_limit_is_whole() -> None:
    assert first_part("short enough", 100) == "short enough"
