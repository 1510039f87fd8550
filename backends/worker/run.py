"""`python -m backends.worker RUN_DIR`: the one entry point of a run.

Reads config.yaml, marks the run `running`, trains, and writes the final state. This is the
one place that catches a broad exception: it records `failed` with a one-line reason and
re-raises, so the full traceback lands in stdout.log.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
from types import FrameType

from backends.core.config import ConfigError, config_from_yaml
from backends.core.rundir import RunDir, RunState


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.worker")
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    signal.signal(signal.SIGTERM, _on_sigterm)
    run.update_status(state=RunState.RUNNING, pid=os.getpid(), started_at=time.time(), phase="loading")
    try:
        cfg = config_from_yaml(run.config_path.read_text(encoding="utf-8"), str(run.config_path))
        from backends.core import registry
        from backends.worker.rewards import check_origin

        check_origin(cfg, run)
        from backends.worker.runtime import resolve_runtime
        from backends.worker.trainers import configure_trackers

        configure_trackers(list(cfg.train.report_to), run)
        runtime = resolve_runtime(cfg.train, cfg.model)
        for note in runtime.notes:
            print(f"runtime: {note}", flush=True)
        run.update_status(runtime=runtime.as_dict())
        outcome = registry.get(cfg.method).run(cfg, run, runtime)
        run.update_status(state=outcome)
        print(f"run {run.run_id}: {outcome.value}", flush=True)
        return 0
    except Terminated:
        run.try_finalize(RunState.STOPPED, error="terminated by SIGTERM before a final save")
        print(f"run {run.run_id}: terminated by SIGTERM", flush=True)
        return 143
    except BaseException as err:
        reason = failure_reason(err)
        run.try_finalize(RunState.FAILED, error=reason)
        print(f"run {run.run_id} failed: {reason}", file=sys.stderr, flush=True)
        raise
