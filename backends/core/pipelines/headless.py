"""Run one preset without the UI: validate, create the run directory, run the worker as a
child process, show a progress bar, and exit 0 only if the run succeeded.

Ctrl-C writes the STOP file (the worker saves a checkpoint and stops); a second Ctrl-C
terminates the worker.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from backends.core.data.dataplan import DataFormatError
from backends.core.data.preflight import preflight
from backends.core.runs.executor_kinds import make_executor
from backends.core.runs.executors import Executor, ExecutorConfig, ExecutorError
from backends.core.runs.launcher import Launcher, RunDir
from backends.core.runs.resume import create_resumed, resume_config
from backends.core.runs.rundir import RunState
from backends.core.spec.config import ConfigError, RunConfig


def prepare_resume(old_dir: str, overrides_cfg: RunConfig | None = None) -> tuple[RunConfig, RunDir]:
    """Config for a new run continuing `old_dir` from its last checkpoint."""
    old = RunDir(old_dir)
    return resume_config(old, overrides_cfg, f"`--resume {old_dir}`"), old


def reports_line(run: RunDir) -> str:
    if not run.report_md_path.exists():
        return ""
    return f"report: {run.report_md_path}\n        {run.report_html_path} (charts; opens offline)\n"


def evaluation_line(run: RunDir, label: str = "") -> str:
    """A reward model's held-out pair accuracy, when the run measured one."""
    if not run.evaluation_path.exists():
        return ""
    import json

    ev = json.loads(run.evaluation_path.read_text())
    lo, hi = ev["ci95"]
    return f"{label}held-out pair accuracy {ev['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] on {ev['n']} pairs\n"


def early_stop_line(st: dict) -> str:
    """What the early-stopping rule did, when it stopped the run."""
    es = st.get("early_stop")
    if not es:
        return ""
    total = st.get("total_steps")
    kept = f"; the model is the best checkpoint (step {es['best_step']})" if es.get("best_step") else ""
    return f"stopped early at step {es['step']}{f' of {total}' if total else ''}: {es['reason']}{kept}\n"


def _print_result(run: RunDir) -> int:
    st = run.read_status()
    state = st["state"]
    where = f"run directory: {run.path}"
    if run.winrate_path.exists():
        import json

        from backends.core.reports.verdicts import tally_table

        print(tally_table(json.loads(run.winrate_path.read_text())))
    print(reports_line(run) + evaluation_line(run) + early_stop_line(st), end="")
    if state == RunState.SUCCEEDED.value:
        made = f"model: {run.model_dir}" if run.model_dir.exists() else f"outputs: {run.path}"
        print(f"succeeded in {st.get('ended_at', 0) - st.get('started_at', 0):.0f} s; {made}\n{where}")
        return 0
    reason = st.get("error") or "no reason recorded; see stdout.log"
    print(f"run {state}: {reason}\n{where}\nlog tail:\n{run.log_tail(1500)}", file=sys.stderr)
    return 1


def run_headless(
    cfg: RunConfig, runs_dir: str, resume_of: RunDir | None = None, executor: ExecutorConfig | None = None
) -> int:
    from backends.core.pipelines.policy import check_config

    problems: list[str] = []
    try:
        cfg = check_config(cfg, None)  # a local path that does not exist is refused here, not in the worker
    except ConfigError as e:
        problems += e.problems
    try:
        if not problems:  # a refused path is never opened, not even to peek at its rows
            preflight(cfg)
    except DataFormatError as e:
        problems.append(str(e))
    if problems:
        print(
            f"error: {ConfigError(problems)}" if len(problems) > 1 else f"error: {problems[0]}",
            file=sys.stderr,
        )
        return 2
    launcher = Launcher(runs_dir)
    runner = make_executor(executor, launcher)
    if runner.config.kind != "local":
        # not claimed: the cluster's executor schedules it (a resumed run once its curve is in)
        if resume_of is not None and cfg.resume_from:
            return _run_elsewhere(runner, create_resumed(launcher, cfg, resume_of))
        return _run_elsewhere(runner, launcher.create_run(cfg))
    # one GPU per process (`launch.processes: N`); the worker refuses more processes than GPUs
    device = ",".join(launcher.slots()[: launcher.devices_for(cfg)])
    # Created claimed: a studio scheduling the same runs folder never starts it as well.
    if resume_of is not None and cfg.resume_from:
        run = create_resumed(launcher, cfg, resume_of, device)
    else:
        run = launcher.create_run(cfg, claimed=True, device=device)
    print(f"run {run.run_id}\n  {launcher.command_line(run)}")
    proc = launcher.start(run, device)
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
    try:
        follow(run, lambda: proc.poll() is not None)
    finally:
        signal.signal(signal.SIGINT, previous)
    launcher.reconcile()
    return _print_result(run)


def _run_elsewhere(runner: Executor, run: RunDir) -> int:
    """Hand the run to a cluster's executor and follow it through its run directory (which the
    cluster shares). Ctrl-C writes STOP (the executor stops the job after its grace period); a
    second Ctrl-C stops the job at once."""
    interrupts = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            tqdm.write(runner.stop(run) + " (Ctrl-C again to stop its job now)")
        else:
            tqdm.write(runner.kill(run))

    def finished() -> bool:
        try:
            runner.reconcile()
            runner.schedule()  # queued behind earlier runs of this runs folder, it goes when they have
        except ExecutorError as e:  # out of reach for a moment: the job goes on
            tqdm.write(f"{runner.where()}: {e}")
        return run.state().is_finalized

    print(f"run {run.run_id} on {runner.where()}")
    try:
        runner.schedule()
    except ExecutorError as e:
        run.try_finalize(RunState.FAILED, error=f"not started: {e}")
        return _print_result(run)
    if run.read_status().get("ray_job_id"):
        print(f"  {run.read_status().get('command')}")
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        follow(run, finished)
    finally:
        signal.signal(signal.SIGINT, previous)
    return _print_result(run)


def _headline(row: dict) -> str:
    for key in ("loss", "reward"):
        if isinstance(row.get(key), float):
            return f" {key}={row[key]:.4f}"
    return ""


def follow(run: RunDir, finished: Callable[[], bool], label: str = "") -> None:
    """A progress bar (step / total, phase, latest loss or reward, ETA) until `finished()`."""
    tail = run.tail_metrics()
    tty = sys.stdout.isatty()
    # In a log file (not a terminal) a line every 10 s is enough.
    bar = tqdm(
        total=None,
        unit="step",
        desc=label or None,
        dynamic_ncols=True,
        file=sys.stdout,
        mininterval=0.1 if tty else 10.0,
    )
    headline = ""
    try:
        while True:
            done = finished()
            tail.poll()
            train = [r for r in tail.rows if r.get("split") == "train"]
            if train:
                headline = _headline(train[-1]) or headline
            st = run.read_status()
            if st.get("total_steps") and bar.total != st["total_steps"]:
                bar.total = st["total_steps"]
            step = st.get("step") or 0
            if step > bar.n:
                bar.update(step - bar.n)
            elif tty:
                bar.refresh()
            phase = st.get("phase") if st["state"] == "running" else st["state"]
            bar.set_postfix_str(f"{phase}{headline}", refresh=False)
            if done:
                break
            time.sleep(0.5)
    finally:
        bar.close()
