"""Rankings of K answers: the typed order, Kendall's tau against hand-computed values, a
ranking of 4 exported as its 6 pairs in the right order, and the reward stage weighing a
prompt's pairs so the prompt counts once (the loss, and a tiny run that logs the weights)."""

from __future__ import annotations

import json
import subprocess
import sys
from math import sqrt
from pathlib import Path

import pytest

from backends.core.labels.agreement import export_rankings, kendall_tau, ranking_pairs, ranking_report
from backends.core.labels.ranking import (
    OrderError,
    format_order,
    parse_order,
    per_prompt_weights,
    response_ranks,
    shown_tiers,
)
from backends.core.labels.store import LabelStore, StoreError
from backends.core.runs.rundir import list_runs

ROOT = Path(__file__).resolve().parents[2]


def test_typed_orders_become_tiers_and_bad_ones_are_named() -> None:
    assert parse_order("B A C", 3) == [1, 0, 2]
    assert parse_order("bac", 3) == [1, 0, 2]
    assert parse_order("B > A = C", 3) == [1, 0, 1]  # A and C tied second
    assert parse_order("c=a=b", 3) == [0, 0, 0]
    assert format_order([1, 0, 1]) == "B > A = C"
    assert parse_order(format_order([2, 0, 1, 0]), 4) == [2, 0, 1, 0]
    for text, problem in (
        ("B A", "C is not ranked yet"),
        ("B A D", "'D' is not one of the answers A, B, C"),
        ("B A B C", "B is named twice"),
        ("= A B C", "`=` must stand between two letters"),
        ("A B C =", "`=` must stand between two letters"),
    ):
        with pytest.raises(OrderError, match=problem):
            parse_order(text, 3)
    shown = [2, 0, 1]  # A was response 2, B response 0, C response 1
    assert response_ranks(shown, [1, 0, 2]) == [0, 2, 1]
    assert shown_tiers(shown, response_ranks(shown, [1, 0, 2])) == [1, 0, 2]


def test_kendall_tau_matches_hand_computed_values() -> None:
    assert kendall_tau([0, 1, 2, 3], [0, 1, 2, 3]) == 1.0
    assert kendall_tau([0, 1, 2, 3], [3, 2, 1, 0]) == -1.0
    assert kendall_tau([0, 1, 2, 3], [1, 0, 2, 3]) == pytest.approx((5 - 1) / 6)
    # tau-b with a tie: C = 2, D = 0; 1 tied pair in a of 3 pairs -> 2 / sqrt(2 * 3)
    assert kendall_tau([0, 0, 1], [0, 1, 2]) == pytest.approx(2 / sqrt(6))
    assert kendall_tau([0, 0, 0], [0, 1, 2]) is None  # all tied: undefined


def test_a_ranking_of_four_exports_six_pairs_in_order(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite")
    prompt = [{"role": "user", "content": "name a colour"}]
    sid = store.create_session(
        "r",
        [{"prompt": prompt, "responses": ["red", "blue", "green", "teal"]}],
        kind="ranking",
        votes_per_item=2,
    )
    (item,) = store.items(sid)
    shown = [3, 1, 0, 2]  # shown as A = teal, B = blue, C = red, D = green
    ranks = response_ranks(shown, parse_order("C B D A", 4))  # red > blue > green > teal
    assert ranks == [0, 1, 2, 3]
    store.record_ranking(item.id, "alice", ranks, shown)
    store.record_ranking(item.id, "bob", [1, 0, 2, 2])  # blue > red > green = teal
    with pytest.raises(StoreError, match="no gaps"):
        store.record_ranking(item.id, "carol", [0, 2, 2, 3])
    with pytest.raises(StoreError, match="send a ranking, not a 'left' vote"):
        store.record_vote(item.id, "carol", "left", 0, 1)
    alice = store.rankings(sid, "alice")
    pairs = ranking_pairs(store.items(sid), alice)
    order = ["red", "blue", "green", "teal"]
    assert len(pairs) == 6
    assert {(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs} == {
        (order[i], order[j]) for i in range(4) for j in range(i + 1, 4)
    }
    assert all(p["prompt"] == prompt for p in pairs)
    assert len(ranking_pairs(store.items(sid), store.rankings(sid, "bob"))) == 5  # the tie gives no pair
    (row,) = export_rankings(store.items(sid), alice)
    assert row["responses"] == order and row["ranks"] == [0, 1, 2, 3]
    report = ranking_report(store.rankings(sid), {item.id: [0.9, 0.5, 0.4, 0.1]})
    # alice vs bob: red/blue discordant, green/teal tied for bob: (4 - 1) / sqrt(6 * 5)
    assert report["tau_by_pair"]["alice vs bob"] == pytest.approx(3 / sqrt(30))
    assert report["judge_tau"] == pytest.approx((1 + 3 / sqrt(30)) / 2)
    assert store.complete_items(sid) == {item.id}


def test_per_prompt_weights_make_every_prompt_count_once() -> None:
    ranking = [{"prompt": "p", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(6)]  # C(4, 2) pairs
    singles = [{"prompt": f"q{i}", "chosen": "c", "rejected": "r"} for i in range(2)]
    w = per_prompt_weights(ranking + singles)
    assert sum(w) == pytest.approx(len(w))  # mean 1: the learning rate keeps its meaning
    assert w[0] == pytest.approx(w[6] / 6) and sum(w[:6]) == pytest.approx(w[6])
    assert per_prompt_weights(singles) == [1.0, 1.0]  # one pair per prompt: unweighted
    implicit = [
        {"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}], "rejected": []}
        for a in "ab"
    ]
    assert per_prompt_weights(implicit) == [1.0, 1.0]  # same conversation prefix: one prompt


def test_the_weighted_loss_weighs_each_pair() -> None:
    torch = pytest.importorskip("torch")
    from backends.worker.weighted_reward import weighted_bradley_terry

    chosen, rejected = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 1.0])
    per_pair = -torch.nn.functional.logsigmoid(chosen - rejected)
    loss = weighted_bradley_terry(chosen, rejected, torch.tensor([2.0, 0.0]))
    assert loss.item() == pytest.approx(per_pair[0].item())  # (2 * l0 + 0 * l1) / 2
    assert weighted_bradley_terry(chosen, rejected, torch.ones(2)).item() == pytest.approx(
        per_pair.mean().item()
    )


def test_a_reward_run_on_ranking_pairs_trains_with_per_prompt_weights(
    tmp_path: Path, tiny_model: str
) -> None:
    rows = []
    for p in range(3):  # three rankings of 4 answers: 6 pairs each
        answers = [f"answer {p} number {k} " + "good " * (4 - k) for k in range(4)]
        rows += [
            {"prompt": f"question {p}", "chosen": answers[i], "rejected": answers[j]}
            for i in range(4)
            for j in range(i + 1, 4)
        ]
    rows += [{"prompt": f"single {q}", "chosen": "yes good", "rejected": "no"} for q in range(4)]
    data = tmp_path / "ranked.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "launch.py",
        "--headless",
        "--runs-dir",
        str(runs),
        "--preset",
        "presets/tiny/reward.yaml",
    ]
    for s in (
        f"data.dataset={data}",
        "reward.weighting=per_prompt",
        "train.max_steps=6",
        "train.logging_steps=1",
    ):
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs)
    log = (run.path / "stdout.log").read_text()
    # 22 pairs over 7 prompts (before the eval split): a ranking pair weighs 22/7/6 = 0.52, a single 3.14
    assert "reward.weighting per_prompt (train)" in log
    weights = [json.loads(line).get("mean_weight") for line in run.metrics_path.read_text().splitlines()]
    weights = [w for w in weights if w is not None]
    assert weights and min(weights) < 1.0 < max(weights)  # the batches carried unequal weights
