"""Results that hold: InstructGPT on the tiny model ends with a three-model comparison and a
report; a reward model reports its held-out pair accuracy by category; PPO resumes from a
checkpoint; runs also report to TensorBoard when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backends.core.data.jsonl import read_jsonl
from backends.core.runs.rundir import RunDir, list_runs

ROOT = Path(__file__).resolve().parents[2]


def headless(runs_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_tiny_instructgpt_ends_with_a_three_model_comparison_and_a_report(
    runs_dir: Path, tiny_model: str
) -> None:
    proc = headless(runs_dir, "--preset", "presets/tiny/instructgpt.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    stages = {s["stage"]: s for s in pipe.read_status()["stages"]}
    assert [s["state"] for s in stages.values()] == ["succeeded"] * 5
    arena = RunDir(runs_dir / stages["arena"]["run_id"])
    wr = json.loads(arena.winrate_path.read_text())
    assert len(wr["models"]) == 3 and len(wr["pairs"]) == 3 * 2  # 3 pairs of models x 2 judges
    assert set(wr["scores"]) == {"checkers", "reward_model"} and all(
        len(v) == 3 for v in wr["scores"].values()
    )
    assert {len(r) for r in wr["bradley_terry"].values()} == {3}
    for p in wr["pairs"]:
        lo, hi = p["diff_ci95"]
        assert lo <= p["diff"] <= hi and p["verdict"] in ("yes", "no", "cannot tell")
    # the reward model was evaluated on the embedded held-out pairs, by constraint kind
    reward = RunDir(runs_dir / stages["reward"]["run_id"])
    ev = json.loads(reward.evaluation_path.read_text())
    assert ev["dataset"] == "builtin:tasks" and ev["split"] == "heldout" and ev["n"] > 0
    assert (
        0.0 <= ev["accuracy"] <= 1.0
        and ev["by_category"]
        and all(v["n"] > 0 for v in ev["by_category"].values())
    )
    assert any(
        r.get("split") == "eval" and "heldout_pair_accuracy" in r for r in read_jsonl(reward.metrics_path)
    )
    # both reports, with every stage and the comparison's verdicts; the HTML carries plotly offline
    md = pipe.report_md_path.read_text()
    for name in ("sft", "pairs", "reward", "ppo", "arena"):
        assert f"Stage {name}" in md
    assert "scores higher than" in md and "Held-out pair accuracy" in md
    html = pipe.report_html_path.read_text()
    assert "<table>" in html and "plotly" in html and "cdn.plot.ly" not in html.split("<body>")[0]
    assert str(pipe.report_md_path) in proc.stdout and "held-out pair accuracy" in proc.stdout


def test_ppo_resumes_from_its_checkpoint(runs_dir: Path, tiny_model: str) -> None:
    first = headless(runs_dir, "--preset", "presets/tiny/ppo.yaml", "--set", "train.save_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    (old,) = list_runs(runs_dir)
    assert (old.checkpoints_dir / "checkpoint-2" / "optimizer.pt").exists()
    again = headless(runs_dir, "--resume", str(old.path), "--set", "train.max_steps=6")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    new = next(r for r in list_runs(runs_dir) if r.run_id != old.run_id)
    st = new.read_status()
    assert st["state"] == "succeeded" and st["first_step"] == 2 and st["step"] == 6
    steps = [r["step"] for r in read_jsonl(new.metrics_path)]
    assert steps == [1, 2, 3, 4, 5, 6]  # the old curve up to the checkpoint, then the new steps
    assert "resumed from" in new.log_tail()


def test_report_to_tensorboard_writes_event_files(runs_dir: Path, tiny_model: str) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = headless(
        runs_dir,
        "--preset",
        "presets/tiny/sft.yaml",
        "--set",
        "train.max_steps=3",
        "--set",
        "train.report_to=[tensorboard]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    (events,) = [p.parent for p in (run.path / "tensorboard").rglob("events.out.tfevents.*")]
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert len(acc.Scalars("train/loss")) == 3


def test_a_tracker_that_is_not_installed_is_refused_by_name(tmp_path: Path) -> None:
    import pytest

    from backends.worker.trainers import configure_trackers

    with pytest.raises(
        ValueError, match=r"`train.report_to` names \['mlflow'\] but the package is not installed"
    ):
        configure_trackers(["mlflow"], RunDir(tmp_path))
