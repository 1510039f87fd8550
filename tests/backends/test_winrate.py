"""Win-rate statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from backends.core.reports.winrate import (
    Tally,
    bradley_terry,
    bradley_terry_ci,
    length_controlled_win_rate,
    wilson,
)


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


def test_bootstrap_intervals_by_hand() -> None:
    from backends.core.reports.winrate import bootstrap_mean_ci, paired_difference, verdict

    # two values: resampled means are 0 (p = 1/4), 0.5 (1/2) or 1 (1/4), so the 2.5% and
    # 97.5% points are exactly 0 and 1
    assert bootstrap_mean_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)
    # every prompt gains exactly 0.2: no spread, the interval is the point
    diff, lo, hi = paired_difference([0.2, 0.5, 0.1, 0.0], [0.4, 0.7, 0.3, 0.2])
    assert (diff, lo, hi) == pytest.approx((0.2, 0.2, 0.2)) and verdict(lo, hi) == "yes"
    assert verdict(-0.1, 0.3) == "cannot tell" and verdict(-0.3, -0.1) == "no"
    # 50 zeros and 50 ones: mean 0.5, standard error sqrt(.25 / 99) = .0503, so the 95%
    # interval is about 0.5 +- 1.96 * .0503 = [0.401, 0.599]
    mean, lo, hi = bootstrap_mean_ci([0.0, 1.0] * 50)
    assert mean == 0.5 and lo == pytest.approx(0.401, abs=0.012) and hi == pytest.approx(0.599, abs=0.012)
    # pairing matters: the same marginals with prompt-level correlation give a narrow interval
    a = [i / 10 for i in range(10)] * 3
    b = [x + 0.05 for x in a]
    _, lo, hi = paired_difference(a, b)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference([1.0], [1.0, 2.0])


def test_comparison_summary_scores_pairs_and_verdicts() -> None:
    from backends.core.reports.comparison import Answers, summarize
    from backends.core.reports.verdicts import tally_table
    from backends.core.spec.config import validate_config

    models = ["builtin:smollm2-135m-instruct", "/runs/20260101-000000-sft-abcd/model"]
    cfg = validate_config({"method": "eval", "eval": {"models": models}}, "test")
    base = [0.0, 0.5, 0.5, 1.0]
    sft = [0.5, 1.0, 0.5, 1.0]  # +0.5, +0.5, 0, 0: mean +0.25
    answers, judgments = Answers(), []
    for pid, (sa, sb) in enumerate(zip(base, sft, strict=True)):
        answers.length[(pid, models[0])], answers.length[(pid, models[1])] = 10, 12
        answers.score[("checkers", pid, models[0])], answers.score[("checkers", pid, models[1])] = sa, sb
        out = 1.0 if sa > sb else 0.0 if sa < sb else 0.5
        judgments.append(
            {"prompt_id": pid, "a": models[0], "b": models[1], "judge": "checkers", "outcome": out}
        )
    wr = summarize(cfg, judgments, answers, 4, 4, "transformers")
    (pair,) = wr["pairs"]
    assert (pair["wins"], pair["ties"], pair["losses"]) == (0, 2, 2) and pair["win_rate"] == 0.25
    assert pair["mean_a"] == 0.5 and pair["mean_b"] == 0.75 and pair["diff"] == pytest.approx(0.25)
    # resampling four differences of 0 or 0.5: the mean ranges over 0 .. 0.5 in steps of 1/8;
    # P(mean = 0) = (1/2)^4 = 1/16 > 2.5%, so the lower end is 0: cannot tell
    assert pair["diff_ci95"][0] == 0.0 and pair["diff_ci95"][1] == 0.5 and pair["verdict"] == "cannot tell"
    assert (
        wr["scores"]["checkers"][models[1]]["mean"] == 0.75 and wr["scores"]["checkers"][models[1]]["n"] == 4
    )
    assert [r["model"] for r in wr["bradley_terry"]["checkers"]] == [
        models[1],
        models[0],
    ]  # two models ranked too
    text = tally_table(wr)
    assert "20260101-000000-sft-abcd scores higher than smollm2-135m-instruct: cannot tell at 95%" in text
    assert "smollm2-135m-instruct " in text  # names are shortened, not cut
