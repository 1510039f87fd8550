"""Whether a worker's process still runs: the launcher's reconcile and a forked worker's
handle (backends/core/runs/forkserver.py) ask the same question. No torch.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_running(pid: int | None) -> bool:
    """True if a process `pid` runs (not a zombie), whatever its program."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc/self").exists():
        return True  # not Linux: trust kill(0)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def pid_alive(pid: int | None) -> bool:
    """True if `pid` runs a worker (not a zombie, not a recycled pid of another program)."""
    if not process_running(pid):
        return False
    if not Path("/proc/self").exists():
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return (
        "backends.worker" in cmdline
        or "backends.core.pipelines.pipeline" in cmdline
        or "vllm.entrypoints.openai" in cmdline  # a Chat server that became vLLM's (worker/serve.py)
    )
