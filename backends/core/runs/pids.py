"""Whether a worker's process still runs: the launcher's reconcile and a forked worker's
handle (backends/core/runs/forkserver.py) ask the same question. No torch.
"""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """True if `pid` runs a worker (not a zombie, not a recycled pid of another program)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # not Linux: trust kill(0)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and (
        "backends.worker" in cmdline
        or "backends.core.pipelines.pipeline" in cmdline
        or "vllm.entrypoints.openai" in cmdline  # a Chat server that became vLLM's (worker/serve.py)
    )
