"""Start, stop, queue and reconcile worker processes. No torch: the studio uses this.

Workers are detached (`start_new_session=True`) so closing the browser or restarting the
studio does not stop them. All state lives in the run directories; a new Launcher on the
same runs dir picks up every run: it reattaches to live workers and marks runs whose
process is gone as `failed`. Runs queue: one at a time on the CPU by default, one per GPU
(CUDA_VISIBLE_DEVICES) when there are GPUs.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from backends.core.runs import forkserver
from backends.core.runs.forkserver import ForkedProcess
from backends.core.runs.gpus import SmiError, query
from backends.core.runs.pids import pid_alive
from backends.core.runs.rundir import RunDir, RunState, list_runs
from backends.core.spec.config import RunConfig, config_from_yaml, config_to_yaml
from backends.core.spec.places import REPO_ROOT


def detect_gpus() -> list[str]:
    """GPU indices from CUDA_VISIBLE_DEVICES or nvidia-smi, without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        rows = query("index")
    except SmiError as e:
        print(f"{e}; scheduling on the CPU", file=sys.stderr)
        return []
    return [r[0] for r in rows or [] if r and r[0]]


def on_cluster(status: dict[str, Any]) -> bool:
    """A run submitted to a cluster (executors.py): this launcher neither starts nor reaps it."""
    return status.get("executor", "local") != "local"


def start_detached(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None, runs_dir: Path | None = None
) -> subprocess.Popen[bytes] | ForkedProcess:
    """Start `cmd` in the repository root in its own session (closing the studio or the
    terminal does not stop it), stdout and stderr appended to `log_path`. Every worker and
    pipeline process is started here. A worker is forked from the warm fork server of
    `runs_dir` when one is up (backends/core/runs/forkserver.py), else started cold."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    if runs_dir is not None:
        forked = forkserver.spawn(runs_dir, cmd, REPO_ROOT, full_env, log_path)
        if forked is not None:
            return forked
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def pipeline_command(python: str, pdir: RunDir) -> list[str]:
    return [python, "-m", "backends.core.pipelines.pipeline", str(pdir.path)]


def new_run_id(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40] or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(2)}"


class Launcher:
    def __init__(
        self,
        runs_dir: str | os.PathLike[str],
        python: str = sys.executable,
        max_cpu_runs: int = 1,
        gpus: list[str] | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.python = python
        self.gpus = detect_gpus() if gpus is None else gpus
        self.max_cpu_runs = max_cpu_runs
        self._procs: dict[str, subprocess.Popen[bytes] | ForkedProcess] = {}
        self._exit_codes: dict[str, int] = {}  # workers this launcher started that have ended
        self._lock = threading.Lock()

    # --- creating and starting ---------------------------------------------------------
    def create_run(self, cfg: RunConfig, **status: Any) -> RunDir:
        """A new pending run of `cfg`; `status` fields go into its first status.json (before
        any scheduler can see the run)."""
        run = RunDir(self.runs_dir / new_run_id(cfg.name or cfg.method))
        run.path.mkdir(parents=True)
        run.config_path.write_text(config_to_yaml(cfg), encoding="utf-8")
        run.init_status(**status)
        return run

    def worker_command(self, run: RunDir) -> list[str]:
        """The one command that starts any run (an executor that runs elsewhere starts this).
        A multi-process run is started by the same command: the worker then supervises
        `accelerate launch` itself (backends/worker/multiproc.py)."""
        return [self.python, "-m", "backends.worker", str(run.path)]

    def command_line(self, run: RunDir) -> str:
        """The exact command, to show in the UI and repeat by hand."""
        return f"cd {shlex.quote(str(REPO_ROOT))} && " + shlex.join(self.worker_command(run))

    def start(self, run: RunDir, device: str = "cpu") -> subprocess.Popen[bytes] | ForkedProcess:
        visible = "" if device == "cpu" else device
        proc = start_detached(
            self.worker_command(run), run.log_path, {"CUDA_VISIBLE_DEVICES": visible}, self.runs_dir
        )
        # Recorded now so the slot counts as taken before the worker writes its own status.
        run.update_status(pid=proc.pid, device=device, command=self.command_line(run))
        self._procs[run.run_id] = proc
        return proc

    # --- the queue ---------------------------------------------------------------------
    def slots(self) -> list[str]:
        return list(self.gpus) if self.gpus else ["cpu"] * self.max_cpu_runs

    def schedule(self) -> list[RunDir]:
        """Start pending runs, oldest first, on free slots; return those started."""
        with self._lock:
            self._reap()
            runs = list_runs(self.runs_dir)
            busy: list[str] = []
            pending: list[RunDir] = []
            for run in runs:
                st = run.read_status()
                if st.get("kind") == "pipeline" or on_cluster(st):
                    continue  # a pipeline only waits on its stages; a cluster's run holds no slot here
                if st["state"] == "running" or (st["state"] == "pending" and st.get("claimed")):
                    busy += str(st.get("device", "cpu")).split(",")  # a multi-GPU run holds several
                elif st["state"] == "pending":
                    pending.append(run)
            free = list(self.slots())
            for device in busy:
                if device in free:
                    free.remove(device)
            started = []
            for run in sorted(pending, key=lambda r: r.read_status().get("created_at", 0)):
                need = self.devices_needed(run)
                if len(free) < need:
                    break  # first come, first served: a later run does not overtake it
                device = ",".join(free[:need])
                if run.claim(device):  # another scheduler may have taken it meanwhile
                    del free[:need]
                    self.start(run, device)
                    started.append(run)
            return started

    def devices_needed(self, run: RunDir) -> int:
        """GPUs a run takes: `launch.processes: N` takes N of them (one per process); a CPU
        run takes the CPU slot whatever its process count (its processes share the cores)."""
        if not self.gpus:
            return 1
        try:
            cfg = config_from_yaml(run.config_path.read_text(encoding="utf-8"), "")
        except (OSError, ValueError):
            return 1  # the worker reports a broken config itself
        return self.devices_for(cfg)

    def devices_for(self, cfg: RunConfig) -> int:
        """`devices_needed` of a config not written yet (headless claims before it creates)."""
        processes = cfg.launch.processes
        if not self.gpus or processes == "auto" or cfg.train.device == "cpu":
            return 1
        return max(1, min(int(processes), len(self.gpus)))

    def _reap(self) -> None:
        for run_id, proc in list(self._procs.items()):
            code = proc.poll()
            if code is not None:
                if getattr(proc, "exit_known", True):
                    self._exit_codes[run_id] = code
                del self._procs[run_id]

    def _gone_reason(self, run: RunDir, pid: int | None) -> str:
        """Why a worker ended without a final state: its signal or exit code when this
        launcher started it, else what may have happened."""
        proc = self._procs.get(run.run_id)
        if proc is not None:
            # Seen dead (a zombie) a moment before this launcher collected it: collect it now.
            try:
                code = proc.wait(timeout=5)
                if getattr(proc, "exit_known", True):
                    self._exit_codes[run.run_id] = code
            except subprocess.TimeoutExpired:
                return f"worker process {pid} stopped answering but has not exited; see stdout.log"
            del self._procs[run.run_id]
        code = self._exit_codes.get(run.run_id)
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = " (by hand, or the kernel's out-of-memory killer)" if name == "SIGKILL" else ""
            return f"worker process {pid} was killed by {name}{why} before a final state; see stdout.log"
        if code is not None:
            return f"worker process {pid} exited with code {code} without a final state; see stdout.log"
        return (
            f"worker process {pid} is gone without a final state "
            "(killed, out of memory, or the machine restarted); see stdout.log"
        )

    def reconcile(self) -> list[RunDir]:
        """Mark runs whose worker is gone as failed; return them."""
        self._reap()
        failed = []
        for run in list_runs(self.runs_dir):
            st = run.read_status()
            if on_cluster(st):
                continue  # its pid is on another machine: its job's state comes from the cluster
            started = st["state"] == "running" or (st["state"] == "pending" and st.get("pid"))
            if st["state"] == "pending" and st.get("claimed") and not st.get("pid"):
                continue  # claimed a moment ago; its process is being started
            if not started or pid_alive(st.get("pid")):
                continue
            if (
                st["state"] == "pending"
                and time.time() - st.get("created_at", 0) < 30
                and run.run_id in self._procs
            ):
                continue  # just started, the worker has not written its status yet
            if run.try_finalize(RunState.FAILED, error=self._gone_reason(run, st.get("pid"))):
                failed.append(run)
        return failed

    # --- stopping ----------------------------------------------------------------------
    def stop(self, run: RunDir) -> str:
        """Stop a run: a queued one is cancelled, a running one saves and stops at its next step."""
        st = run.read_status()
        state = RunState(st["state"])
        if state.is_finalized:
            return f"run {run.run_id} is already {state.value}"
        if state == RunState.PENDING and not st.get("pid"):
            run.try_finalize(RunState.STOPPED, error="cancelled before it started")
            return f"run {run.run_id} cancelled"
        run.request_stop()
        return f"run {run.run_id}: stop requested; it saves a checkpoint at its next step"
