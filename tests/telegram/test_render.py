"""Rendering pieces on their own: callback data, keyboards, splitting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.engine.events import ChoiceMade, Message, Option, Scale
from bot.telegram.render import button_rows, decode_choice, encode_choice, keyboard, split_text


def test_callback_data_round_trips_and_fits() -> None:
    data = encode_choice(123456789012, "a" * 32)
    assert len(data.encode()) <= 64
    assert decode_choice(data) == ChoiceMade("a" * 32, 123456789012)
    assert decode_choice(encode_choice(None, "yes")) == ChoiceMade("yes", None)
    for bad in (None, "", "yes", "1:", ":yes", "1:Yes", "1:a b", "1:" + "a" * 33, "-1:yes"):
        assert decode_choice(bad) is None


def test_keyboards() -> None:
    options = (Option("yes", "Yes"), Option("no", "No"))
    markup = keyboard(Message("?", options, step=4))
    assert markup is not None
    assert [[b["callback_data"] for b in row] for row in markup["inline_keyboard"]] == [
        ["4:yes", "4:no"]
    ]
    small = keyboard(Message("?", scale=Scale(1, 5), step=2))
    assert small is not None
    assert [[b["text"] for b in row] for row in small["inline_keyboard"]] == [
        ["1", "2", "3", "4", "5"]
    ]
    assert keyboard(Message("plain")) is None


def test_one_word_buttons_share_rows_and_phrases_stand_alone() -> None:
    words = ["Ashamed", "Sad", "Anxious", "Angry with myself", "Alone", "Numb"]
    assert button_rows(words) == [[0, 1, 2], [3], [4, 5]]
    assert button_rows(["More contacts", "My safety plan"]) == [[0], [1]]
    assert button_rows(["08:00", "12:00", "18:00", "20:00"]) == [[0, 1, 2], [3]]
    # never more than ROW_CHARS together
    assert button_rows(["Overwhelmed", "Embarrassed", "Frustrated"]) == [[0, 1], [2]]


def test_splitting_prefers_lines_then_words_then_cuts() -> None:
    assert split_text("short") == ["short"]
    assert split_text("aaaa\nbbbb", limit=6) == ["aaaa", "bbbb"]
    assert split_text("aaa bbb ccc", limit=8) == ["aaa bbb", "ccc"]
    assert split_text("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]
    assert split_text("🌱" * 3, limit=4) == ["🌱🌱", "🌱"]  # UTF-16 units, as Telegram counts


@given(st.text(alphabet=st.sampled_from("ab \n🌱"), min_size=1, max_size=300))
def test_split_pieces_fit_and_keep_every_word(text: str) -> None:
    pieces = split_text(text, limit=20)
    assert all(len(p.encode("utf-16-le")) // 2 <= 20 for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )
