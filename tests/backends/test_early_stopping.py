"""Early stopping: refused with a clear message where it cannot work, and on a tiny run whose
eval loss rises (the learning rate climbs to 0.5 over the first steps) the run stops at the
step the rule names, keeps the best checkpoint as its model, and says so in its status and
in the headless summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from backends.core.runs.rundir import RunDir, list_runs
from backends.core.spec.config import ConfigError, load_preset
from studio.logic import forms

ROOT = Path(__file__).resolve().parents[2]
TINY = "presets/tiny/sft.yaml"
ES = ["train.early_stopping_patience=2", "train.eval_steps=2", "train.save_steps=2"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.early_stopping_patience=2", "train.eval_steps=null"],
            "`train.early_stopping_patience` is 2 but the run has no eval split: set `train.eval_steps`",
        ),
        (
            ["train.early_stopping_patience=3", "train.eval_steps=4", "train.save_steps=10"],
            "`train.save_steps` (10) must be a multiple of `train.eval_steps` (4)",
        ),
        (
            ["train.early_stopping_patience=2", "train.eval_steps=2", "data.eval_fraction=0"],
            "`data.eval_fraction` is 0",
        ),
    ],
)
def test_early_stopping_without_what_it_needs_is_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_preset(ROOT / TINY, overrides)
    assert any(message in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("method", ["ppo", "grpo", "rloo"])
def test_methods_that_do_not_read_it_refuse_it_and_hide_it(method: str) -> None:
    with pytest.raises(ConfigError, match=f"but `{method}` does not read it"):
        load_preset(ROOT / f"presets/tiny/{method}.yaml", ["train.early_stopping_patience=2"])
    fields = {f.key: f for f in forms.form_fields()}
    for key in (
        "train.early_stopping_patience",
        "train.early_stopping_threshold",
        "train.metric_for_best_model",
    ):
        assert not fields[key].visible(method) and fields[key].visible("dpo") and fields[key].visible("sft")
    assert "not grpo, rloo, ppo" in fields["train.early_stopping_patience"].info


def expected_stop(evals: list[tuple[int, float]], patience: int, threshold: float = 0.0) -> tuple[int, int]:
    """(stop step, best step) by transformers' rule, from the eval losses the run logged."""
    best, best_step, misses = None, None, 0
    for step, loss in evals:
        if best is None or (loss < best and best - loss > threshold):
            best, best_step, misses = loss, step, 0
        else:
            misses += 1
            if misses >= patience:
                return step, best_step
    raise AssertionError(f"the rule never stops on {evals}")


def test_a_run_whose_eval_loss_rises_stops_early_and_keeps_its_best_checkpoint(
    runs_dir: Path, tiny_model: str
) -> None:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", TINY]
    sets = [
        *ES,
        "train.max_steps=40",
        # bf16 is off in the preset and the seeds are fixed: the curve is the same each time
        "train.learning_rate=0.5",
        "train.lr_scheduler_type=constant_with_warmup",
        "train.warmup_steps=12",  # the step size climbs until the eval loss goes up
    ]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = list_runs(runs_dir)
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    evals = [(r["step"], r["loss"]) for r in rows if r["split"] == "eval"]
    stop, best = expected_stop(evals, patience=2)
    assert (stop, best) == (6, 2), evals  # 6.80 at step 2, then 11.7 and 7.6: two without a better one
    st = run.read_status()
    assert st["state"] == "succeeded" and st["step"] == stop < st["total_steps"] == 40
    es = st["early_stop"]
    assert es["step"] == stop and es["best_step"] == best and es["metric"] == "loss"
    assert "did not improve by more than 0 for 2 evaluations in a row" in es["reason"]
    assert (
        f"stopped early at step {stop} of 40" in proc.stdout
        and f"best checkpoint (step {best})" in proc.stdout
    )
    # the run's model is the best checkpoint's weights (kept by the rotation), not the last step's
    assert es["best_checkpoint"].endswith(f"checkpoint-{best}")
    best_weights = load_file(Path(es["best_checkpoint"]) / "model.safetensors")
    model = load_file(run.model_dir / "model.safetensors")
    last = load_file(run.checkpoints_dir / f"checkpoint-{stop}" / "model.safetensors")
    assert all((model[k] == best_weights[k]).all() for k in best_weights)
    assert any(not (model[k] == last[k]).all() for k in last)


def test_the_studio_summary_says_where_and_why(tmp_path: Path) -> None:
    from studio.logic.runs import run_summary

    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.init_status()
    run.update_status(state="running")
    reason = "eval loss did not improve by more than 0 for 2 evaluations in a row (best 6.8 at step 2)"
    run.update_status(state="succeeded", early_stop={"step": 6, "best_step": 2, "reason": reason})
    text = run_summary(run)
    assert f"**Stopped early:** at step 6: {reason}; the model is the best checkpoint (step 2)" in text


def test_a_metric_the_evaluation_does_not_log_is_named() -> None:
    from backends.worker.callbacks import EarlyStop

    stopper = EarlyStop(2, 0.0, "rewards/margins")
    with pytest.raises(
        ValueError, match=r"is 'rewards/margins', which this run's evaluation does not log; it logs: loss"
    ):
        stopper.on_evaluate(None, None, None, metrics={"eval_loss": 1.0, "eval_runtime": 0.1})
