"""A tiny end-to-end comparison: the base tiny model against its SFT run, judged by the
checkers, by a tiny reward model, and by a judge that only likes long answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backends.core.runs.rundir import RunDir, list_runs
from tests.backends.headless import run_preset

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """
name: arena-test
defaults:
  model: {name_or_path: builtin:tiny-llama}
  train: {bf16: false, activation_checkpointing: false, max_length: 128, save_steps: 100}
  data: {dataset: builtin:tasks, references: template, max_samples: 64, eval_fraction: 0.0}
stages:
  - {stage: sft, method: sft, lora: {enabled: false}, train: {learning_rate: 5.0e-3, max_steps: 10}}
  - {stage: rm, method: reward, lora: {enabled: false}, train: {learning_rate: 1.0e-3, max_steps: 4, per_device_train_batch_size: 4, max_length: 192}}
  - stage: arena
    method: eval
    data: {dataset: builtin:tasks, split: heldout, max_samples: 10}
    eval:
      models: [builtin:tiny-llama, "@sft"]
      judges:
        - {kind: checkers}
        - {kind: reward_model, path: "@rm"}
        - {kind: function, path: "tests.backends.rl_rewards:longer_is_better"}
      max_new_tokens: 24
      temperature: 1.0
      batch_size: 5
"""


def test_comparison_judged_three_ways(tmp_path: Path, tiny_model: str) -> None:
    preset = tmp_path / "arena.yaml"
    preset.write_text(PIPELINE)
    runs = tmp_path / "runs"
    proc = run_preset(preset, runs)
    arena = next(
        r for r in list_runs(runs) if r.run_id.startswith(tuple("0123456789")) and "-arena-" in r.run_id
    )
    wr = json.loads((arena.path / "winrate.json").read_text())
    assert wr["prompts_done"] == 10 and wr["prompt_set"]["split"] == "heldout"
    assert [j["name"] for j in wr["judges"]] == ["checkers", "reward_model", "longer_is_better"]
    for p in wr["pairs"]:
        assert p["wins"] + p["ties"] + p["losses"] == p["n"] == 10
        assert 0.0 <= p["ci95"][0] <= p["win_rate"] <= p["ci95"][1] <= 1.0
    assert set(wr["judge_agreement"]) == {
        "checkers vs reward_model",
        "checkers vs longer_is_better",
        "reward_model vs longer_is_better",
    }
    # the length-only judge: its verdicts follow the answers' lengths exactly
    samples = [json.loads(x) for x in arena.samples_path.read_text().splitlines()]
    length = {(s["prompt_id"], s["model"]): s["length"] for s in samples}
    judged = [json.loads(x) for x in (arena.path / "judgments.jsonl").read_text().splitlines()]
    for j in (j for j in judged if j["judge"] == "longer_is_better"):
        la, lb = length[(j["prompt_id"], j["a"])], length[(j["prompt_id"], j["b"])]
        assert j["outcome"] == (1.0 if la > lb else 0.0 if la < lb else 0.5)
    lj = next(p for p in wr["pairs"] if p["judge"] == "longer_is_better")
    if lj["win_rate"] > 0.5:
        assert lj["mean_len_a"] > lj["mean_len_b"]
    elif lj["win_rate"] < 0.5:
        assert lj["mean_len_a"] < lj["mean_len_b"]
    assert "longer_is_better" in proc.stdout and "95%" in proc.stdout  # the tally table is printed
    assert len(samples) == 20 and RunDir(arena.path).read_status()["generation_engine"] == "transformers"
    # quality signals beside the judged scores: every model, every signal (the SFT run's
    # training set is known, so copy share is measured), and the paired differences
    signals = {"relevance", "distinct_2", "repeated_4grams", "top_opening_share", "copy_share", "mean_words"}
    for m in wr["models"]:
        assert signals <= set(wr["quality"][m]), wr["quality"][m]
        assert -1.0 <= wr["quality"][m]["relevance"]["mean"] <= 1.0
    (pair,) = wr["quality_pairs"]
    assert signals <= set(pair) and all(isinstance(pair[s]["worse"], bool) for s in signals)
    words = {m: sum(s["length"] for s in samples if s["model"] == m) / 10 for m in wr["models"]}
    for m in wr["models"]:
        assert abs(wr["quality"][m]["mean_words"]["mean"] - words[m]) < 3  # its own word count vs split()
    assert all(set(s["quality"]) >= signals - {"top_opening_share"} | {"opening"} for s in samples)
    assert proc.stdout.count("verdict: ") == 3  # one sentence per score judge, before the tables


def test_three_models_get_a_bradley_terry_ranking(tmp_path: Path, tiny_model: str) -> None:
    from backends.core.runs.launcher import Launcher
    from backends.core.spec.config import validate_config

    runs = tmp_path / "runs"
    other = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_model, other)  # same weights under another name: a third contestant
    cfg = validate_config(
        {
            "method": "eval",
            "model": {"name_or_path": tiny_model},
            "data": {"dataset": "builtin:tasks", "split": "heldout", "max_samples": 6},
            "eval": {
                "models": ["builtin:tiny-llama", tiny_model, str(other)],
                "max_new_tokens": 12,
                "judges": [{"kind": "function", "path": "tests.backends.rl_rewards:longer_is_better"}],
            },
            "train": {"bf16": False},
        },
        "test",
    )
    run = Launcher(runs).create_run(cfg)
    proc = subprocess.run(
        [sys.executable, "-m", "backends.worker", str(run.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wr = json.loads((run.path / "winrate.json").read_text())
    assert len(wr["pairs"]) == 3
    ranking = wr["bradley_terry"]["longer_is_better"]
    assert sorted(r["model"] for r in ranking) == sorted(cfg.eval.models)
    assert all(r["ci95"][0] <= r["score"] <= r["ci95"][1] for r in ranking)
