"""One verdict per message from both layers of the crisis screen, with the person's context.

- **Patterns** (`screen.py`, per locale): exact, explainable, cheap. A match is `crisis`, or
  `check` when softened (a joke, a negation, a clearly distant past).
- **Semantic** (`semantic.py`): a multilingual embedding model and a classifier over labelled
  examples; catches what no pattern names, in any of the model's languages.
- **Context**: a risk split over quick messages ("I want to" / "die") is read together: the
  person's last few messages from the last couple of minutes are joined with the new one and
  screened again by the patterns (the model reads each message alone). They are kept in
  memory only, never stored or logged.

Either layer's `crisis` gets the full response, except that a negation or distant past found
by the patterns ("I would never…", "years ago, and I'm stable now") caps the verdict at the
gentle check, and someone else in danger ("my friend keeps saying she wants to die") is
`worried`, which the model does not raise: it would give the person the crisis opening meant
for their own danger.

Screening runs in worker threads (`screen_async`): the model's C engine releases the GIL, so
the event loop and other people's updates go on while it runs. Without the model the patterns
run on the event loop: a thread would buy nothing (they hold the GIL throughout)
and its hop there and back costs ~0.1 ms of CPU a message (bench/http.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot import metrics
from bot.safety.screen import Screen, ScreenResult

if TYPE_CHECKING:  # the model's module (and numpy) loads only with the model
    from bot.safety.semantic import SemanticScreen

log = logging.getLogger(__name__)

# Messages within this many seconds of each other are read together (split thoughts).
CONTEXT_SECONDS = 120.0
CONTEXT_MESSAGES = 3
# People whose recent messages are kept in memory at most (least recently seen dropped).
CONTEXT_PEOPLE = 10_000
_RANK = {"crisis": 4, "check": 3, "worried": 2, "concern": 1}


def _for_the_model(text: str) -> bool:
    """Whether the semantic layer reads `text`: two words or more. One word ("done", "ok",
    "7") is too little for nearest neighbours: "done" sits next to "I'm done" among the crisis
    examples. Single words are the patterns' job (they know "kms", "suicidal", "unalive")."""
    return len(text.split()) >= 2 and any(ch.isalpha() or ord(ch) > 0x2000 for ch in text)


@dataclass
class Assessor:
    """Both layers, the per-person context, and the threads they run in."""

    patterns: dict[str, Screen]
    default_locale: str
    semantic: SemanticScreen | None = None
    clock: Callable[[], float] = time.monotonic
    _recent: OrderedDict[str, deque[tuple[float, str]]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    def pattern_screen(self, locale: str) -> Screen:
        return self.patterns.get(locale) or self.patterns[self.default_locale]

    async def screen_async(self, key: str, locale: str, text: str) -> ScreenResult | None:
        """`screen`, in a worker thread (two: this machine has two cores) when the model runs."""
        if self.semantic is None:
            return self.screen(key, locale, text)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="screen")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.screen, key, locale, text)

    def screen(self, key: str, locale: str, text: str) -> ScreenResult | None:
        """The verdict on `text` from `key` (a person), read with their recent messages."""
        started = time.perf_counter()
        earlier = self._remember(key, text)
        found = self.screen_alone(locale, text)
        if earlier and (found is None or found.level != "crisis"):
            # the joined text is read by the patterns only: answers to different questions
            # joined (a harsh thought, then kind words, then a time) read darker to the
            # model than any of them alone, and paused people mid-dialog
            joined = self.screen_alone(locale, " ".join([*earlier, text]), model=False)
            if joined is not None and (found is None or _RANK[joined.level] > _RANK[found.level]):
                found = joined
        if found is not None:
            self.forget(key)  # answered: the next message starts a new thought
        metrics.screened(found.level if found else None, time.perf_counter() - started)
        return found

    def screen_alone(self, locale: str, text: str, *, model: bool = True) -> ScreenResult | None:
        """Both layers on one text, no context (`model=False`: patterns only)."""
        by_pattern = self.pattern_screen(locale).check_text(text)
        if by_pattern is not None and by_pattern.level == "crisis":
            return by_pattern
        if by_pattern is not None and by_pattern.level == "worried":
            # Someone else in danger: the model would hear the friend's words as the person's
            # own danger (it read 35 of 60 dev lines so). The person's own words were already
            # read by the patterns with the friend's part cut out ("my bf wants to die and
            # honestly i want to die too" is `crisis`), and the worried reply asks about them.
            return by_pattern
        if self.semantic is None or not model or not _for_the_model(text):
            return by_pattern
        score = self.semantic.score(text)
        level = self.semantic.level(score)
        if level is None:
            return by_pattern
        if by_pattern is not None and by_pattern.capped:
            # "I would never kill myself": the patterns heard a negation or a distant past
            return by_pattern
        if by_pattern is not None and _RANK[by_pattern.level] >= _RANK[level]:
            return by_pattern
        return ScreenResult(score.category, level, source="model")

    def forget(self, key: str) -> None:
        """Drop a person's recent messages (after /forget, or on a crisis pause's end)."""
        with self._lock:
            self._recent.pop(key, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _remember(self, key: str, text: str) -> list[str]:
        """Keep `text` as the newest of `key`'s messages; return the earlier recent ones.
        Numbers and times ("7", "8:30") are answers, not thoughts: not kept."""
        now = self.clock()
        with self._lock:
            recent = self._recent.pop(key, None) or deque(maxlen=CONTEXT_MESSAGES)
            earlier = [t for at, t in recent if now - at <= CONTEXT_SECONDS]
            if any(ch.isalpha() for ch in text):
                recent.append((now, text))
            self._recent[key] = recent
            while len(self._recent) > CONTEXT_PEOPLE:
                self._recent.popitem(last=False)
        return earlier[-(CONTEXT_MESSAGES - 1) :]
