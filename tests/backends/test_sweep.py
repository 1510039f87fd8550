"""Sweeps: a preset's `sweep:` block runs each trial as an ordinary run (a pipeline of its
trials) and ranks them in sweep.json by the metric, best first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from backends.core.pipelines.stages import is_pipeline, stage_dicts
from backends.core.pipelines.sweep import expand_sweep, trial_overrides
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError, read_preset
from tests.conftest import ROOT

TINY = ROOT / "presets/tiny/sweep.yaml"


def test_a_grid_is_every_combination_and_random_draws_are_seeded_and_in_range() -> None:
    grid = trial_overrides({"parameters": {"a": [1, 2], "b": ["x", "y", "z"]}})
    assert len(grid) == 6 and {"a": 2, "b": "z"} in grid
    spec = {
        "strategy": "random",
        "trials": 5,
        "seed": 3,
        "parameters": {
            "lr": {"low": 1e-5, "high": 1e-3, "log": True},
            "n": {"low": 1, "high": 4, "type": "int"},
        },
    }
    draws = trial_overrides(spec)
    assert draws == trial_overrides(spec) and len({d["lr"] for d in draws}) == 5
    assert all(1e-5 <= d["lr"] <= 1e-3 and d["n"] in (1, 2, 3, 4) for d in draws)


def test_the_tiny_sweep_is_a_pipeline_of_its_trials() -> None:
    raw = read_preset(TINY)
    assert is_pipeline(raw)
    stages = stage_dicts(raw, str(TINY))
    assert [n for n, _ in stages] == ["t01", "t02", "t03", "t04"]
    assert {(d["train"]["learning_rate"], d["train"]["warmup_steps"]) for _, d in stages} == {
        (1e-4, 0),
        (1e-4, 2),
        (5e-3, 0),
        (5e-3, 2),
    }


OPTUNA_ONE = {
    "parameters": {"train.learning_rate": [1e-3]},
    "metric": "loss",
    "strategy": "optuna",
    "trials": 2,
}


@pytest.mark.parametrize(
    "sweep, message",
    [
        (
            {"parameters": {"train.learning_rate": [1e-3]}, "metric": "loss", "strategy": "optuna"},
            "`sweep.strategy: optuna` needs `sweep.trials`",
        ),
        (
            {"parameters": {"train.learning_rate": [1e-3]}, "metric": "loss", "pruning": True},
            "`sweep.pruning` needs `sweep.strategy: optuna`",
        ),
        (  # optuna picks values as it goes: a range end that no run could use is refused up front
            {
                "parameters": {"train.learning_rate": {"low": -1.0, "high": 1e-3}},
                "metric": "loss",
                "strategy": "optuna",
                "trials": 3,
            },
            "sweep.parameters.train.learning_rate = -1.0",
        ),
        (
            {"parameters": {"train.learning_rate": {"low": 1e-4, "high": 1e-3}}, "metric": "loss"},
            "a grid needs a list",
        ),
        (
            {"parameters": {"train.learning_rate": [1e-3]}, "metric": "loss", "tries": 3},
            "`sweep.tries` is not a sweep setting",
        ),
        (
            {"parameters": {"train.learning_rate": [1e-3]}, "strategy": "random", "metric": "loss"},
            "needs `sweep.trials`",
        ),
        ({"parameters": {"train.nope": [1, 2]}, "metric": "loss"}, "`train.nope` is not a known key"),
        (
            {**OPTUNA_ONE, "pruning": {"on": "best_guess"}},
            "`sweep.pruning.on` is 'best_guess'; expected one of early_stopping, metric",
        ),
        ({**OPTUNA_ONE, "pruning": {"patience": 2}}, "`sweep.pruning.patience` is not a pruning setting"),
        (  # the tiny preset does not evaluate while it trains: nothing to prune on
            {**OPTUNA_ONE, "pruning": {"on": "early_stopping"}},
            "the trials do not evaluate while training: set train.eval_steps",
        ),
    ],
)
def test_a_bad_sweep_is_refused_naming_the_field(sweep: dict, message: str) -> None:
    raw = {**yaml.safe_load(TINY.read_text()), "sweep": sweep}
    with pytest.raises(ConfigError) as e:
        stage_dicts(raw, "a sweep")
    assert any(message in p for p in e.value.problems), e.value.problems


def test_the_tiny_sweep_runs_headless_and_ranks_its_trials(runs_dir: Path, tiny_model: str) -> None:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(TINY)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (pdir,) = [p for p in runs_dir.iterdir() if p.name.endswith("-pipeline") or "pipeline" in p.name]
    summary = json.loads((pdir / "sweep.json").read_text())
    trials = summary["trials"]
    assert len(trials) == 4 and all(t["state"] == "succeeded" for t in trials)
    for t in trials:  # each trial ran with its own values, and its metric is its run's last loss
        run = RunDir(runs_dir / t["run_id"])
        cfg = yaml.safe_load(run.config_path.read_text())
        assert cfg["train"]["learning_rate"] == t["overrides"]["train.learning_rate"]
        assert cfg["train"]["warmup_steps"] == t["overrides"]["train.warmup_steps"]
        losses = [
            json.loads(line)["loss"] for line in run.metrics_path.read_text().splitlines() if '"loss"' in line
        ]
        assert t["metric"] == pytest.approx(losses[-1])
    metrics = [t["metric"] for t in trials]
    assert metrics == sorted(metrics) and summary["best"] == trials[0]["trial"]
    assert len({t["run_id"] for t in trials}) == 4
    assert f"best (lowest loss): {summary['best']}" in proc.stdout


def test_expansion_keeps_the_recipe_and_names_each_trial() -> None:
    out = expand_sweep(yaml.safe_load(TINY.read_text()), "tiny")
    assert [s["name"] for s in out["stages"]] == [f"tiny-sweep-t0{i}" for i in range(1, 5)]
    assert all(s["method"] == "sft" and s["train"]["max_steps"] == 6 for s in out["stages"])


OPTUNA = ROOT / "presets/tiny/sweep_optuna.yaml"


def test_optuna_asks_values_from_the_trials_before_and_ranks_them(runs_dir: Path, tiny_model: str) -> None:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(OPTUNA)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (pdir,) = [p for p in runs_dir.iterdir() if "pipeline" in p.name]
    summary = json.loads((pdir / "sweep.json").read_text())
    trials = summary["trials"]
    assert summary["strategy"] == "optuna" and len(trials) == 5
    assert all(t["state"] in ("succeeded", "pruned") for t in trials)
    for t in trials:  # the values the study asked are the values the run trained with
        lr = t["overrides"]["train.learning_rate"]
        assert 1e-5 <= lr <= 1e-2 and t["overrides"]["train.warmup_steps"] in (0, 2)
        cfg = yaml.safe_load(RunDir(runs_dir / t["run_id"]).config_path.read_text())
        assert cfg["train"]["learning_rate"] == lr
    assert len({t["overrides"]["train.learning_rate"] for t in trials}) == 5
    done = [t for t in trials if t["state"] == "succeeded"]
    assert summary["best"] == done[0]["trial"] and done[0]["metric"] == min(t["metric"] for t in done)


def _log(run: RunDir, step: int, loss: float, split: str = "train", key: str = "loss") -> None:
    with run.metrics_path.open("a") as f:
        f.write(json.dumps({"step": step, "split": split, key: loss}) + "\n")


def test_the_median_pruner_stops_a_trial_behind_the_finished_ones(tmp_path: Path) -> None:
    from backends.core.pipelines.optuna_sweep import OptunaTrials
    from backends.core.runs.rundir import RunState

    spec = yaml.safe_load(OPTUNA.read_text())["sweep"]
    trials = OptunaTrials(spec, {"max_steps": 8})
    runs = []
    for i, curve in enumerate([[6.0, 5.0, 4.0, 3.0], [6.0, 5.2, 4.2, 3.1], [6.0, 5.9, 5.8, 5.7]]):
        run = RunDir(tmp_path / f"r{i}")
        run.path.mkdir()
        runs.append(run)
        trials.values(i)
        stopped_at = None
        for n, loss in enumerate(curve, 1):  # the run logs one step at a time
            _log(run, n, loss)
            if trials.should_stop(run):
                stopped_at = n
                break
        shown = trials.tell(RunState.STOPPED if stopped_at else RunState.SUCCEEDED, curve[-1])
        if i < 2:  # the first two finish: the pruner needs trials to compare with
            assert stopped_at is None and shown == "succeeded"
        else:  # behind the median once the warm-up is over (from step 2 on): stopped at step 2
            assert stopped_at == 2 and shown == "pruned"
    states = [t.state.name for t in trials.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert trials.study.best_value == 3.0


def test_the_pruner_watches_the_early_stopping_metric_when_the_trials_evaluate(tmp_path: Path) -> None:
    """The sweep ranks by train loss (minimize), but the trials evaluate every step and stop
    early on eval rewards/accuracies (higher is better): the pruner is told the accuracy, turned
    to the study's direction, and stops the trial whose accuracy falls though its loss is best."""
    from backends.core.pipelines.optuna_sweep import OptunaTrials
    from backends.core.runs.rundir import RunState

    spec = {
        **yaml.safe_load(OPTUNA.read_text())["sweep"],
        "pruning": {"startup_trials": 2, "warmup_steps": 2},
    }
    train = {"max_steps": 8, "eval_steps": 1, "metric_for_best_model": "rewards/accuracies"}
    trials = OptunaTrials(spec, train)
    assert trials.describe() == (
        "median pruning on eval rewards/accuracies (the early-stopping metric) from step 2, after 2 trials"
    )
    curves = [  # (train loss, eval accuracy) per step
        [(3.0, 0.5), (2.5, 0.6), (2.0, 0.7), (1.5, 0.8)],
        [(3.0, 0.5), (2.6, 0.62), (2.1, 0.72), (1.6, 0.82)],
        [(2.0, 0.5), (1.0, 0.3), (0.5, 0.2), (0.2, 0.1)],  # the lowest loss, the accuracy falling
    ]
    stops = []
    for i, curve in enumerate(curves):
        run = RunDir(tmp_path / f"r{i}")
        run.path.mkdir()
        trials.values(i)
        stopped_at = None
        for n, (loss, acc) in enumerate(curve, 1):
            _log(run, n, loss)
            _log(run, n, acc, split="eval", key="rewards/accuracies")
            if trials.should_stop(run):
                stopped_at = n
                break
        stops.append(stopped_at)
        trials.tell(RunState.STOPPED if stopped_at else RunState.SUCCEEDED, curve[-1][0])
    assert stops == [None, None, 2]
    assert [t.state.name for t in trials.study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    # what the study was told along the way: the accuracies, negated (it minimizes)
    assert trials.study.trials[0].intermediate_values == {1: -0.5, 2: -0.6, 3: -0.7, 4: -0.8}
    # without evaluation during training it watches the sweep's own metric
    assert OptunaTrials(spec, {"max_steps": 8}).describe().startswith("median pruning on train loss from")


def test_a_swept_pipeline_stage_hands_its_best_trial_to_the_next_stage(
    runs_dir: Path, tiny_model: str
) -> None:
    preset = ROOT / "presets/tiny/sweep_stage.yaml"
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(preset)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (pdir,) = [p for p in runs_dir.iterdir() if "pipeline" in p.name]
    summary = json.loads((pdir / "sweep.json").read_text())
    assert summary["stage"] == "sft" and [t["trial"] for t in summary["trials"]] == ["sft-t02", "sft-t01"]
    best = summary["trials"][0]
    assert best["metric"] < summary["trials"][1]["metric"]
    (dpo,) = [RunDir(p) for p in runs_dir.iterdir() if "-dpo-" in p.name]
    cfg = yaml.safe_load(dpo.config_path.read_text())
    assert cfg["model"]["name_or_path"] == str(runs_dir.resolve() / best["run_id"] / "model")


def test_only_one_stage_may_be_swept() -> None:
    raw = yaml.safe_load((ROOT / "presets/tiny/sweep_stage.yaml").read_text())
    raw["stages"][1]["sweep"] = {"parameters": {"train.learning_rate": [1e-3, 1e-4]}, "metric": "loss"}
    with pytest.raises(ConfigError) as e:
        stage_dicts(raw, "two sweeps")
    assert any("only one stage of a pipeline may be swept (`sft` is)" in p for p in e.value.problems)
