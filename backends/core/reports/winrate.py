"""Statistics for comparisons of models: tallies with a stated ties rule, Wilson intervals,
a length-controlled win rate, a Bradley-Terry ranking with bootstrap intervals, and the
per-prompt scores with their intervals (a model's mean score; the paired difference of
two models). Pure numpy; no torch.

Ties rule, stated once: a tie counts as half a win and half a loss; the 95% interval is
the Wilson score interval of (wins + ties / 2) / n over all n judged prompts.

Scores: when a judge gives each answer a number (the checkers' share of constraints met,
a reward model's score), two models answering the same prompts are compared prompt by
prompt: the mean of B's score minus A's, with a paired bootstrap interval (resample the
prompts, keep each prompt's two scores together). Ties cost this no power, which is why
it can tell when the win rate cannot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (successes may be fractional: ties = 0.5)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


BOOTSTRAP_ROUNDS = 4000


def bootstrap_mean_ci(
    values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the 2.5 / 97.5 percentiles of the mean over resamples of `values`."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(rounds, len(x)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(x.mean()), float(lo), float(hi))


def paired_difference(
    a: Sequence[float], b: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of b - a, low, high) over the same prompts, by the paired bootstrap."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same prompts: {len(a)} scores for A, {len(b)} for B")
    return bootstrap_mean_ci(np.asarray(b, dtype=float) - np.asarray(a, dtype=float), rounds, seed)


Verdict = Literal["yes", "no", "cannot tell"]


def verdict(low: float, high: float) -> Verdict:
    """Does B score higher than A at 95%? yes: the interval of B - A is above zero; no: below."""
    if low > 0:
        return "yes"
    if high < 0:
        return "no"
    return "cannot tell"


@dataclass
class Tally:
    wins: int = 0
    ties: int = 0
    losses: int = 0

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float:
        return (self.wins + 0.5 * self.ties) / self.n if self.n else float("nan")

    def ci95(self) -> tuple[float, float]:
        return wilson(self.wins + 0.5 * self.ties, self.n)


def length_controlled_win_rate(
    outcomes: Sequence[float],
    len_a: Sequence[float],
    len_b: Sequence[float],
    ridge: float = 1e-3,
    iters: int = 50,
) -> float:
    """Win rate of A when both answers have the same length: a logistic regression of the
    outcome (1 win, 0.5 tie, 0 loss) on the standardised length difference, read at zero.
    A judge that rewards length gives a raw win rate far from this one."""
    y = np.asarray(outcomes, dtype=float)
    if len(y) == 0:
        return float("nan")
    d = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    scale = d.std() or 1.0
    x = np.stack([np.ones_like(d), d / scale], 1)
    w = np.zeros(2)
    for _ in range(iters):  # Newton's method on the ridge-penalised log-likelihood
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (y - p) - ridge * w
        hess = -(x.T * (p * (1 - p))) @ x - ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(1 / (1 + np.exp(-w[0])))


def bradley_terry(
    models: list[str], games: list[tuple[str, str, float]], iters: int = 1000
) -> dict[str, float]:
    """Strengths by Hunter's MM algorithm from games (a, b, outcome for a: 1, 0.5, 0),
    returned as log-strengths centred on their mean."""
    idx = {m: i for i, m in enumerate(models)}
    k = len(models)
    wins = np.zeros(k)
    n = np.zeros((k, k))
    for a, b, out in games:
        i, j = idx[a], idx[b]
        wins[i] += out
        wins[j] += 1 - out
        n[i, j] += 1
        n[j, i] += 1
    wins = wins + 0.01  # keeps an unbeaten or winless model finite
    p = np.ones(k)
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(1)
        new = wins / np.where(denom > 0, denom, 1)
        new /= np.exp(np.log(new).mean())
        if np.abs(new - p).max() < 1e-12:
            p = new
            break
        p = new
    logp = np.log(p)
    return {m: float(logp[idx[m]] - logp.mean()) for m in models}


def bradley_terry_ci(
    models: list[str], games: list[tuple[str, str, float]], rounds: int = 200, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """(score, low, high) per model: the 2.5 / 97.5 percentiles over bootstrap resamples of games."""
    point = bradley_terry(models, games)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds if games else 0):
        resampled = [games[rng.randrange(len(games))] for _ in games]
        for m, s in bradley_terry(models, resampled, iters=200).items():
            samples[m].append(s)
    out = {}
    for m in models:
        if samples[m]:
            lo, hi = np.percentile(samples[m], [2.5, 97.5])
            out[m] = (point[m], float(lo), float(hi))
        else:
            out[m] = (point[m], float("nan"), float("nan"))
    return out
