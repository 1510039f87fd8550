"""`python -m backends.worker RUN_DIR`: the one entry point of a run.

Reads config.yaml, marks the run `running`, trains, and writes the final state. This is the
one place that catches a broad exception: it records `failed` with a one-line reason and
re-raises, so the full traceback lands in stdout.log. A multi-process run (`launch.processes`)
is supervised from here too (multiproc.py): this process starts the ranks, and each rank runs
`run_rank`; only rank 0 writes progress, metrics and the normal end.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import time
from types import FrameType

from backends.core.runs.processes import RANK_ENV, ProcessPlan, is_main_process, plan_for_config, world
from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec.config import ConfigError, RunConfig, config_from_yaml


class Terminated(BaseException):
    """SIGTERM arrived: the run is stopped without a final save."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def failure_reason(err: BaseException) -> str:
    """One line a person can act on."""
    if isinstance(err, ConfigError):
        return "invalid config: " + "; ".join(err.problems)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    name = type(err).__name__
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return (
            f"disk full ({name}: {text[:160]}): free space on the disk of the runs folder, or lower "
            "`train.save_total_limit`; the checkpoints saved before are kept (--resume continues from them)"
        )
    if name == "OutOfMemoryError" or "out of memory" in text.lower():
        return (
            f"out of memory ({text[:160]}): lower `train.per_device_train_batch_size` or "
            "`train.max_length`, turn on `train.activation_checkpointing`, or use LoRA"
        )
    return f"{name}: {text}"[:500] if text else name


# What a rank sees when another rank of its run died (gloo, NCCL, torch.distributed).
_PEER_LOST = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "nccl error",
    "socket timeout",
)


def lost_peer(reason: str) -> bool:
    return any(s in reason.lower() for s in _PEER_LOST)


def plan_for(cfg: RunConfig) -> ProcessPlan:
    """This run's processes: from the ranks' environment inside a rank, else planned here."""
    inherited = os.environ.get(RANK_ENV)
    if inherited:
        return ProcessPlan(**json.loads(inherited))
    # CUDA_VISIBLE_DEVICES from the launcher, else (a worker started by hand) the machine's
    # GPUs: planning as if on a CPU would start 2 ranks for SFT on a 1-GPU machine.
    from backends.core.runs.launcher import detect_gpus

    return plan_for_config(cfg, detect_gpus())


def halved_batch(cfg: RunConfig, err: BaseException) -> tuple[RunConfig, str] | None:
    """The config to retry an out-of-memory run with, once (`launch.retry_oom`): half the
    per-device batch, twice the accumulation, so each optimizer step sees the same rows."""
    t = cfg.train
    if not (
        cfg.launch.retry_oom and "out of memory" in failure_reason(err) and t.per_device_train_batch_size > 1
    ):
        return None
    batch, accumulation = t.per_device_train_batch_size // 2, t.gradient_accumulation_steps * 2
    note = (
        f"out of memory at batch {t.per_device_train_batch_size}: retrying once with batch {batch} "
        f"x {accumulation} accumulation steps (launch.retry_oom)"
    )
    smaller = cfg.model_copy(
        update={
            "train": t.model_copy(
                update={"per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation}
            ),
            "launch": cfg.launch.model_copy(update={"retry_oom": False}),  # once
        }
    )
    return smaller, note


def train_here(run: RunDir, cfg: RunConfig, plan: ProcessPlan) -> int:
    """Train in this process (the only one, or one rank of several)."""
    from backends.core.spec import registry
    from backends.worker.runtime import resolve_runtime
    from backends.worker.trainers import configure_trackers

    main_process = is_main_process()
    configure_trackers(list(cfg.train.report_to), run)
    runtime = resolve_runtime(cfg.train, cfg.model, registry.get(cfg.method).generates)
    if main_process:
        from backends.core.runs.memory import estimate_run

        for note in runtime.notes:
            print(f"runtime: {note}", flush=True)
        from backends.core.runs.launcher import detect_gpus

        # per GPU on a GPU (its free memory from nvidia-smi), per process on the CPU
        est = estimate_run(cfg, detect_gpus() if runtime.device == "cuda" else None, bf16=runtime.bf16)
        if est is not None:
            print(f"memory: estimated {est.summary()}", flush=True)
        run.update_status(runtime=runtime.as_dict())
    from backends.worker.context import Progress, RunContext

    ctx = RunContext(cfg, run, runtime, plan, Progress(run, main_process))
    outcome = registry.get(cfg.method).run(ctx)
    if main_process:
        run.update_status(state=outcome)
        print(f"run {run.run_id}: {outcome.value}", flush=True)
    return 0


def run_rank(run: RunDir) -> int:
    """One process of a multi-process run. A rank that raises fails the run with its reason;
    a terminated rank leaves the verdict to the supervising worker (multiproc.py), which knows
    whether a person stopped the run or another rank died."""
    rank, size = world()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cfg = config_from_yaml(run.config_path.read_text(encoding="utf-8"), str(run.config_path))
        return train_here(run, cfg, plan_for(cfg))
    except Terminated:
        return 143
    except BaseException as err:
        reason = failure_reason(err)
        if not lost_peer(reason):  # else another rank died first: the supervisor names it
            run.try_finalize(RunState.FAILED, error=f"process {rank} of {size}: {reason}")
        print(f"run {run.run_id} failed in process {rank}: {reason}", file=sys.stderr, flush=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.worker")
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    if os.environ.get(RANK_ENV):
        return run_rank(run)
    signal.signal(signal.SIGTERM, _on_sigterm)
    run.update_status(state=RunState.RUNNING, pid=os.getpid(), started_at=time.time(), phase="loading")
    try:
        cfg = config_from_yaml(run.config_path.read_text(encoding="utf-8"), str(run.config_path))
        from backends.worker.rewards import check_origin

        check_origin(cfg, run)  # the studio's policy again, before anything is loaded
        plan = plan_for(cfg)
        if plan.processes > 1:
            from backends.worker.multiproc import supervise

            return supervise(run, cfg, plan)
        try:
            return train_here(run, cfg, plan)
        except Exception as err:
            retry = halved_batch(cfg, err)
            if retry is None:
                raise
        # Out of the except block: its traceback (holding the first model) is released.
        import gc

        gc.collect()
        smaller, note = retry
        print(f"runtime: {note}", flush=True)
        run.update_status(retry=note, phase="loading")
        return train_here(run, smaller, plan_for(smaller))
    except Terminated:
        run.try_finalize(RunState.STOPPED, error="terminated by SIGTERM before a final save")
        print(f"run {run.run_id}: terminated by SIGTERM", flush=True)
        return 143
    except BaseException as err:
        reason = failure_reason(err)
        run.try_finalize(RunState.FAILED, error=reason)
        print(f"run {run.run_id} failed: {reason}", file=sys.stderr, flush=True)
        raise
