"""`launch.py --headless` on a preset file, as the backend tests run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_preset(preset: Path, runs: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run `preset` headless into `runs`; fails the test with the output's tail when it fails."""
    proc = subprocess.run(
        [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs), "--preset", str(preset)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
