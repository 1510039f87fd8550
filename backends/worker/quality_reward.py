"""The `quality` reward: a per-answer score in [0, 1] that a degenerate answer cannot earn, to sit
beside a verifiable reward (the checkers) so RL cannot win by emitting empty answers, loops or
one-line templates that happen to meet a constraint.

    quality = relevance * (1 - repeated_4grams) * length_floor

    relevance        max(0, cosine(prompt, answer)) of MiniLM sentence embeddings
                     (`backends.worker.embed.Embedder`, the shipped all-MiniLM-L6-v2): an
                     answer about something else scores near 0
    repeated_4grams  share of the answer's word 4-grams that repeat an earlier one
                     (`backends.core.reports.quality.repeated_ngram_share`): a loop scores near 0
    length_floor     min(1, words / MIN_WORDS): an answer of MIN_WORDS words or more is not
                     scored down; shorter ones lose in proportion; an empty answer scores 0

MIN_WORDS is 20: the embedded tasks' tightest length limit is "at most 30 words" (train and
held-out splits), so a floor of 20 never costs an answer that meets a word limit with room to
spare, while a bare one-liner ("I keep coming back to Barnet.", 6 words) keeps under a third of
its score. The embedder loads on the first call (about a second), once per reward object.
"""

from __future__ import annotations

from typing import Any

from backends.core.data.formats import text_of
from backends.core.reports.quality import repeated_ngram_share, words

MIN_WORDS = 20


def length_floor(text: str, min_words: int = MIN_WORDS) -> float:
    """1 for answers of `min_words` words or more, words / min_words below that."""
    return min(1.0, len(words(text)) / min_words) if min_words > 0 else 1.0


def quality_score(relevance: float, text: str, min_words: int = MIN_WORDS) -> float:
    """The formula above, given the answer's cosine to its prompt."""
    return (
        max(0.0, min(1.0, relevance)) * (1.0 - repeated_ngram_share(text, 4)) * length_floor(text, min_words)
    )


class QualityReward:
    """TRL's reward-function signature, `f(prompts, completions, **columns) -> list[float]`;
    reads no column, so it serves any prompt set."""

    __name__ = "quality"

    def __init__(self, min_words: int = MIN_WORDS, embedder: Any = None) -> None:
        self.min_words = min_words
        self._embedder = embedder

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from backends.worker.embed import Embedder

            self._embedder = Embedder()
        return self._embedder

    def relevance(self, prompts: list[str], answers: list[str]) -> list[float]:
        """Cosine of each prompt's and answer's embeddings (both are normalised)."""
        unique = list(dict.fromkeys(prompts))  # a group shares its prompt: embed it once
        vecs = self.embedder.encode(unique + answers)
        by_prompt = dict(zip(unique, vecs[: len(unique)], strict=True))
        return [float(by_prompt[p] @ v) for p, v in zip(prompts, vecs[len(unique) :], strict=True)]

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        ps = [text_of(p) for p in prompts]
        cs = [text_of(c) for c in completions]
        scores = [0.0] * len(cs)
        live = [i for i, c in enumerate(cs) if words(c)]  # an empty answer scores 0: nothing to embed
        if live:
            rel = self.relevance([ps[i] for i in live], [cs[i] for i in live])
            for i, r in zip(live, rel, strict=True):
                scores[i] = quality_score(r, cs[i], self.min_words)
        return scores
