"""An experiment, not the shipped screen: long messages read sentence by sentence, with one
writer's everyday sentences added to training. Dev data only.

Run: .venv/bin/python -m bench.long_pieces [--limit N]

The shipped semantic layer reads a long message in 64-word windows, and a window of an
everyday paragraph sits near the training set's long crisis lines by its length and tone
(docs/safety.md, "Long messages"). Here, in memory (nothing shipped changes):
- **pieces**: a message of more than `WHOLE_WORDS` words is cut into sentences (at most
  `PIECE_WORDS` words; a piece under `SHORT_PIECE` words joins its neighbour) and the most
  worrying piece decides;
- **+ long_a1**: the sentences of `long_a1.tsv` (now in `bot/safety/examples/long/`, where
  they train the shipped piece set) are added to the training lines as safe, so the model
  learns what an everyday sentence of a long message sounds like. The thresholds are set on
  dev as `kindbot safety build` sets them.

Printed for the shipped windows and for pieces, each without and with long_a1: dev crisis and
safe lines (the full response), and on long messages (`long_a2`, a writer never trained on,
and `bench.long_messages`' dev messages) the full response and any pause, patterns included.
`long_b*` and `buried_en/` are the held-out sets: measure them once, with a variant shipped.

Measured 2026-12-02 (dev): long_a2 everyday paragraphs given the full response 122/200
(shipped) → 36/200 (pieces + long_a1); dev-split crisis lines buried in 1,000 characters
111 → 142/188; at 4,096 characters 152 → 161/188, but everyday 59 → 68/100 and ordinary lines
alone 15 → 57/100. Rebuilt for real (`kindbot safety build`), dev crisis lines fell from 281
to 277/291 (the plan asked for 279): two long buried lines the whole-text reading had caught
(their risky sentence alone scores 0.52–0.56) and two short lines whose threshold moved.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

from bench.long_messages import messages
from bench.safety import load_assessor, share
from bot.safety import semantic as S

WHOLE_WORDS = S.PIECES_FROM_WORDS
sentences = S.sentences


def pieces(text: str) -> list[str]:
    return [text] if len(text.split()) <= WHOLE_WORDS else sentences(text)


def everyday(writer: str) -> list[str]:
    """A writer's everyday paragraphs. Since round 2 (2026-12-02) every one of these sets
    trains the shipped piece set (`bot/safety/examples/long/`): long_a2 was this script's
    dev set, so what it prints now is in-sample, a record of how the reading was chosen."""
    return [e.text for e in S.load_examples(S.EXAMPLES / S.LONG_FOLDER) if e.source == writer]


class Vectors:
    """The model's vectors, each text embedded once per run."""

    def __init__(self, embedder: S.Embedder) -> None:
        self.embedder = embedder
        self.known: dict[str, S.Vector] = {}

    def __call__(self, texts: Sequence[str]) -> S.Vector:
        new = [t for t in dict.fromkeys(texts) if t not in self.known]
        for start in range(0, len(new), 64):
            batch = new[start : start + 64]
            self.known.update(zip(batch, self.embedder.embed(batch), strict=True))
        return np.array([self.known[t] for t in texts], dtype=np.float32).reshape(-1, 384)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="messages per set (smoke test)")
    args = parser.parse_args(argv)
    screen = load_assessor()
    if screen.semantic is None:
        print("the semantic layer is off: nothing to compare")
        return 0
    embed = Vectors(screen.semantic.embedder)
    examples = S.load_examples()
    stored = S.stored_vectors(S.EXAMPLES / S.MODEL_FILE)
    dev = [e for e in examples if e.split == "dev"]
    dev_vectors = stored[[e.split == "dev" for e in examples]]
    dev_crisis = np.array([e.is_crisis for e in dev])
    limit = args.limit or None
    extra = [s for text in everyday("long_a1")[:limit] for s in sentences(text)]
    sets = {"long_a2 everyday": everyday("long_a2")[:limit]}
    for (kind, length), texts in messages(dev, 7, args.limit).items():
        sets[f"{kind} {length}"] = texts[:limit]
    patterns = screen.pattern_screen("en")
    by_pattern = {
        t: found.level if (found := patterns.check_text(t)) else None
        for texts in sets.values()
        for t in texts
    }
    readers: dict[str, Callable[[str], list[str]]] = {"windows": S.windows, "pieces": pieces}
    for trained in ("shipped lines", "+ long_a1 sentences"):
        lines = list(examples)
        vectors = stored
        if trained != "shipped lines":
            lines += [
                S.Example("long_a1", i, "en", "safe", "ordinary", t) for i, t in enumerate(extra)
            ]
            vectors = np.vstack([stored, embed(extra)])
        model = S.build(lines, vectors, "experiment")
        dev_p = model.probability(dev_vectors)
        caught = int((dev_p[dev_crisis] >= model.crisis_at).sum())
        alarms = int((dev_p[~dev_crisis] >= model.crisis_at).sum())
        print(
            f"== {trained}: crisis p >= {model.crisis_at:.3f}, check >= {model.check_at:.3f}; "
            f"dev lines, model alone: crisis full {share(caught, int(dev_crisis.sum()))}, "
            f"safe full {alarms}/{int((~dev_crisis).sum())}"
        )
        for name, read in readers.items():
            for label, texts in sets.items():
                best = [float(model.probability(embed(read(t))).max()) for t in texts]
                full = sum(
                    p >= model.crisis_at or by_pattern[t] == "crisis"
                    for p, t in zip(best, texts, strict=True)
                )
                any_pause = sum(
                    p >= model.check_at or by_pattern[t] is not None
                    for p, t in zip(best, texts, strict=True)
                )
                print(
                    f"  {name:<7} {label:<20} full {share(full, len(texts))}   "
                    f"any pause {share(any_pause, len(texts))}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
