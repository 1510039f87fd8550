"""What every bench records beside its numbers: the machine and how busy it was."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def load_avg() -> list[float]:
    """1, 5 and 15-minute load averages (other processes slow every wall-clock number)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, object]:
    cpu, flags = "?", ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = next(x.split(":", 1)[1].strip() for x in text.splitlines() if x.startswith("model name"))
        flags = next((x for x in text.splitlines() if x.startswith("flags")), "")
    except (OSError, StopIteration):
        pass
    mem = 0.0
    try:
        line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        mem = int(line.split()[1]) / 2**20
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "python": platform.python_version(),
    }
