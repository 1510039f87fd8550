"""The machine's NVIDIA GPUs, read from `nvidia-smi` (no torch: the studio process uses it).

One caller of nvidia-smi for the launcher (which GPUs to schedule on) and the memory check
(how much each has free), so both read the same tool the same way.
"""

from __future__ import annotations

import shutil
import subprocess


class SmiError(RuntimeError):
    """nvidia-smi is there but failed; the message says how."""


def query(fields: str) -> list[list[str]] | None:
    """One row per GPU of `nvidia-smi --query-gpu=<fields>` (comma-separated, no header, no
    units); None when nvidia-smi is not installed. Raises SmiError when it fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SmiError(f"nvidia-smi failed ({e})") from e
    return [[f.strip() for f in line.split(",")] for line in out.splitlines() if line.strip()]
