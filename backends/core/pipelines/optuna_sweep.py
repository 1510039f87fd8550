"""`sweep.strategy: optuna`: Optuna's TPE sampler picks each trial's values from the trials
before it, and its median pruner stops a trial whose metric is worse than the finished trials'
median at the same step (the trial is stopped the ordinary way, by its STOP file, and saves).

The trials are still ordinary runs, one after another in the sweep's pipeline: before trial i
starts, the study is asked for its values; while it runs, each new logged value of the pruning
metric is reported to the study; when it ends, the study is told its last value (or that it was pruned
or failed). The study lives in the pipeline process's memory with a fixed seed: a rerun of the
same sweep asks the same first values and reuses the trials that already succeeded.

    sweep:
      strategy: optuna
      trials: 12
      parameters:
        train.learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}
        train.warmup_steps: [0, 5, 10]
      metric: eval_loss
      goal: minimize
      pruning: true            # or false, or {startup_trials: 2, warmup_steps: 10, on: early_stopping}

What the pruner watches (`pruning.on`): `early_stopping`, the trials' own early-stopping metric
(`train.metric_for_best_model` on the eval split, lower is better for a name ending in loss),
the default when the trials evaluate while they train (`train.eval_steps`); else `metric`, the
sweep's metric as it is logged. The sweep still ranks trials by its metric at the end.

Optuna is the `sweep` extra (`pip install -e ".[sweep]"`; make setup installs it).
"""

from __future__ import annotations

from typing import Any

from backends.core.data.jsonl import JsonlTail
from backends.core.runs.rundir import RunDir, RunState


def _distribution(values: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(values, list):
        return CategoricalDistribution(values)
    if values.get("type") == "int":
        return IntDistribution(int(values["low"]), int(values["high"]), log=bool(values.get("log")))
    return FloatDistribution(float(values["low"]), float(values["high"]), log=bool(values.get("log")))


def pruning_settings(spec: dict[str, Any], train: dict[str, Any]) -> dict[str, Any] | None:
    """The median pruner's settings, or None when pruning is off. By default a trial is never
    pruned before step max_steps / 4 (`warmup_steps`), nor before two trials have finished, and
    it is judged on its early-stopping metric when it evaluates while training."""
    pruning = spec.get("pruning", True)
    if pruning is False:
        return None
    given = pruning if isinstance(pruning, dict) else {}
    return {
        "startup_trials": int(given.get("startup_trials", 2)),
        "warmup_steps": int(given.get("warmup_steps", (train.get("max_steps") or 0) // 4)),
        "on": given.get("on", "early_stopping" if train.get("eval_steps") else "metric"),
    }


def watched(spec: dict[str, Any], train: dict[str, Any], on: str) -> tuple[str, str, float]:
    """(split, key, sign) of what the pruner is told: sign -1 turns a value whose better
    direction is not the study's into one that is."""
    minimize = spec.get("goal", "minimize") == "minimize"
    if on == "early_stopping":
        key = str(train.get("metric_for_best_model") or "loss").removeprefix("eval_")
        return "eval", key, 1.0 if key.endswith("loss") == minimize else -1.0
    metric = str(spec["metric"])
    if metric.startswith("eval_"):
        return "eval", metric.removeprefix("eval_"), 1.0
    return "train", metric, 1.0


class OptunaTrials:
    """One study for the sweep's pipeline: `values(i)` asks, `should_stop(run)` reports and
    asks the pruner, `tell(run, state)` finishes a trial."""

    def __init__(self, spec: dict[str, Any], train: dict[str, Any] | None = None) -> None:
        """train: the trials' `train` section (max_steps, eval_steps, metric_for_best_model)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.metric = str(spec["metric"])  # what ranks the finished trials
        self.pruning = pruning_settings(spec, train or {})
        self.split, self.key, self.sign = watched(
            spec, train or {}, self.pruning["on"] if self.pruning else "metric"
        )
        trials = int(spec["trials"])
        pruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=self.pruning["startup_trials"], n_warmup_steps=self.pruning["warmup_steps"]
            )
            if self.pruning
            else optuna.pruners.NopPruner()
        )
        self.study = optuna.create_study(
            direction="minimize" if spec.get("goal", "minimize") == "minimize" else "maximize",
            # TPE needs a few random trials first; a third of the budget, 2 to 10
            sampler=optuna.samplers.TPESampler(
                seed=int(spec.get("seed", 0)), n_startup_trials=min(10, max(2, trials // 3))
            ),
            pruner=pruner,
        )
        self.distributions = {k: _distribution(v) for k, v in spec["parameters"].items()}
        self.current: Any = None
        self.tail: JsonlTail | None = None
        self.pruned = False

    def values(self, i: int) -> dict[str, Any]:
        """Trial i's field values (asked from the study; trials run one at a time)."""
        self.current = self.study.ask(self.distributions)
        self.tail, self.pruned = None, False
        return dict(self.current.params)

    def describe(self) -> str:
        """What the pruner watches, for the pipeline's log."""
        if not self.pruning:
            return "pruning off"
        what = f"{self.split} {self.key}" + (
            " (the early-stopping metric)" if self.pruning["on"] == "early_stopping" else ""
        )
        return f"median pruning on {what} from step {self.pruning['warmup_steps']}, after {self.pruning['startup_trials']} trials"

    def should_stop(self, run: RunDir) -> bool:
        """Report the run's new values of the pruning metric; True once the pruner says stop."""
        if self.current is None or self.pruned:
            return False
        if self.tail is None:
            self.tail = run.tail_metrics()
        before = len(self.tail.rows)
        if not self.tail.poll():
            return False
        for row in self.tail.rows[before:]:
            value = row.get(self.key)
            if str(row.get("split", "train")) == self.split and isinstance(value, int | float):
                self.current.report(self.sign * float(value), int(row.get("step", 0)))
        if self.pruning and self.current.should_prune():
            self.pruned = True
            return True
        return False

    def tell(self, state: RunState, value: float | None) -> str:
        """Finish the current trial; returns the state sweep.json shows for it."""
        from optuna.trial import TrialState

        trial, self.current = self.current, None
        if trial is None:
            return state.value
        if self.pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            return "pruned"
        if state == RunState.SUCCEEDED and value is not None:
            self.study.tell(trial, value)
            return state.value
        self.study.tell(trial, state=TrialState.FAIL)
        return state.value
