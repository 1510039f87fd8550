"""Quality signals of answers: what a judge of constraints cannot see.

A checker that scores format calls a model better that learnt to emit a short template; a
reward model can be fooled the same way. So every comparison also reports, per model and
beside its judged scores, signals of the answers themselves, each per answer (so two models
are compared prompt by prompt, like scores):

  relevance          cosine of the prompt's and the answer's MiniLM embeddings (worker side)
  distinct_2         distinct word bigrams / all bigrams in the answer (low: it loops)
  repeated_4grams    share of the answer's word 4-grams that repeat an earlier one (high: loops)
  top_opening_share  1 when the answer opens with its model's most common first five words
                     (high share: one template for every prompt)
  copy_share         1 when the answer nearly copies (cosine > 0.9) a training reference
                     answer of a compared model's training set, when that set is known
  mean_words         words in the answer

`SIGNALS` says which direction is worse. The per-text functions here are pure; the
embeddings come from `backends/worker/quality.py`. No torch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")

OPENING_WORDS = 5
COPY_THRESHOLD = 0.9
# mean_words has no better direction in general; it counts as worse when the answers are
# shorter than the first model's by more than this share of its mean at 95% (a third of the
# length, as templates were, is worse; a concise answer a fifth shorter is not).
LENGTH_DROP = 0.25


@dataclass(frozen=True)
class Signal:
    name: str
    title: str
    worse: Literal["lower", "higher", "shorter"]
    help: str


SIGNALS: tuple[Signal, ...] = (
    Signal("relevance", "relevance", "lower", "cosine of prompt and answer embeddings (MiniLM)"),
    Signal("distinct_2", "distinct-2", "lower", "distinct word bigrams / all bigrams in an answer"),
    Signal("repeated_4grams", "repeated 4-grams", "higher", "share of an answer's 4-grams seen before in it"),
    Signal(
        "top_opening_share",
        "top opening share",
        "higher",
        f"share of answers opening with the model's most common first {OPENING_WORDS} words",
    ),
    Signal(
        "copy_share",
        "copy share",
        "higher",
        f"share of answers with cosine > {COPY_THRESHOLD} to a training reference answer",
    ),
    Signal("mean_words", "mean words", "shorter", f"words per answer (worse: {LENGTH_DROP:.0%}+ shorter)"),
)
SIGNAL_NAMES = tuple(s.name for s in SIGNALS)
TEXT_SIGNALS = ("distinct_2", "repeated_4grams", "mean_words")  # need no model


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _ngrams(ws: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct n-grams over all n-grams of one answer; 1.0 when it has none (too short to loop)."""
    grams = _ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else 1.0


def repeated_ngram_share(text: str, n: int = 4) -> float:
    """Share of the answer's n-grams that repeat an earlier n-gram of the same answer."""
    grams = _ngrams(words(text), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def opening(text: str, n: int = OPENING_WORDS) -> str:
    """The answer's first `n` words, lowercased: how templates show up."""
    return " ".join(words(text)[:n])


def text_signals(text: str) -> dict[str, float]:
    """The signals that need no model, for one answer."""
    return {
        "distinct_2": distinct_n(text, 2),
        "repeated_4grams": repeated_ngram_share(text, 4),
        "mean_words": float(len(words(text))),
    }


def top_opening(openings: list[str]) -> tuple[str, float]:
    """The most common non-empty opening and its share of all answers."""
    counts = Counter(o for o in openings if o)
    if not counts:
        return "", 0.0
    top, c = counts.most_common(1)[0]
    return top, c / len(openings)


# --- Per model and per pair, over prompts (winrate.json's `quality` and `quality_pairs`) ---


def _per_prompt(
    values: dict[tuple[str, int, str], float], openings: dict[tuple[int, str], list[str]], model: str
) -> dict[str, dict[int, float]]:
    """signal -> prompt -> the model's value there (its samples' mean); the opening share is
    each prompt's share of samples opening with the model's most common opening overall."""
    out: dict[str, dict[int, float]] = {}
    for (signal, pid, m), v in values.items():
        if m == model:
            out.setdefault(signal, {})[pid] = v
    mine = {pid: o for (pid, m), o in openings.items() if m == model}
    top, _ = top_opening([x for o in mine.values() for x in o])
    if mine:
        out["top_opening_share"] = {pid: sum(x == top for x in o) / len(o) for pid, o in mine.items()}
    return out


def _worse(signal: Signal, diff_lo: float, diff_hi: float, mean_a: float) -> bool:
    if signal.worse == "lower":
        return diff_hi < 0
    if signal.worse == "higher":
        return diff_lo > 0
    return diff_hi < -LENGTH_DROP * mean_a


def summarize_quality(
    models: list[str],
    values: dict[tuple[str, int, str], float],
    openings: dict[tuple[int, str], list[str]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(per model: signal -> mean with a 95% bootstrap interval; per pair of models: signal
    -> the paired difference B - A over their common prompts, its 95% paired bootstrap
    interval, and whether B is worse at 95%), plus each model's most common opening."""
    from backends.core.reports.winrate import bootstrap_mean_ci, paired_difference

    per = {m: _per_prompt(values, openings, m) for m in models}
    by_model: dict[str, Any] = {}
    for m in models:
        entry: dict[str, Any] = {}
        for s in SIGNALS:
            xs = list(per[m].get(s.name, {}).values())
            if xs:
                mean, lo, hi = bootstrap_mean_ci(xs)
                entry[s.name] = {"mean": mean, "ci95": [lo, hi], "n": len(xs)}
        top, share = top_opening([x for (_, mm), o in openings.items() if mm == m for x in o])
        entry["top_opening"] = top
        by_model[m] = entry
    pairs = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            pair: dict[str, Any] = {"a": a, "b": b}
            for s in SIGNALS:
                va, vb = per[a].get(s.name, {}), per[b].get(s.name, {})
                common = sorted(set(va) & set(vb))
                if not common:
                    continue
                xa, xb = [va[p] for p in common], [vb[p] for p in common]
                diff, lo, hi = paired_difference(xa, xb)
                mean_a = sum(xa) / len(xa)
                pair[s.name] = {"diff": diff, "diff_ci95": [lo, hi], "worse": _worse(s, lo, hi, mean_a)}
            pairs.append(pair)
    return by_model, pairs


def fell(pair: dict[str, Any]) -> list[str]:
    """`relevance fell: -0.21 [-0.27, -0.15]` for each signal of a quality pair that is worse for B."""
    out = []
    for s in SIGNALS:
        q = pair.get(s.name)
        if q and q["worse"]:
            moved = {"lower": "fell", "higher": "rose", "shorter": "fell"}[s.worse]
            lo, hi = q["diff_ci95"]
            out.append(f"{s.title} {moved}: {q['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    return out
