"""The crisis screen: does a message speak of suicide, self-harm, harm from others or
immediate danger?

Patterns live per locale in `dialogs/<locale>/crisis_patterns.yaml` (see the comments there).
Both the message and every pattern go through the same normalization first — casefold, no
accents or apostrophes, common digit-for-letter swaps undone ("k1ll"), punctuation turned
into spaces, spaced-out letters joined ("k i l l"), and repeated letters collapsed ("killl
myselfff" and "kill myself" both become "kil myself"), "my self" written as two words
joined ("hurt my self" = "hurt myself"), and "2" between words read as "to" ("want 2 die")
— so writers spell patterns normally. A space in a pattern also matches no space
("killmyself"), and patterns match whole words. `joined` phrases are also found glued to
the word before them ("iwanttodie", "I W A N T TO DIE").

Messages about someone else's attempt ("my sister attempted suicide") match `about_others`:
that part is cut out before matching, and if nothing else matches, the result is the level
`concern` (a gentle "how are you doing?", not the crisis opening). Messages saying someone else
may be in danger now ("my friend keeps saying she wants to die, how do I help her") match
`someone_at_risk`: cut out the same way, and if nothing about the person themselves matches,
the level is `worried` (what to do for them, the lines that also talk with people who are
worried about someone, and a question about the person too).

Two levels: `crisis` (clearly about the person's own danger: the full crisis response) and
`check` (unsure, or a topic word alone: a gentler "are you safe?", still a crisis pause).
A `check` that comes only from a topic word is dropped when the message is plainly about
something else (a film, an essay, statistics): that is a passing mention.

A crisis match in a message that also says `negation` ("I would never kill myself") or
`distant_past` ("I attempted suicide years ago, I'm stable now") is a `check`, marked
`capped`: no other layer may raise it back to the full response.

Every alternative of a "not followed by" exclusion, `(?! to| on)`, ends at a word boundary
when it ends in a letter or digit (` to` excludes "to", never "today"); `compile_pattern`
adds the boundary, so writers need not remember it.

Each pattern also knows strings that any match of it contains (`literals.py`): a message
without them skips that regex, which is most regexes for most messages. Verdicts are exactly
those of searching every regex (tests/safety/test_prefilter.py checks this).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.engine.yamlsource import LineDict, SourceError, line_of, load_yaml
from bot.safety.literals import Needs, grams, keys_of, needs_of, needs_of_joined

CATEGORIES = ("immediate_danger", "suicide", "self_harm", "harm_from_others")
Level = Literal["crisis", "check", "worried", "concern"]
PATTERN_FILE = "crisis_patterns.yaml"

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# A digit or symbol standing in for a letter: between letters ("k1ll"), or $/@ opening a word.
_LEET_CHAR = re.compile(r"(?<=[a-z])[013457@$](?=[a-z])|(?<![a-z0-9])[@$](?=[a-z])")
_APOSTROPHES = re.compile(r"['’‘`´]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z] ){2,}[a-z](?![a-z0-9])")
_REPEATS = re.compile(r"([a-z])\1+")
# "my self", "him self", "them selves" → "myself", "himself", "themselves" (not "my self esteem").
_SPLIT_SELF = re.compile(
    r"(?<![a-z0-9])(my|your|him|her|it|one|our|them|thy) (self|selves|selfs)(?![a-z0-9])"
    r"(?! (esteem|worth|confidence|image|respect|care|doubt|love|belief|talk|control|awareness"
    r"|compassion|harm|injury|help|conscious|pity|hatred|hate|defen[cs]e|portrait|discipline))"
)
# "2" before a verb, as a word or glued ("want 2 die", "want2die"), means "to".
_TWO = re.compile(
    r"(?<=[a-z]) ?2 ?(?=(die|kill|end|hurt|cut|harm|live|be|stop|off|disappear|jump)(?![a-z]))"
)
_PATTERN_CHARS = re.compile(r"^[a-z0-9 ()|?!*+.^$\[\]{},\\-]+$")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", text)


def normalize(text: str) -> str:
    """The form every message is matched in: lowercase ASCII words, single spaces."""
    text = _fold(text)
    text = _TWO.sub(" to ", text)
    text = _LEET_CHAR.sub(lambda m: _LEET[m.group()], text)
    text = _NOT_WORD.sub(" ", text).strip()
    text = _SPACED_LETTERS.sub(lambda m: m.group().replace(" ", ""), text)
    text = _SPLIT_SELF.sub(lambda m: m.group(1) + m.group(2), text)
    return _REPEATS.sub(r"\1", text)


def bounded_exclusions(body: str) -> str:
    """Each alternative of every `(?!…)` ends at a word boundary if it ends in a word
    character or a group (so ` to` no longer excludes "today"); alternatives that end in a
    space, `$` or a nested lookahead are exact already and left alone."""
    out: list[str] = []
    i = 0
    while i < len(body):
        if body.startswith("(?!", i):
            end = _closing(body, i)
            inner = bounded_exclusions(body[i + 3 : end])
            parts = [_with_boundary(p) for p in _alternatives(inner)]
            out.append("(?!" + "|".join(parts) + ")")
            i = end + 1
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


_BOUNDARY = "(?![a-z0-9])"


def _closing(body: str, start: int) -> int:
    """Index of the parenthesis closing the group that opens at `start`."""
    depth, j = 0, start
    while j < len(body):
        if body[j] == "\\":
            j += 2
            continue
        if body[j] == "(":
            depth += 1
        elif body[j] == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise ValueError("unbalanced parentheses")


def _alternatives(inner: str) -> list[str]:
    """`inner` split at its top-level `|`."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in inner:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _with_boundary(alternative: str) -> str:
    """The alternative with a word boundary after its last word, before any lookarounds
    it ends with (" to(?! stop)" → " to(?![a-z0-9])(?! stop)"; " for (?!a while)" as is)."""
    head, tail = alternative, ""
    while head.endswith(")"):
        depth = 0
        for j in range(len(head) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(head[j], 0)
            if depth == 0:  # the group that ends `head` opens here
                break
        if not head.startswith(("(?!", "(?=", "(?<"), j):
            break
        head, tail = head[:j], head[j:] + tail
    if not head or head[-1] in " $" or head.endswith(_BOUNDARY):
        return alternative
    return head + _BOUNDARY + tail


def compile_pattern(source: str) -> re.Pattern[str]:
    """A pattern as written → a regex over normalized text (whole words; spaces optional)."""
    body = _REPEATS.sub(r"\1", " ".join(_fold(source).split()))
    if not _PATTERN_CHARS.match(body):
        bad = sorted({ch for ch in body if not _PATTERN_CHARS.match(ch)})
        raise ValueError(f"characters that never occur in normalized text: {''.join(bad)!r}")
    body = bounded_exclusions(body)
    # A space between words may also be missing ("killmyself"); a space before a lookahead
    # "(?!" or a quantifier stays exactly one space, so exclusions stay exact.
    body = re.sub(r" (?![?*+{]|\(\?)", " ?", body)
    compiled = re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")
    if compiled.fullmatch(""):
        raise ValueError("this pattern matches an empty message")
    return compiled


def compile_joined(source: str) -> re.Pattern[str]:
    """A `joined` phrase → a regex that also finds it glued to what comes before it.

    Only letters; each gap may be a space or nothing, and the phrase must end a word
    ("iwanttodie", "iwant to die", but not "i want to diet").
    """
    letters = _joined_letters(source)
    # Letters doubled across a gap ("want to") were not collapsed: let each letter repeat.
    return re.compile(" ?".join(f"{ch}(?: ?{ch})*" for ch in letters) + "(?![a-z0-9])")


def _joined_letters(source: str) -> str:
    """The letters of a `joined` phrase as its regex spells them (repeats collapsed)."""
    letters = _REPEATS.sub(r"\1", "".join(_fold(source).split()))
    if not letters.isascii() or not letters.isalpha() or len(letters) < 6:
        raise ValueError("a joined phrase needs six or more plain letters")
    return letters


@dataclass(frozen=True, slots=True)
class Guarded:
    """A compiled pattern and the strings it cannot match without (see `literals.py`).

    `needs` is None when nothing safe could be derived: such a pattern is always searched.
    `keys`: for each group of needs whose strings are long enough, one three-letter piece of
    each string (`literals.keys_of`); a message must share a piece with every key. Comparing
    sets of pieces is far cheaper than scanning the message for each string.
    """

    rx: re.Pattern[str]
    needs: Needs | None
    keys: tuple[frozenset[str], ...] = ()

    def may_occur(self, text: str, pieces: frozenset[str]) -> bool:
        """False only when the regex surely finds nothing in `text`, whose three-letter
        pieces are `pieces` (`literals.grams`): the keys first, then the strings."""
        for key in self.keys:
            if pieces.isdisjoint(key):
                return False
        return self.needs is None or self.needs.could_match(text)

    def subn(self, text: str, pieces: frozenset[str]) -> tuple[str, int]:
        """Every occurrence replaced by a break (" | "), as `re.subn` does."""
        if not self.may_occur(text, pieces):
            return text, 0
        return self.rx.subn(" | ", text)


# Both are pure functions of the pattern's text, and deriving the needs is the slow part of
# loading (~0.4 s for the English file): kept per process, so every app opened in one (a test
# suite opens hundreds) compiles each pattern once.
@functools.lru_cache(maxsize=4096)
def guard_pattern(source: str) -> Guarded:
    """`compile_pattern`, with the needs read from the regex it built."""
    rx = compile_pattern(source)
    return _guarded(rx, needs_of(rx.pattern))


@functools.lru_cache(maxsize=1024)
def guard_joined(source: str) -> Guarded:
    """`compile_joined`, with the needs of its letter-by-letter regex."""
    rx = compile_joined(source)
    return _guarded(rx, needs_of_joined(_joined_letters(source)))


def _guarded(rx: re.Pattern[str], needs: Needs | None) -> Guarded:
    """The pattern with the keys of its groups: the first key of each group first."""
    per_group = [keys_of(group) for group in needs.groups] if needs else []
    most = max(map(len, per_group), default=0)
    ordered = [keys[i] for i in range(most) for keys in per_group if i < len(keys)]
    return Guarded(rx, needs, tuple(dict.fromkeys(ordered)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySpec(_Strict):
    crisis: list[str] = Field(min_length=1)
    check: list[str] = Field(default_factory=list)
    joined: list[str] = Field(default_factory=list)


class ScreenSpec(_Strict):
    locale: str
    categories: dict[
        Literal["immediate_danger", "suicide", "self_harm", "harm_from_others"], CategorySpec
    ]
    ignore: list[str] = Field(default_factory=list)
    softer: list[str] = Field(default_factory=list)
    negation: list[str] = Field(default_factory=list)
    distant_past: list[str] = Field(default_factory=list)
    not_about_me: list[str] = Field(default_factory=list)
    about_others: list[str] = Field(default_factory=list)
    someone_at_risk: list[str] = Field(default_factory=list)


class ScreenFile(_Strict):
    screen: ScreenSpec


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What the screen found: a category and how sure it is. Never the words themselves."""

    category: str
    level: Level
    # a negation or distant past made this a check: nothing may raise it to crisis
    capped: bool = False
    # which layer heard it: the readable patterns, or the semantic model
    source: Literal["patterns", "model"] = "patterns"


@dataclass
class Screen:
    """Compiled patterns of one locale."""

    crisis: dict[str, list[Guarded]] = field(default_factory=dict)
    check: dict[str, list[Guarded]] = field(default_factory=dict)
    joined: dict[str, list[Guarded]] = field(default_factory=dict)
    ignore: list[Guarded] = field(default_factory=list)
    softer: list[Guarded] = field(default_factory=list)
    negation: list[Guarded] = field(default_factory=list)
    distant_past: list[Guarded] = field(default_factory=list)
    not_about_me: list[Guarded] = field(default_factory=list)
    about_others: list[Guarded] = field(default_factory=list)
    someone_at_risk: list[Guarded] = field(default_factory=list)

    def lists(self) -> list[list[Guarded]]:
        """Every list of patterns, in no particular order."""
        return [
            *self.crisis.values(),
            *self.check.values(),
            *self.joined.values(),
            self.ignore,
            self.softer,
            self.negation,
            self.distant_past,
            self.not_about_me,
            self.about_others,
            self.someone_at_risk,
        ]

    def check_text(self, text: str) -> ScreenResult | None:
        """Screen one message; None when it is not a crisis (nor unsure enough to ask)."""
        norm, pieces, worried, others = self._cut(text)
        for category in CATEGORIES:
            if _found(self.crisis.get(category, ()), norm, pieces) or _found(
                self.joined.get(category, ()), norm, pieces
            ):
                if _found(self.negation, norm, pieces) or _found(self.distant_past, norm, pieces):
                    return ScreenResult(category, "check", capped=True)
                softened = _found(self.softer, norm, pieces)
                return ScreenResult(category, "check" if softened else "crisis")
        for category in CATEGORIES:
            if _found(self.check.get(category, ()), norm, pieces):
                if not _found(self.not_about_me, norm, pieces):
                    return ScreenResult(category, "check")
                break  # a passing mention (a film, an essay): not about the person
        if worried and _found(self.not_about_me, norm, pieces):
            return None  # "in the book she cuts herself", Romeo and Juliet
        if worried and not _found(self.distant_past, norm, pieces):
            return ScreenResult("suicide", "worried")
        if worried or others:  # "... years ago, she's doing well now": the past, not now
            return ScreenResult("suicide", "concern")
        return None

    def _cut(self, text: str) -> tuple[str, frozenset[str], bool, bool]:
        """Normalize; cut out ignored phrases, then someone else's past (so "my sister tried
        to kill herself years ago" is not read as danger now), then someone else's danger.
        Returns the rest, its pieces, and whether danger (`worried`) and the past were cut."""
        norm = normalize(text)
        norm, pieces, _ = _without(self.ignore, norm, grams(norm))
        norm, pieces, past = _without(self.about_others, norm, pieces)
        norm, pieces, danger = _without(self.someone_at_risk, norm, pieces)
        return norm, pieces, danger, past


def _without(
    patterns: Iterable[Guarded], norm: str, pieces: frozenset[str]
) -> tuple[str, frozenset[str], bool]:
    """`norm` with every match of `patterns` replaced by a break, its pieces, and whether any
    matched."""
    hit = False
    for pattern in patterns:
        norm, count = pattern.subn(norm, pieces)
        if count:
            pieces = grams(norm)
            hit = True
    return norm, pieces, hit


def _found(patterns: Iterable[Guarded], text: str, pieces: frozenset[str]) -> bool:
    """Whether any pattern occurs in `text` (whose three-letter pieces are `pieces`).

    Each pattern alone: most are skipped by a set operation or two on their keys, which one
    alternation of all the patterns could not do. The loop is `Guarded.may_occur` written
    out, as a method call per pattern would cost about as much as the keys themselves."""
    for pattern in patterns:
        for key in pattern.keys:
            if pieces.isdisjoint(key):
                break
        else:
            needs = pattern.needs
            if (needs is None or needs.could_match(text)) and pattern.rx.search(text):
                return True
    return False


def load_screen(path: Path, display: str) -> tuple[Screen | None, list[SourceError]]:
    """Load and compile one pattern file; every problem is reported with its line."""
    raw, errors = load_yaml(path, display)
    if errors:
        return None, errors
    if not isinstance(raw, LineDict):
        return None, [SourceError(display, 1, "expected a mapping with the key 'screen'")]
    try:
        spec = ScreenFile.model_validate(raw).screen
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            out.append(SourceError(display, line_of(raw, loc), f"{where}: {err['msg']}"))
        return None, out
    screen = Screen()
    problems: list[SourceError] = []

    def compiled(
        items: list[str], path: list[Any], how: Callable[[str], Guarded] = guard_pattern
    ) -> list[Guarded]:
        out = []
        for i, source in enumerate(items):
            try:
                out.append(how(source))
            except (ValueError, re.error) as exc:
                problems.append(
                    SourceError(display, line_of(raw, [*path, i]), f"pattern {source!r}: {exc}")
                )
        return out

    missing = [c for c in CATEGORIES if c not in spec.categories]
    if missing:
        problems.append(
            SourceError(
                display,
                line_of(raw, ["screen", "categories"]),
                f"missing categories: {', '.join(missing)}",
            )
        )
    for name, cat in spec.categories.items():
        base = ["screen", "categories", name]
        screen.crisis[name] = compiled(cat.crisis, [*base, "crisis"])
        screen.check[name] = compiled(cat.check, [*base, "check"])
        screen.joined[name] = compiled(cat.joined, [*base, "joined"], guard_joined)
    screen.ignore = compiled(spec.ignore, ["screen", "ignore"])
    screen.softer = compiled(spec.softer, ["screen", "softer"])
    screen.negation = compiled(spec.negation, ["screen", "negation"])
    screen.distant_past = compiled(spec.distant_past, ["screen", "distant_past"])
    screen.not_about_me = compiled(spec.not_about_me, ["screen", "not_about_me"])
    screen.about_others = compiled(spec.about_others, ["screen", "about_others"])
    screen.someone_at_risk = compiled(spec.someone_at_risk, ["screen", "someone_at_risk"])
    return (None if problems else screen), problems
