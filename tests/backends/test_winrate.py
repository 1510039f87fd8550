"""Win-rate statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from backends.core.winrate import Tally, bradley_terry, bradley_terry_ci, length_controlled_win_rate, wilson


def test_wilson_interval_by_hand() -> None:
    # p = .8, n = 10, z = 1.96: centre = (.8 + .19208) / 1.38415 = .7167;
    # half = 1.96 * sqrt(.016 + .0096040) / 1.38415 = .2266
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.7167 - 0.2266, abs=1e-3) and hi == pytest.approx(0.7167 + 0.2266, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(10, 10)[0] > 0.65


def test_ties_count_half() -> None:
    t = Tally(wins=6, ties=2, losses=2)
    assert t.n == 10 and t.win_rate == pytest.approx(0.7)
    assert t.ci95() == pytest.approx(wilson(7, 10))


def test_bradley_terry_recovers_known_strengths() -> None:
    # strengths 4 : 2 : 1 -> P(A>B) = 2/3, P(A>C) = 4/5, P(B>C) = 2/3; counts equal to expectations
    games = (
        [("A", "B", 1.0)] * 40
        + [("A", "B", 0.0)] * 20
        + [("A", "C", 1.0)] * 48
        + [("A", "C", 0.0)] * 12
        + [("B", "C", 1.0)] * 40
        + [("B", "C", 0.0)] * 20
    )
    s = bradley_terry(["A", "B", "C"], games)
    assert s["A"] - s["B"] == pytest.approx(math.log(2), abs=0.01)
    assert s["B"] - s["C"] == pytest.approx(math.log(2), abs=0.01)
    ci = bradley_terry_ci(["A", "B", "C"], games, rounds=100)
    for m in "ABC":
        score, lo, hi = ci[m]
        assert lo < score < hi
    assert ci["A"][1] > ci["C"][2]  # A is clearly above C


def test_length_controlled_win_rate_removes_a_length_only_judge() -> None:
    # The judge always prefers the longer answer; A is longer half of the time.
    len_a = [10, 50, 12, 60, 11, 55, 9, 58] * 5
    len_b = [50, 10, 60, 12, 55, 11, 58, 9] * 5
    outcomes = [1.0 if a > b else 0.0 for a, b in zip(len_a, len_b, strict=True)]
    assert length_controlled_win_rate(outcomes, len_a, len_b) == pytest.approx(0.5, abs=0.02)
    # A is longer on 3 of 4 prompts and a noisy judge picks the longer answer 90% of the
    # time: the raw win rate is .7, but length explains it, so the controlled rate is ~.5
    import random

    rng = random.Random(0)
    la, lb, out = [], [], []
    for i in range(200):
        a, b = (
            (rng.randint(40, 60), rng.randint(5, 20))
            if i % 4 != 3
            else (rng.randint(5, 20), rng.randint(40, 60))
        )
        out.append(1.0 if (a > b) == (rng.random() < 0.9) else 0.0)
        la.append(a)
        lb.append(b)
    assert sum(out) / len(out) == pytest.approx(0.7)
    assert abs(length_controlled_win_rate(out, la, lb) - 0.5) < 0.1
