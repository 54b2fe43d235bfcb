"""Reading what a person typed: commands, ratings, choices named in words, clean text.

Pure functions of the text (and the state's options): no turn, no storage, so adapters and
features (the console, the crisis screen, reminder settings) read input exactly as the
engine does.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

from bot.engine.events import Command, Edited, Event, Option, Scale, Text, Unsupported
from bot.engine.schema import StateSpec

STOP_WORDS = frozenset({"stop", "cancel", "quit", "exit", "/stop"})
NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_SCALE = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*10|out of 10)?\s*[.!]?\s*$", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_APOSTROPHES = re.compile(r"['’‘`]")
# "/name" or "/name@bot", optionally followed by arguments ("/country GB").
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32}(?:@\w+)?)(?:\s+(.*))?$", re.DOTALL)


def parse_command(text: str) -> tuple[str, str] | None:
    """("name", "args") for "/name args" or "/name@bot args"; None for anything else."""
    found = _COMMAND.match(text)
    if found is None:
        return None
    return found.group(1).split("@")[0].lower(), (found.group(2) or "").strip()


def is_stop(text: str) -> bool:
    """Whether a message asks to stop ("stop", "Cancel!"), said in words, not as /stop."""
    return text.lower().strip(".! ") in STOP_WORDS


def screenable(event: Event) -> list[str]:
    """The free text in an event that the crisis screen reads: a message (a command's words
    after its name), an edit, a caption. Cleaned exactly as the dispatcher cleans it."""
    if isinstance(event, Text | Edited):
        text = clean_text(event.text)
        command = parse_command(text) if isinstance(event, Text) else None
        if command is not None:
            text = command[1]
        return [text] if text else []
    if isinstance(event, Unsupported):
        caption = clean_text(event.caption)
        return [caption] if caption else []
    if isinstance(event, Command):
        return [event.args.strip()] if event.args.strip() else []
    return []


def clean_text(text: str) -> str:
    """Normalize what a person typed: NFC, no invisible direction marks, trimmed."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return text.strip()


def has_words(text: str) -> bool:
    """True if the text has a letter or an emoji: a bare "." or "8" is not an answer in words."""
    return any(
        unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "So" for ch in text
    )


def is_throwaway(text: str, words: Iterable[str]) -> bool:
    """A throwaway answer to a question that wants words: one of `words` ("k", "idk"; case,
    apostrophes and punctuation aside), or emoji alone."""
    wanted = _bare(text)
    if wanted and wanted in {_plain_word(w) for w in words}:
        return True
    kinds = {unicodedata.category(ch) for ch in text if not ch.isspace()}
    return "So" in kinds and not any(kind[0] in "LN" for kind in kinds)


def asks_what_i_am(text: str, openings: str) -> bool:
    """A short question about what kindbot is ("are you a real person?", "is this a bot"):
    one of `openings` (comma-separated) starting a message of at most ten words."""
    words = _bare(text).split()
    if not words or len(words) > 10:
        return False
    starts = _openings(openings)
    return any(" ".join(words[:n]) in starts for n in range(1, len(words) + 1))


@functools.lru_cache(maxsize=16)
def _openings(openings: str) -> frozenset[str]:
    """The plain forms of a comma-separated list, once per list (it is read per message)."""
    return frozenset(p for o in openings.split(",") if (p := _plain_word(o)))


def parse_scale(text: str, scale: Scale, filler: Iterable[str] = ()) -> int | None:
    """A rating typed as `7`, `7/10`, `7 out of 10` or `seven`, or hedged in a short answer
    ("like a 7", "maybe 5 tbh", "7ish", "I'd say six"): one number, and every other word one
    of `filler` (the dialog files' `scale_filler_words`); None if it is not one. "6 or 7",
    "not 7", "7.5" and "-1" are none: the person is asked again."""
    word = text.strip().strip(".!").lower()
    if word in NUMBER_WORDS:
        value: int | None = NUMBER_WORDS[word]
    elif match := _SCALE.match(text):
        value = int(match.group(1))
    else:
        value = _hedged_rating(text, filler)
    return value if value is not None and scale.low <= value <= scale.high else None


_OUT_OF = re.compile(r"\s*(?:/|\bout of\b)\s*10\b", re.IGNORECASE)
_NEGATIVE = re.compile(r"-\s*\d")
_TOKENS = re.compile(r"\d+|[^\W\d_]+")
HEDGED_WORDS = 8


def _hedged_rating(text: str, filler: Iterable[str]) -> int | None:
    """The one number of a short answer whose other words are all `filler`."""
    if _NEGATIVE.search(text):
        return None
    tokens = _TOKENS.findall(_bare(_OUT_OF.sub(" ", text)))
    if not tokens or len(tokens) > HEDGED_WORDS:
        return None
    allowed = {_plain_word(w) for w in filler if w.strip()}
    numbers = [t for t in tokens if t.isdigit() or t in NUMBER_WORDS]
    if len(numbers) != 1 or any(t not in allowed for t in tokens if t not in numbers):
        return None
    number = numbers[0]
    return int(number) if number.isdigit() and len(number) <= 2 else NUMBER_WORDS.get(number)


def match_choice(text: str, options: tuple[Option, ...]) -> str | None:
    """A choice typed instead of pressed: its number (its place in the list), or its label.
    A number never picks an option that is not `numbered` (turning off, deleting, going
    back, ending a safety pause): those are pressed or typed in words."""
    wanted = _plain(text)
    if wanted.isdigit():
        index = int(wanted) - 1
        if 0 <= index < len(options) and options[index].numbered:
            return options[index].value
        return None
    for option in options:
        if wanted and (_plain(option.label) == wanted or option.value == wanted):
            return str(option.value)
    return None


def near_choice(text: str, options: tuple[Option, ...]) -> str | None:
    """The one `numbered` option whose label is a typo away from `text` ("sundy", "tuesdy"):
    one edit for a label of five to seven letters, two from eight. For questions answered
    only by a choice (`Turn.typed_choice`): where words are welcome, "dumb" is an answer,
    not a slip for "Numb". Letters only (a time such as "19:00" is never near "18:00"); only
    numbered options, as for numbers (ending a pause or deleting is never picked by a near
    miss); and two labels near enough mean the person should say which."""
    wanted = _plain(text)
    if len(wanted) < 5 or not wanted.replace(" ", "").isalpha():
        return None
    near = [
        option.value
        for option in options
        if option.numbered
        and len(label := _plain(option.label)) >= 5
        and label.replace(" ", "").isalpha()
        and _within(label, wanted, 1 if len(label) < 8 else 2)
    ]
    return str(near[0]) if len(near) == 1 else None


def named_choice(text: str, options: tuple[Option, ...], filler: Iterable[str]) -> str | None:
    """The one `numbered` option a short answer names by its words ("breathing pls", "the
    senses one", "slow breath"): for questions answered only by a choice, where asking again
    would only repeat the buttons to someone who already said which. At most six words;
    every word that is not `filler` ("the", "one", "pls") must be a word of that option's
    label, or share its first five letters ("breath", "breathing"), and of no other option's
    label. A word of its own ("not breathing", "feel awful") or a word two labels share ("safe"
    in "I'm safe" and "I'm not safe") picks nothing; numbers are `match_choice`'s."""
    words = _bare(text).split()
    content = without_filler(text, filler).split()
    if not content or len(words) > 6 or not all(word.isalpha() for word in content):
        return None
    named: set[int] = set()
    for word in content:
        hits = {
            i
            for i, option in enumerate(options)
            if any(_same_word(word, label) for label in _plain(option.label).split())
        }
        if not hits:
            return None
        named |= hits
    if len(named) != 1:
        return None
    option = options[named.pop()]
    return str(option.value) if option.numbered else None


def ordinal_choice(
    text: str, options: tuple[Option, ...], ordinals: Sequence[str], filler: Iterable[str]
) -> str | None:
    """An option named by its place ("the second one", "first pls"), as its number would
    name it. `ordinals` are the words for first, second, … in the person's language, then
    the one word that may stand before them ("the"): "one second" or "just a sec" is a
    pause, not the second option."""
    *places, article = [_plain_word(word) for word in ordinals]
    content = without_filler(text, filler).split()
    if len(content) != 1 or content[0] not in places:
        return None
    words = _bare(text).split()
    at = words.index(content[0])
    if at > 0 and words[at - 1] != article:
        return None
    return match_choice(str(places.index(content[0]) + 1), options)


def without_filler(text: str, filler: Iterable[str]) -> str:
    """`text` without its `filler` words ("free pls" → "free"), to be read as an alias."""
    skip = {_plain_word(word) for word in filler}
    words = _bare(text).split()
    return " ".join(word for word in words if word not in skip)


def _same_word(typed: str, label: str) -> bool:
    """`typed` is `label`, or both are five letters or more and begin with the same five."""
    return typed == label or (len(typed) >= 5 and len(label) >= 5 and typed[:5] == label[:5])


def _within(a: str, b: str, limit: int) -> bool:
    """Whether `a` and `b` are at most `limit` edits apart (insert, delete, change, or two
    neighbours swapped), computed row by row and given up once every cell passes `limit`."""
    if abs(len(a) - len(b)) > limit:
        return False
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return False
        before, row = row, current
    return row[-1] <= limit


def is_go_ahead(text: str, words: str) -> bool:
    """Whether `text` is one of `words` (comma-separated: "ok, yes, next, 👍"), the typed
    ways of pressing the only button of a step. Emoji count, so 👍 is kept, not dropped."""
    wanted = _go_ahead(text)
    return bool(wanted) and wanted in {_go_ahead(w) for w in words.split(",")}


def _go_ahead(text: str) -> str:
    # variation selectors and skin tones off ("👍🏽" is "👍"), case and end punctuation off
    text = re.sub(r"[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]", "", text.casefold())
    return " ".join(text.strip(" .!?,;:").split())


def match_alias(text: str, state: StateSpec) -> str | None:
    """A typed answer listed among a choice's `aliases` ("no", "not really"); apostrophes
    are dropped first, so "I'm safe" matches the alias "im safe" and the other way round."""
    wanted = _bare(text)
    if not wanted:
        return None  # emoji or punctuation alone name no alias
    for choice in state.choices:
        if any(_plain_word(alias) == wanted for alias in choice.aliases):
            return choice.value
    return None


def _plain(text: str) -> str:
    """Letters, digits and single spaces, case-folded: "Older ▶" and "older" match."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.casefold())
    return " ".join(kept.split())


def _bare(text: str) -> str:
    """`_plain` without apostrophes: "I'm safe" and "im safe" are the same answer."""
    return _plain(_APOSTROPHES.sub("", text))


# The dialog files' own words (aliases, filler, ordinal and throwaway words), which every typed
# answer is compared with, made bare once per process, not once per message. Never what a
# person typed: a cache would keep it.
_plain_word = functools.lru_cache(maxsize=4096)(_bare)
