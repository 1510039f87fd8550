"""The TrainerCallback that connects a TRL / transformers trainer to its run directory."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from backends.core.runs.rundir import RunDir

# Trainer summary keys logged once at the end; they are not curves.
_SUMMARY_KEYS = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
}


def any_process(flag: bool) -> bool:
    """True if `flag` is true in any process of a multi-process run (one all-reduce). Every
    rank must stop at the same step, or the others wait forever in their next collective."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class RunDirCallback(TrainerCallback):
    """Writes every log to metrics.jsonl, progress to status.json, and honours STOP. In a
    multi-process run only the main process writes; every process sees STOP at the same step."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.stopped = False
        self._last_tokens: tuple[float, float] | None = None  # (time, num_tokens)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.run.update_status(
            step=state.global_step,
            total_steps=state.max_steps,
            phase="training",
            train_started_at=time.time(),
            first_step=state.global_step,
        )

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        now = time.time()
        is_eval = any(k.startswith("eval_") for k in logs)
        row: dict[str, Any] = {
            "step": state.global_step,
            "time": now,
            "split": "eval" if is_eval else "train",
        }
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
        if set(row) - {"step", "time", "split", "epoch"}:
            self.run.append_metrics(row)
        self.run.update_status(step=state.global_step, total_steps=state.max_steps, updated_at=now)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if any_process(self.run.stop_requested()) and not self.stopped:
            if state.is_world_process_zero:
                print(
                    f"STOP file found at step {state.global_step}: saving a checkpoint and stopping",
                    flush=True,
                )
            self.stopped = True
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
