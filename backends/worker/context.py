"""What the worker hands a method: one run context, with the run's progress.

A method's `train(ctx)` gets everything it may use in one object: the resolved config, the
run directory, the runtime (device, precision, attention), the process plan the worker made
(passed along, never re-read from the environment), and `ctx.progress`, the one writer of a
run's phase, step count, metric rows and the one reader of its STOP file. Every loop of the
worker, a TRL trainer's callback as much as PPO's or the eval stage's hand-written loop, goes
through it, so the Monitor, the headless progress bar and the pipeline see every method alike.

The phases a run passes through (status.json's `phase`; docs/DESIGN.md lists them):
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from backends.core.runs.processes import ProcessPlan
from backends.core.runs.rundir import RunDir

if TYPE_CHECKING:
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime

Phase = Literal[
    "loading",  # the worker reads the config, loads data and models (set before train)
    "training",  # optimizer steps (SFT, reward, the DPO family, GRPO, RLOO, PPO)
    "generating",  # the eval stage answers prompts with each model and judges them
    "sampling",  # the sample stage draws N answers per prompt and scores them
    "gradients",  # the select stage sketches each row's adapter gradient
    "scoring",  # the uncertainty stage scores a labeling queue with a reward model
    "writing prompts",  # sda: the writer model writes new prompts
    "deduplicating",  # sda: near-duplicates of the seeds are dropped
    "sampling answers",  # sda: answers to the kept prompts are drawn and judged
    "evaluating",  # after training: the reward model scores held-out pairs
    "saving",  # the final model or adapter is written to model/
]
PHASES: tuple[str, ...] = get_args(Phase)
__doc__ += "".join(f"\n    {p}" for p in PHASES)


def any_process(flag: bool) -> bool:
    """True if `flag` is true in any process of a multi-process run (one all-reduce); the flag
    itself in a single process, without importing torch."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is None or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    import torch

    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


@dataclass
class Progress:
    """The run's progress as status.json and metrics.jsonl show it. In a multi-process run
    only the main process writes, and `should_stop` is true in every process at once."""

    run: RunDir
    main_process: bool = True
    stopped: bool = field(default=False, init=False)

    def begin(self, phase: Phase, total: int | None = None, *, first: int = 0) -> None:
        """A counted phase: `total` steps from `first` (a resumed run starts past 0)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; the phases are: {', '.join(PHASES)}")
        if not self.main_process:
            return
        fields: dict[str, Any] = {"phase": phase}
        if total is not None:
            now = time.time()
            fields.update(total_steps=total, step=first, train_started_at=now, first_step=first)
        self.run.update_status(**fields)

    def phase(self, phase: Phase, step: int | None = None) -> None:
        """Move to another phase without restarting the count (saving, evaluating, ...)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; the phases are: {', '.join(PHASES)}")
        if self.main_process:
            self.run.update_status(phase=phase, **({} if step is None else {"step": step}))

    def step(
        self, n: int, metrics: dict[str, Any] | None = None, *, split: str = "train", **status: Any
    ) -> None:
        """Step `n` is done: one metrics row (when given) and the step count, plus any other
        status fields (`total_steps` when it changed, the generation engine, ...)."""
        if not self.main_process:
            return
        now = time.time()
        if metrics:
            self.run.append_metrics({"step": n, "time": now, "split": split, **metrics})
        self.run.update_status(step=n, updated_at=now, **status)

    def should_stop(self) -> bool:
        """A person asked the run to stop (its STOP file). Collective in a multi-process run:
        every rank must stop at the same step, or the others wait in their next all-reduce."""
        if any_process(self.run.stop_requested()):
            self.stopped = True
        return self.stopped


@dataclass(frozen=True)
class RunContext:
    """Everything `train(ctx)` works with."""

    cfg: RunConfig
    run: RunDir
    runtime: Runtime
    plan: ProcessPlan
    progress: Progress

    @property
    def main_process(self) -> bool:
        return self.progress.main_process
