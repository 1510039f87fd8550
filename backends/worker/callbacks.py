"""The TrainerCallback that connects a TRL / transformers trainer to its run directory."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from backends.worker.context import Progress

# Trainer summary keys logged once at the end; they are not curves.
_SUMMARY_KEYS = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
}


class RunDirCallback(TrainerCallback):
    """A TRL / transformers trainer's events, told to the run's Progress: every log becomes a
    metrics row, each step the step count, and STOP stops every process at the same step."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._last_tokens: tuple[float, float] | None = None  # (time, num_tokens)

    @property
    def stopped(self) -> bool:
        return self.progress.stopped

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.begin("training", state.max_steps, first=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        now = time.time()
        is_eval = any(k.startswith("eval_") for k in logs)
        row: dict[str, Any] = {}
        for key, value in logs.items():
            if key in _SUMMARY_KEYS or not isinstance(value, int | float):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                value = None  # JSON has no NaN; a null point shows as a gap in the chart
            row[key.removeprefix("eval_") if is_eval else key] = value
        if not is_eval and "num_tokens" in logs:
            tokens = float(logs["num_tokens"])
            if self._last_tokens is not None and now > self._last_tokens[0]:
                row["tokens_per_sec"] = (tokens - self._last_tokens[1]) / (now - self._last_tokens[0])
            self._last_tokens = (now, tokens)
        worth_a_row = set(row) - {"epoch"}
        self.progress.step(
            state.global_step,
            row if worth_a_row else None,
            split="eval" if is_eval else "train",
            total_steps=state.max_steps,
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress.stopped:
            return
        if self.progress.should_stop():
            if state.is_world_process_zero:
                print(
                    f"STOP file found at step {state.global_step}: saving a checkpoint and stopping",
                    flush=True,
                )
            control.should_save = True
            control.should_training_stop = True


class EarlyStop(EarlyStoppingCallback):
    """transformers' early stopping, saying why it stopped: `stopped` holds the step and a
    reason a person can read once `should_training_stop` came from here (not from STOP)."""

    def __init__(self, patience: int, threshold: float, metric: str) -> None:
        super().__init__(early_stopping_patience=patience, early_stopping_threshold=threshold)
        self.metric = metric
        self.stopped: dict[str, Any] | None = None

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict, **kwargs: Any) -> None:
        key = self.metric if self.metric.startswith("eval_") else f"eval_{self.metric}"
        if key not in metrics:  # transformers only warns and turns early stopping off
            found = sorted(k.removeprefix("eval_") for k in metrics if k.startswith("eval_"))
            raise ValueError(
                f"`train.metric_for_best_model` is {self.metric!r}, which this run's evaluation does not "
                f"log; it logs: {', '.join(found)}"
            )
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if control.should_training_stop and self.stopped is None:
            best = state.best_metric
            self.stopped = {
                "step": state.global_step,
                "metric": self.metric.removeprefix("eval_"),
                "value": metrics[key],
                "best": best,
                "best_step": state.best_global_step,
                "reason": (
                    f"eval {self.metric.removeprefix('eval_')} did not improve by more than "
                    f"{self.early_stopping_threshold:g} for {self.early_stopping_patience} "
                    + ("evaluation" if self.early_stopping_patience == 1 else "evaluations in a row")
                    + (f" (best {best:.4g} at step {state.best_global_step})" if best is not None else "")
                ),
            }
            if state.is_world_process_zero:
                print(f"early stopping at step {state.global_step}: {self.stopped['reason']}", flush=True)
