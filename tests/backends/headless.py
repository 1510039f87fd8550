"""`launch.py --headless` on a preset file, as the backend tests run it; a stand-in server process."""

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


def stand_in_server() -> subprocess.Popen[bytes]:
    """A process that passes for a generation server or a worker ("backends.worker" in its
    command line, as `pid_alive` asks), returned once its exec shows: between fork and exec
    /proc still gives the parent's command line, and such a process reads as gone."""
    import time

    cmd = [sys.executable, "-c", "import time; time.sleep(120)", "backends.worker.serve"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 10
    while b"backends.worker" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.time() < deadline, "the stand-in process did not start"
        time.sleep(0.01)
    return proc
