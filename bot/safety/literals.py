"""Which plain strings a crisis pattern needs, so the screen can skip a regex that cannot match.

Most messages contain none of the words a pattern is built from, and a regex search tries
its pattern at every position of the message; a string test is much cheaper. So the screen
asks first whether a pattern's required strings are there at all, and most patterns stop
there. Correctness comes first: a pattern is skipped only when no match is possible.

`required_strings(regex)` reads the final regex text that `compile_pattern` builds (a small
parser of our own: the `re` module's parser is private). It understands only what the
pattern files use; anything else makes it give up, and a pattern without needs is always
searched. The answer is an AND of ORs: every group must have one of its strings in the
text. A string may come only from parts that every match goes through, so optional parts,
repeats that may be absent, character classes and lookarounds add nothing, and a space that
became optional (" ?") gives both spellings ("kil myself", "kilmyself").

`needs_of` then keeps the best few groups, each cut to shared pieces of at most six letters
("kilmyself", "endmyself" → "myself": a text holding a string holds its piece), and
`keys_of` picks one three-letter piece of each string: the screen collects the three-letter
pieces of a message once (`grams`), and a pattern whose keys miss them is skipped with a set
operation, before any scan.

`needs_of_joined(letters)` is for `compile_joined`, whose letter-by-letter regex lets every
letter repeat and every gap be a space or nothing: each pair of neighbouring letters must then
occur as "xy" or "x y", and that is all a match is sure to contain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

# Bigger sets of exact spellings are cut into separate needs (a cross product of every
# alternative grows fast, and each string costs a scan).
_EXACT_LIMIT = 64
# How many groups a pattern keeps: the first that fails already skips the regex.
_KEEP = 3
# The pieces `_cover` may keep of a longer string.
_PIECE_MIN, _PIECE_MAX = 3, 6
# Costs in µs, roughly, on a message of a sentence or two: one `in` scan, one regex search;
# and the guessed chance that a message contains a string of this many characters.
_SCAN, _SEARCH = 0.05, 2.0
_CHANCE = {1: 0.95, 2: 0.6, 3: 0.3, 4: 0.1, 5: 0.04, 6: 0.02}
# What keeping a piece of each length costs per message: its scan, and the searches it
# fails to spare.
_PRICE = {length: _SCAN + _SEARCH * chance for length, chance in _CHANCE.items()}
# The length of the pieces in a key (see `keys_of`); English letters, most common first.
_GRAM = 3
# How many keys a group gives at most (see `keys_of`).
_KEYS = 2
_LETTER_ORDER = "etaoinshrdlcumwfgypbvkjxqz"


class Unsupported(ValueError):
    """A construct this reader does not know: the pattern is always searched."""


@dataclass(frozen=True, slots=True)
class Needs:
    """Groups of strings; a text that misses every string of any one group cannot match."""

    groups: tuple[tuple[str, ...], ...]

    def could_match(self, text: str) -> bool:
        """False only when the regex surely finds nothing in `text`."""
        for group in self.groups:
            for literal in group:
                if literal in text:
                    break
            else:
                return False
        return True


@dataclass(frozen=True, slots=True)
class _Info:
    """What a piece of regex is known to match.

    `exact`: every string it can match, when that is a small finite set ("" when it may match
    nothing). `musts`: groups of strings, one of each surely inside any match of the piece.
    """

    exact: frozenset[str] | None
    musts: tuple[frozenset[str], ...] = ()


_EMPTY = _Info(frozenset({""}))
_UNKNOWN = _Info(None)


def needs_of(regex: str) -> Needs | None:
    """The needs of a regex as written, or None when nothing safe can be said."""
    required = required_strings(regex)
    return None if required is None else _choose(required)


def required_strings(regex: str) -> list[frozenset[str]] | None:
    """Every group of strings the reader is sure of, one of each in any match, before they
    are cut to pieces and the best few chosen; None for a construct it does not know."""
    try:
        parser = _Parser(regex)
        info = parser.alternation()
        if parser.pos != len(regex):
            raise Unsupported("unbalanced parenthesis")
    except Unsupported:
        return None
    return [_minimal(group) for group in _all_musts(info)]


def needs_of_joined(letters: str) -> Needs | None:
    """The needs of `compile_joined`'s regex for these (collapsed) letters."""
    pairs = {frozenset({a + b, f"{a} {b}"}) for a, b in pairwise(letters) if a != b}
    return _choose(list(pairs))


def _chance(group: Iterable[str]) -> float:
    """A rough guess of how often a message contains one of the strings: the longer, the
    rarer (measured on the examples, give or take)."""
    return min(0.95, sum(_CHANCE.get(len(literal), _CHANCE[6]) for literal in group))


def _choose(musts: list[frozenset[str]]) -> Needs | None:
    """The few cheapest and most selective groups; a one-letter string is no filter."""
    useful = [_cover(_minimal(g)) for g in musts]
    useful = [g for g in useful if min(len(s) for s in g) >= 2]
    if not useful:
        return None
    # The group whose scans cost least per message it turns away goes first.
    useful.sort(key=lambda g: (_SCAN * len(g) / (1 - _chance(g)), sorted(g)))
    kept = tuple(tuple(sorted(g, key=lambda s: (len(s), s))) for g in useful[:_KEEP])
    return Needs(kept)


def keys_of(group: Iterable[str]) -> list[frozenset[str]]:
    """Keys of a group: each holds one three-letter piece of every string of it (the
    rarest-looking, then the next), or none when a string is shorter than that.

    The screen collects the three-letter pieces of a message once (`grams`); a pattern with a
    key that shares none of them cannot match, decided with one set operation instead of a
    scan per string. A second key, from other pieces of the same strings, turns away many
    of the messages that pass the first at the cost of one more set operation.
    """
    ranked = [
        sorted(set(_pieces_of_size(literal, _GRAM)), key=lambda g: (-_rarity(g), g))
        for literal in group
    ]
    if not ranked or any(not pieces for pieces in ranked):
        return []
    keys = [frozenset(pieces[min(i, len(pieces) - 1)] for pieces in ranked) for i in range(_KEYS)]
    return list(dict.fromkeys(keys))


def grams(text: str) -> frozenset[str]:
    """Every three-letter piece of a text."""
    return frozenset([text[i : i + _GRAM] for i in range(len(text) - _GRAM + 1)])


def _rarity(piece: str) -> int:
    """How rare a piece probably is in English (higher is rarer; a space is common)."""
    return sum(_LETTER_ORDER.find(ch) + 1 for ch in piece)


def _pieces_of_size(literal: str, size: int) -> list[str]:
    return [literal[i : i + size] for i in range(len(literal) - size + 1)]


def _pieces(literal: str) -> set[str]:
    """The pieces a literal may be replaced by: its substrings of a useful length."""
    pieces = {
        p for size in range(_PIECE_MIN, _PIECE_MAX + 1) for p in _pieces_of_size(literal, size)
    }
    return pieces or {literal}


def _cover(group: frozenset[str]) -> frozenset[str]:
    """Fewer, shorter strings with the same promise: each string of the group replaced by
    a piece of it that many of them share ("kilmyself", "endmyself" → "myself"), greedily.

    A text containing a string of the group contains its piece, so the promise still holds.
    """
    pieces = {literal: _pieces(literal) for literal in group}
    left = set(group)
    chosen: set[str] = set()
    while left:
        counts: dict[str, int] = {}
        for literal in left:
            for piece in pieces[literal]:
                counts[piece] = counts.get(piece, 0) + 1
        best = min(counts, key=lambda p: (_PRICE[len(p)] / counts[p], p))
        chosen.add(best)
        left = {literal for literal in left if best not in literal}
    return frozenset(chosen)


def _minimal(group: frozenset[str]) -> frozenset[str]:
    """The group without strings that contain another of its strings (they add nothing)."""
    ordered = sorted(group, key=len)
    kept: list[str] = []
    for literal in ordered:
        if not any(shorter in literal for shorter in kept):
            kept.append(literal)
    return frozenset(kept)


def _all_musts(info: _Info) -> list[frozenset[str]]:
    """Every group the piece is sure of, its exact spellings included."""
    out = [m for m in info.musts if "" not in m]
    if info.exact is not None and "" not in info.exact:
        out.append(info.exact)
    return out


def _best(info: _Info) -> frozenset[str] | None:
    """One group that stands for the piece in an alternation (None: nothing is sure)."""
    groups = _all_musts(info)
    if not groups:
        return None
    return max(groups, key=lambda g: (min(len(s) for s in g), -len(g)))


def _alternatives(options: list[_Info]) -> _Info:
    """`a|b|c`: the union of exact sets, or of one sure group from each option."""
    exacts = [o.exact for o in options]
    if all(e is not None for e in exacts):
        union = frozenset().union(*(e for e in exacts if e is not None))
        if len(union) <= _EXACT_LIMIT:
            return _Info(union)
    groups = [_best(o) for o in options]
    if any(g is None for g in groups):
        return _UNKNOWN
    return _Info(None, (frozenset().union(*(g for g in groups if g is not None)),))


def _sequence(items: list[_Info]) -> _Info:
    """`ab`: exact spellings joined while they stay few; otherwise each part's groups."""
    musts: list[frozenset[str]] = []
    run: frozenset[str] = frozenset({""})
    exact = True
    for item in items:
        if item.exact is not None:
            joined = frozenset(a + b for a in run for b in item.exact)
            if len(joined) <= _EXACT_LIMIT:
                run = joined
                continue
            musts.append(run)
            run = item.exact
        else:
            musts.append(run)
            musts.extend(item.musts)
            run = frozenset({""})
        exact = False
    if exact:
        return _Info(run)
    musts.append(run)
    return _Info(None, tuple(m for m in musts if "" not in m))


def _repeated(item: _Info, low: int, high: int | None) -> _Info:
    """`x?`, `x*`, `x+`, `x{m,n}`: a part that may be absent promises nothing but itself."""
    if high == 0:
        return _EMPTY
    if low == 0:
        if high == 1 and item.exact is not None:
            return _Info(item.exact | {""})
        return _UNKNOWN
    if low == high == 1:
        return item
    return _Info(None, tuple(_all_musts(item)))


class _Parser:
    """A reader of the regex syntax the pattern files use, building `_Info` as it goes."""

    def __init__(self, regex: str) -> None:
        self.text = regex
        self.pos = 0

    def peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def alternation(self) -> _Info:
        options = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _alternatives(options)

    def sequence(self) -> _Info:
        items: list[_Info] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return _sequence(items)

    def atom(self) -> _Info:
        ch = self.peek()
        self.pos += 1
        if ch == "(":
            return self.group()
        if ch == "[":
            self.skip_class()
            return _UNKNOWN
        if ch == "\\":
            return self.escape()
        if ch == ".":
            return _UNKNOWN
        if ch in "^$":
            return _EMPTY
        if ch in "?*+{}]":
            raise Unsupported(f"unexpected {ch!r}")
        return _Info(frozenset({ch}))

    def group(self) -> _Info:
        zero_width = False
        if self.peek() == "?":
            for opening, lookaround in (
                ("?:", False),
                ("?>", False),
                ("?!", True),
                ("?=", True),
                ("?<!", True),
                ("?<=", True),
            ):
                if self.text.startswith(opening, self.pos):
                    self.pos += len(opening)
                    zero_width = lookaround
                    break
            else:
                name_end = self.text.find(">", self.pos)
                if not self.text.startswith("?P<", self.pos) or name_end < 0:
                    raise Unsupported("group flags, back references or conditionals")
                self.pos = name_end + 1
        inner = self.alternation()
        if self.peek() != ")":
            raise Unsupported("unbalanced parenthesis")
        self.pos += 1
        return _EMPTY if zero_width else inner

    def skip_class(self) -> None:
        if self.peek() == "^":
            self.pos += 1
        if self.peek() == "]":
            self.pos += 1
        while self.peek() != "]":
            if self.peek() == "":
                raise Unsupported("unclosed character class")
            self.pos += 2 if self.peek() == "\\" else 1
        self.pos += 1

    def escape(self) -> _Info:
        ch = self.peek()
        self.pos += 1
        if ch in "dDwWsS":
            return _UNKNOWN
        if ch in "bBAZ":
            return _EMPTY
        if ch and not ch.isalnum() and ch.isascii():
            return _Info(frozenset({ch}))
        raise Unsupported(f"escape \\{ch}")

    def quantified(self, item: _Info) -> _Info:
        ch = self.peek()
        if ch == "?":
            low, high = 0, 1
        elif ch == "*":
            low, high = 0, None
        elif ch == "+":
            low, high = 1, None
        elif ch == "{":
            return self.counted(item)
        else:
            return item
        self.pos += 1
        self.lazy_or_possessive()
        return _repeated(item, low, high)

    def counted(self, item: _Info) -> _Info:
        end = self.text.find("}", self.pos)
        if end < 0:
            raise Unsupported("unclosed {")
        low_text, comma, high_text = self.text[self.pos + 1 : end].partition(",")
        if not (low_text.isdigit() or (comma and not low_text)):
            raise Unsupported("not a {m,n} quantifier")
        if high_text and not high_text.isdigit():
            raise Unsupported("not a {m,n} quantifier")
        low = int(low_text or 0)
        high = int(high_text) if high_text else (None if comma else low)
        self.pos = end + 1
        self.lazy_or_possessive()
        return _repeated(item, low, high)

    def lazy_or_possessive(self) -> None:
        """`x*?` and `x*+` match fewer strings than `x*`, never others: the same needs hold."""
        if self.peek() in ("?", "+"):
            self.pos += 1
