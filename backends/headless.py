"""Run one preset without the UI: validate, create the run directory, run the worker as a
child process, show a progress bar, and exit 0 only if the run succeeded.

Ctrl-C writes the STOP file (the worker saves a checkpoint and stops); a second Ctrl-C
terminates the worker.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from backends.config import ConfigError, RunConfig, config_from_yaml
from backends.launcher import Launcher, RunDir
from backends.rundir import RunState


def prepare_resume(old_dir: str, overrides_cfg: RunConfig | None = None) -> tuple[RunConfig, RunDir]:
    """Config for a new run continuing `old_dir` from its last checkpoint."""
    old = RunDir(old_dir)
    if not old.exists():
        raise ConfigError([f"`--resume {old_dir}`: not a run directory (no status.json)"])
    ckpt = old.last_checkpoint()
    if ckpt is None:
        raise ConfigError([f"`--resume {old_dir}`: no checkpoint in {old.checkpoints_dir}; "
                           "the run saved none (lower `train.save_steps`)"])  # fmt: skip
    cfg = overrides_cfg or config_from_yaml(old.config_path.read_text(), str(old.config_path))
    return cfg.model_copy(update={"resume_from": str(ckpt)}), old


def copy_metrics_until(src: RunDir, dst: RunDir, last_step: int) -> None:
    """Carry the old curve over so the resumed run's chart is continuous."""
    tail = src.tail_metrics()
    tail.poll()
    for row in tail.rows:
        if isinstance(row.get("step"), int) and row["step"] <= last_step:
            dst.append_metrics(row)


def _print_result(run: RunDir) -> int:
    st = run.read_status()
    state = st["state"]
    where = f"run directory: {run.path}"
    if state == RunState.SUCCEEDED.value:
        print(f"succeeded in {st.get('ended_at', 0) - st.get('started_at', 0):.0f} s; model: {run.model_dir}\n{where}")
        return 0
    reason = st.get("error") or "no reason recorded; see stdout.log"
    print(f"run {state}: {reason}\n{where}\nlog tail:\n{run.log_tail(1500)}", file=sys.stderr)
    return 1


def run_headless(cfg: RunConfig, runs_dir: str, resume_of: RunDir | None = None) -> int:
    launcher = Launcher(runs_dir)
    run = launcher.create_run(cfg)
    if resume_of is not None and cfg.resume_from:
        copy_metrics_until(resume_of, run, int(Path(cfg.resume_from).name.split("-")[-1]))
    print(f"run {run.run_id}\n  {launcher.command_line(run)}")
    proc = launcher.start(run, launcher.slots()[0])
    interrupts = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            run.request_stop()
            tqdm.write("stopping: the worker saves a checkpoint at its next step (Ctrl-C again to kill)")
        else:
            proc.terminate()

    previous = signal.signal(signal.SIGINT, on_sigint)
    tail = run.tail_metrics()
    tty = sys.stdout.isatty()
    # In a log file (not a terminal) a line every 10 s is enough.
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stdout, mininterval=0.1 if tty else 10.0)
    last_loss: float | None = None
    try:
        while True:
            finished = proc.poll() is not None
            tail.poll()
            for row in reversed(tail.rows):
                if row.get("split") == "train" and isinstance(row.get("loss"), float):
                    last_loss = row["loss"]
                    break
            st = run.read_status()
            total = st.get("total_steps")
            if total and bar.total != total:
                bar.total = total
            step = st.get("step") or 0
            if step > bar.n:
                bar.update(step - bar.n)
            else:
                bar.refresh() if tty else None
            phase = st.get("phase") if st["state"] == "running" else st["state"]
            loss = f" loss={last_loss:.4f}" if last_loss is not None else ""
            bar.set_postfix_str(f"{phase}{loss}", refresh=False)
            if finished:
                break
            time.sleep(0.5)
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    launcher.reconcile()
    return _print_result(run)

