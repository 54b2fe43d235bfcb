"""An experiment, not the shipped screen: other readings of LONG messages only (dev data only).
V14's full-response rule ships (with the whole-text reading's pauses kept: V14d; see
docs/safety.md, "Shipped 2026-12-02"), so `model.npz` now holds V4's piece set too; this
script still builds its own, in memory, from the shipped lines and long_a1.

Run: .venv/bin/python -m bench.long_combo [--limit N] [--no-ordinary] [--fresh-cache]

Every variant reads a message of at most `WHOLE_WORDS` (40) words exactly as shipped: the
shipped `SemanticModel` from model.npz, `semantic.windows`, the shipped thresholds. So the
short lines' figures (bench.safety) cannot move; only the reading of longer messages changes.
Patterns as `bench.long_pieces` counts them: a pattern crisis is the full response, any
pattern verdict at least a pause.

Variants (p_w = max shipped probability over the 64-word windows, p_s = max shipped
probability over the sentence pieces of `bench.long_pieces.sentences`, p_L = max over the
windows of the long-text k-NN below; ca/cc = the shipped crisis_at/check_at):
- V0 shipped: full p_w >= ca; pause p_w >= cc.
- V1 AND: full p_w >= ca and p_s >= cc; pause p_w >= cc or p_s >= cc.
- V1s AND, stricter pause: full as V1; pause only p_s >= cc (a window alone does not pause).
- V2 pieces, own thresholds: full p_s >= s_full, pause p_s >= s_check, set on long_a1's
  paragraphs (safe): at most 2% full, 4% any pause. Measured on long_a2 (another writer).
- V3 long-text k-NN, used only for long messages: neighbours are the training split's lines
  of >= 150 characters (both labels) and long_a1's 200 paragraphs (safe, embedded whole);
  same voting as shipped (30 neighbours, temperature 0.02, near-copy weights). Query: the
  shipped windows' vectors (no extra embedding). Thresholds NOT from long_a1 (its paragraphs
  are neighbours): L_full / L_check = at most 2% / 5% of the synthetic dev everyday messages
  (1,000 and 4,096 characters, 200 messages, from dev-split lines), so those two rows are
  in-sample for V3; dev long crisis lines and synthetic buried are recall, long_a2 clean.
- V13 = V3 and V1: full p_L >= L_full and p_s >= cc; pause p_L >= L_check or p_s >= ca.
- V12 = V1 with V2's piece threshold: full p_w >= ca and p_s >= s_check; pause p_s >= s_check.
  V12g: full as V12, pause p_w >= cc or p_s >= s_check (every shipped pause kept).
- V3r: V3's k-NN with thresholds from dev recall only (the highest at which the synthetic dev
  buried messages keep the shipped model's own full / pause counts).
- V4: pieces scored by a piece model = the shipped training lines + long_a1's sentences as
  safe lines (as bench.long_pieces), thresholds c4/k4 set on the dev lines as `build` sets
  them; used for the pieces of long messages only (long_a1 rows are then in-sample).
- V14: full p_w >= ca and p_4 >= k4; pause p_4 >= k4. V14c: full needs p_4 >= c4.
  V14b: pause also needs both (p_w >= cc and p_4 >= k4). V14d: pause p_w >= cc or p_4 >= k4.
- V34: full p_L >= V3r's L_full and p_4 >= k4; pause p_4 >= k4.
Then sweeps of "window >= ca AND a piece >= t" for the shipped and V4 piece scores.

Measured 2026-12-02 (dev; first run 28 min with embedding, cached reruns ~80 s): long_a2
everyday full / any pause 121/132 of 200 shipped -> 31/47 (V14); synthetic dev buried full
111 -> 102/188 at 1,000 characters, 152 -> 139/188 at 4,096 (any pause 131 -> 154, 170 -> 169);
dev crisis lines > 40 words 20/20 -> 20/20; but ordinary-only 4,096 any pause 26 -> 68/100.

Held out, never read here then: long_b*, buried_en/, everyday_multi/, the test split, fresh
writers, kind_words, family_words, worried. Embeddings are cached in /tmp between runs.
Since round 2 (2026-12-02) long_a2, long_b* and everyday_multi's files train the shipped piece
set (`bot/safety/examples/long/`), so a rerun is in-sample: the figures above are the record.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread: the machine is shared

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from bench.long_messages import messages  # noqa: E402
from bench.long_pieces import WHOLE_WORDS, Vectors, everyday, sentences  # noqa: E402
from bench.safety import load_assessor, share  # noqa: E402
from bot.safety import semantic as S  # noqa: E402
from bot.safety.screen import Screen  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "kindbot_long_combo_vectors.npz"
LONG_CHARS = 150  # training lines this long or longer are V3's neighbours
V2_FULL, V2_PAUSE = 0.02, 0.04  # long_a1 paragraphs (safe) allowed per level, V2
V3_FULL, V3_PAUSE = 0.02, 0.05  # synthetic dev everyday messages allowed per level, V3


class CachedVectors(Vectors):
    """bench.long_pieces.Vectors, kept on disk between runs (texts from dev data only), as
    plain arrays (never unpickled)."""

    def load(self, name: str) -> None:
        if not CACHE.exists():
            return
        with np.load(CACHE, allow_pickle=False) as saved:
            if str(saved["model"][0]) == name:
                texts = [str(t) for t in saved["texts"]]
                self.known.update(zip(texts, saved["vectors"], strict=True))

    def save(self, name: str) -> None:
        tmp = CACHE.with_suffix(".tmp.npz")
        texts = list(self.known)
        vectors = np.array([self.known[t] for t in texts], dtype=np.float32).reshape(-1, 384)
        np.savez(tmp, model=np.array([name]), texts=np.array(texts), vectors=vectors)
        tmp.replace(CACHE)


@dataclass
class Read:
    """One message, read every way the variants need."""

    long: bool
    pattern: str | None  # the pattern layer's level on the whole text
    p_w: float  # shipped model, max over windows (the shipped reading)
    p_s: float  # shipped model, max over sentence pieces (long only, else p_w)
    win_vectors: S.Vector  # the windows' vectors (V3 scores them again)
    piece_vectors: S.Vector  # the pieces' vectors (V4 scores them again)
    tok_w: int  # tokens the windows cost
    tok_s: int  # tokens the pieces cost
    p_L: float = 0.0  # V3, filled in once its model exists
    p_4: float = 0.0  # V4, likewise


def read_all(
    texts: Sequence[str],
    embed: Vectors,
    model: S.SemanticModel,
    patterns: Screen,
    tokens: Callable[[str], int],
) -> list[Read]:
    out = []
    for t in texts:
        found = patterns.check_text(t)
        wins = S.windows(t)
        wv = embed(wins)
        p_w = float(model.probability(wv).max())
        long = len(t.split()) > WHOLE_WORDS
        tok_w = sum(tokens(w) for w in wins)
        if long:
            pieces = sentences(t)
            pv = embed(pieces)
            p_s = float(model.probability(pv).max())
            tok_s = sum(tokens(p) for p in pieces)
        else:
            pv, p_s, tok_s = wv, p_w, 0
        out.append(Read(long, found.level if found else None, p_w, p_s, wv, pv, tok_w, tok_s))
    return out


Level = str | None  # "full", "pause" (the gentle check) or None
Rule = Callable[[Read], Level]


def shipped_rule(model: S.SemanticModel) -> Rule:
    ca, cc = model.crisis_at, model.check_at

    def rule(r: Read) -> Level:
        if r.pattern == "crisis" or r.p_w >= ca:
            return "full"
        if r.pattern is not None or r.p_w >= cc:
            return "pause"
        return None

    return rule


def long_only(shipped: Rule, long_rule: Rule) -> Rule:
    """Short messages exactly as shipped; the pattern layer first, as the screen runs it."""

    def rule(r: Read) -> Level:
        if not r.long:
            return shipped(r)
        if r.pattern == "crisis":
            return "full"
        got = long_rule(r)
        if got is None and r.pattern is not None:
            return "pause"
        return got

    return rule


def levels(full: Callable[[Read], bool], pause: Callable[[Read], bool]) -> Rule:
    return lambda r: "full" if full(r) else ("pause" if pause(r) else None)


def k_nn(
    vectors: S.Vector, crisis: npt.NDArray[np.bool_], categories: tuple[str, ...]
) -> S.SemanticModel:
    return S.SemanticModel(
        vectors, crisis, S.vote_weights(vectors, crisis), categories, 1.0, 1.0, "experiment"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="messages per set (smoke test)")
    parser.add_argument("--no-ordinary", action="store_true", help="skip 'ordinary only' sets")
    parser.add_argument("--fresh-cache", action="store_true", help="ignore the /tmp cache")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    screen = load_assessor()
    if screen.semantic is None:
        print("the semantic layer is off: nothing to compare")
        return 0
    shipped = screen.semantic.model
    e5 = screen.semantic.embedder
    assert isinstance(e5, S.E5Embedder)
    embed = CachedVectors(screen.semantic.embedder)
    name = screen.semantic.embedder.name
    if not args.fresh_cache:
        embed.load(name)
    counted: dict[str, int] = {}

    def tokens(text: str) -> int:
        if text not in counted:
            counted[text] = e5.token_count(text)
        return counted[text]

    examples = S.load_examples()
    # The test split is never looked at: only train and dev lines are kept from here on.
    kept = [(e, i) for i, e in enumerate(examples) if e.split in ("train", "dev")]
    stored = S.stored_vectors(S.EXAMPLES / S.MODEL_FILE)
    dev = [e for e, _ in kept if e.split == "dev"]
    limit = args.limit or None
    a1 = everyday("long_a1")[:limit]
    dev_long_crisis = [e.text for e in dev if e.is_crisis and len(e.text.split()) > WHOLE_WORDS]
    dev_long_safe = [e.text for e in dev if not e.is_crisis and len(e.text.split()) > WHOLE_WORDS]
    sets: dict[str, list[str]] = {"long_a2 everyday": everyday("long_a2")[:limit]}
    for (kind, length), texts in messages(dev, 7, args.limit).items():
        if kind == "ordinary only" and args.no_ordinary:
            continue
        sets[f"{kind} {length}"] = texts[:limit]
    sets["dev crisis >40w"] = dev_long_crisis
    print(
        f"shipped: crisis_at {shipped.crisis_at:.4f}, check_at {shipped.check_at:.4f}; "
        f"dev lines > {WHOLE_WORDS} words: {len(dev_long_crisis)} crisis, "
        f"{len(dev_long_safe)} safe",
        flush=True,
    )
    patterns = screen.pattern_screen("en")
    reads: dict[str, list[Read]] = {}
    for label, texts in [("long_a1 (tuning)", a1), *sets.items()]:
        t0 = time.perf_counter()
        reads[label] = read_all(texts, embed, shipped, patterns, tokens)
        embed.save(name)
        print(
            f"  read {label:<20} {len(texts):>4} in {time.perf_counter() - t0:6.1f} s", flush=True
        )

    # -- V2: piece thresholds on long_a1's paragraphs (safe) -------------------------------
    a1_ps = np.array([r.p_s for r in reads["long_a1 (tuning)"] if r.long])
    s_full = S.threshold_for_false_rate(a1_ps, V2_FULL)
    s_check = min(s_full, S.threshold_for_false_rate(a1_ps, V2_PAUSE))
    print(f"V2 (long_a1 paragraphs, max piece p): s_full {s_full:.4f}, s_check {s_check:.4f}")

    # -- V3: a long-text k-NN ---------------------------------------------------------------
    train_long = [(e, i) for e, i in kept if e.split == "train" and len(e.text) >= LONG_CHARS]
    a1_vectors = embed(a1)
    long_model = k_nn(
        np.vstack([stored[[i for _, i in train_long]], a1_vectors]).astype(np.float32),
        np.array([e.is_crisis for e, _ in train_long] + [False] * len(a1)),
        tuple(e.category for e, _ in train_long) + ("ordinary",) * len(a1),
    )
    print(
        f"V3 neighbours: {len(train_long)} training lines >= {LONG_CHARS} characters "
        f"({sum(e.is_crisis for e, _ in train_long)} crisis) + {len(a1)} long_a1 paragraphs"
    )
    for rs in reads.values():
        for r in rs:
            r.p_L = float(long_model.probability(r.win_vectors).max())
    tune_safe = np.array(
        [r.p_L for label in ("everyday 1000", "everyday 4096") for r in reads[label]]
    )
    l_full = S.threshold_for_false_rate(tune_safe, V3_FULL)
    l_check = min(l_full, S.threshold_for_false_rate(tune_safe, V3_PAUSE))
    print(
        f"V3 (synthetic dev everyday, {len(tune_safe)}): L_full {l_full:.4f}, L_check {l_check:.4f}"
    )
    for label, rs in reads.items():
        ps = np.array([r.p_L for r in rs])
        qs = np.quantile(ps, [0.1, 0.5, 0.9]) if len(ps) else [0, 0, 0]
        print(f"  p_L {label:<20} 10/50/90%: {qs[0]:.3f} {qs[1]:.3f} {qs[2]:.3f}")

    ca, cc = shipped.crisis_at, shipped.check_at
    base = shipped_rule(shipped)

    # -- V3r: V3's k-NN, thresholds from dev RECALL only: the highest thresholds at which the
    # synthetic dev buried messages (both lengths) keep the shipped model's own full / any pause
    # counts (the model alone, no patterns). Everyday sets and long_a2 are then measures.
    buried = [r for label in ("buried 1000", "buried 4096") for r in reads[label]]
    b_L = np.sort([r.p_L for r in buried])[::-1]
    want_full = sum(r.p_w >= ca for r in buried)
    want_pause = sum(r.p_w >= cc for r in buried)
    r_full = float(b_L[max(want_full, 1) - 1]) if len(b_L) else 1.0
    r_check = min(r_full, float(b_L[max(want_pause, 1) - 1])) if len(b_L) else 1.0
    print(
        f"V3r (dev buried recall kept at shipped {want_full}/{want_pause} of {len(buried)}): "
        f"L_full {r_full:.4f}, L_check {r_check:.4f}"
    )

    # -- V4: pieces of long messages scored by a piece model = the shipped training lines plus
    # long_a1's sentences as safe lines; its thresholds set on the dev lines as `build` sets
    # them (long_a1 is neighbours only). Short messages still use the shipped model.
    a1_sentences = [x for t in a1 for x in sentences(t)]
    lines = [e for e, _ in kept] + [
        S.Example("long_a1", i, "en", "safe", "ordinary", x) for i, x in enumerate(a1_sentences)
    ]
    piece_model = S.build(
        lines,
        np.vstack([stored[[i for _, i in kept]], embed(a1_sentences)]).astype(np.float32),
        "experiment",
    )
    c4, k4 = piece_model.crisis_at, piece_model.check_at
    print(
        f"V4 piece model: {len(a1_sentences)} long_a1 sentences added (safe); thresholds on dev "
        f"lines: crisis {c4:.4f}, check {k4:.4f}"
    )
    for rs in reads.values():
        for r in rs:
            r.p_4 = float(piece_model.probability(r.piece_vectors).max()) if r.long else r.p_w
    variants: dict[str, tuple[Rule, Callable[[Read], int]]] = {
        "V0 shipped": (base, lambda r: r.tok_w),
        "V1 AND": (
            long_only(
                base,
                levels(lambda r: r.p_w >= ca and r.p_s >= cc, lambda r: r.p_w >= cc or r.p_s >= cc),
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V1s AND, piece pause": (
            long_only(base, levels(lambda r: r.p_w >= ca and r.p_s >= cc, lambda r: r.p_s >= cc)),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V2 pieces own thr": (
            long_only(base, levels(lambda r: r.p_s >= s_full, lambda r: r.p_s >= s_check)),
            lambda r: r.tok_s,
        ),
        "V3 long k-NN": (
            long_only(base, levels(lambda r: r.p_L >= l_full, lambda r: r.p_L >= l_check)),
            lambda r: r.tok_w,
        ),
        "V13 V3 AND piece": (
            long_only(
                base,
                levels(
                    lambda r: r.p_L >= l_full and r.p_s >= cc,
                    lambda r: r.p_L >= l_check or r.p_s >= ca,
                ),
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V12g demote (full AND, pause as shipped)": (
            long_only(
                base,
                levels(
                    lambda r: r.p_w >= ca and r.p_s >= s_check,
                    lambda r: r.p_w >= cc or r.p_s >= s_check,
                ),
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V3r long k-NN, recall thr": (
            long_only(base, levels(lambda r: r.p_L >= r_full, lambda r: r.p_L >= r_check)),
            lambda r: r.tok_w,
        ),
        "V4 pieces +a1 model": (
            long_only(base, levels(lambda r: r.p_4 >= c4, lambda r: r.p_4 >= k4)),
            lambda r: r.tok_s,
        ),
        "V14 window AND V4 piece": (
            long_only(base, levels(lambda r: r.p_w >= ca and r.p_4 >= k4, lambda r: r.p_4 >= k4)),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V14c window AND V4 piece>=crisis": (
            long_only(base, levels(lambda r: r.p_w >= ca and r.p_4 >= c4, lambda r: r.p_4 >= k4)),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V14b both must hear (pause too)": (
            long_only(
                base,
                levels(
                    lambda r: r.p_w >= ca and r.p_4 >= k4, lambda r: r.p_w >= cc and r.p_4 >= k4
                ),
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V14d demote (pause superset of shipped)": (
            long_only(
                base,
                levels(lambda r: r.p_w >= ca and r.p_4 >= k4, lambda r: r.p_w >= cc or r.p_4 >= k4),
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V34 V3r AND V4 piece": (
            long_only(
                base, levels(lambda r: r.p_L >= r_full and r.p_4 >= k4, lambda r: r.p_4 >= k4)
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
        "V12 AND, V2 piece thr": (
            long_only(
                base, levels(lambda r: r.p_w >= ca and r.p_s >= s_check, lambda r: r.p_s >= s_check)
            ),
            lambda r: r.tok_w + r.tok_s,
        ),
    }
    # -- sweeps: full = window >= crisis_at AND a piece >= t (shipped pieces, V4 pieces) ----
    cols = [
        "long_a1 (tuning)",
        "long_a2 everyday",
        "buried 1000",
        "buried 4096",
        "everyday 4096",
        "dev crisis >40w",
    ]
    cols = [c for c in cols if c in reads]
    print("sweep: full count (model AND rule, patterns included) per set: " + " | ".join(cols))
    for piece in ("p_s", "p_4"):
        for t in (0.53, 0.56, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85):
            row = []
            for c in cols:
                got = sum(
                    r.pattern == "crisis"
                    or (r.long and r.p_w >= ca and getattr(r, piece) >= t)
                    or (not r.long and r.p_w >= ca)
                    for r in reads[c]
                )
                row.append(f"{got:>4}/{len(reads[c]):<4}")
            print(f"  {piece} >= {t:.2f}: " + " | ".join(row))

    shown = [k for k in reads if k != "long_a1 (tuning)"]
    for vname, (rule, cost) in variants.items():
        print(f"== {vname}")
        costs = []
        for label in ["long_a1 (tuning)", *shown]:
            rs = reads[label]
            got = [rule(r) for r in rs]
            full = sum(g == "full" for g in got)
            pause = sum(g is not None for g in got)
            costs += [cost(r) for r in rs if r.long and label != "dev crisis >40w"]
            tok = np.mean([cost(r) for r in rs]) if rs else 0.0
            print(
                f"  {label:<20} full {share(full, len(rs))}   any pause {share(pause, len(rs))}"
                f"   tokens/msg {tok:5.0f}",
                flush=True,
            )
        print(f"  tokens per long message (all long sets): {np.mean(costs):.0f}")
    print(
        f"runtime {time.perf_counter() - started:.0f} s; {len(embed.known)} texts embedded/cached"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
