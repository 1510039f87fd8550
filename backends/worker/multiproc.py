"""A run of several processes: the worker started by the launcher supervises `accelerate launch`.

`python -m backends.worker RUN_DIR` stays the one command that starts any run. When the
config asks for several processes (`launch.processes`), that process starts the ranks with
`accelerate launch ... -m backends.worker RUN_DIR` and waits; it never imports torch. It
forwards SIGTERM / SIGINT (torchrun passes them on to every rank), and writes the final state
when no rank did: `stopped` after a terminate, `failed` with the dead rank's exit code when a
rank died without a Python error (killed, out of memory). A rank that raises writes `failed`
with its own reason; rank 0 writes metrics, progress and the normal end (see run.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from types import FrameType

from backends.core.runs.processes import RANK_ENV, ProcessPlan, rank_command
from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec.config import RunConfig

_ROOT_CAUSE = re.compile(
    r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+).*?traceback\s*:\s*([^\n]*)", re.S
)


def rank_failure(log_tail: str, processes: int, returncode: int) -> str:
    """Why the ranks ended without a final state, from torchrun's root-cause summary if any."""
    found = _ROOT_CAUSE.findall(log_tail)
    if found:
        rank, code, trace = found[-1]
        why = trace.strip()
        hint = ""
        if int(code) == -9 or "SIGKILL" in why:
            hint = "; SIGKILL comes from outside the run, most often the kernel's out-of-memory killer"
        return f"process {rank} of {processes} died with exit code {code} ({why}){hint}; see stdout.log"
    return (
        f"the {processes} worker processes ended with exit code {returncode} without a final state; "
        "see stdout.log"
    )


def supervise(run: RunDir, cfg: RunConfig, plan: ProcessPlan) -> int:
    """Start the ranks, wait, and finalize the run if no rank did; return the exit code."""
    cmd = rank_command(str(run.path), plan, cfg.launch.accelerate_config)
    shown = shlex.join(cmd)
    print(f"launch: {plan.why}\nlaunch: {shown}", flush=True)
    run.update_status(launch={**plan.as_dict(), "command": shown})
    env = dict(os.environ, OMP_NUM_THREADS=str(plan.threads), **{RANK_ENV: json.dumps(plan.as_dict())})
    proc = subprocess.Popen(cmd, env=env)
    terminated = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal terminated
        terminated = True
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    returncode = proc.wait()
    state = run.state()
    if state.is_finalized:
        print(f"run {run.run_id}: {state.value} ({plan.processes} processes)", flush=True)
        return 0 if state == RunState.SUCCEEDED or (state == RunState.STOPPED and returncode == 0) else 1
    if terminated:
        run.try_finalize(RunState.STOPPED, error="terminated by SIGTERM before a final save")
        print(f"run {run.run_id}: terminated by SIGTERM", flush=True)
        return 143
    reason = rank_failure(run.log_tail(12000), plan.processes, returncode)
    run.try_finalize(RunState.FAILED, error=reason)
    print(f"run {run.run_id} failed: {reason}", flush=True)
    return returncode or 1
