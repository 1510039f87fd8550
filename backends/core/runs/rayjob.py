"""What a Ray job runs first, on the node Ray chose (backends/core/runs/ray_executor.py).

    python -m backends.core.runs.rayjob RUN_DIR TOKEN          check, then become the run's worker
    python -m backends.core.runs.rayjob --check FILE TOKEN     only check (the studio's start-up check)

The studio writes TOKEN into the run directory (`.cluster-marker`) just before it submits the
job. A job that does not read the same token there is not looking at the studio's run
directory (the runs folder is not shared with this node, or is mounted elsewhere): it says so
and exits 3, and the studio marks the run failed with that message. Otherwise this process
sends its output to the run's stdout.log and replaces itself (exec) with the worker command
every run has, `python -m backends.worker RUN_DIR`, so Ray's stop signal reaches the worker
itself. Torch-free; imports nothing but the run-directory contract.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from backends.core.runs.rundir import RunDir

NOT_SHARED = 3  # the exit code of a job that cannot see the studio's files


def sees_token(path: Path, token: str) -> str | None:
    """None when `path` holds `token`; else what is wrong, in words."""
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return f"{path} does not exist on this node"
    except OSError as e:
        return f"{path} cannot be read on this node ({e})"
    if found != token:
        return f"{path} holds another token than the studio wrote (another folder at the same path?)"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.core.runs.rayjob")
    ap.add_argument("--check", action="store_true", help="only check that FILE holds TOKEN")
    ap.add_argument("path")
    ap.add_argument("token")
    args = ap.parse_args(argv)
    host = socket.gethostname()
    marker = Path(args.path) if args.check else RunDir(args.path).cluster_marker_path
    problem = sees_token(marker, args.token)
    if problem:
        print(
            f"the runs folder is not shared with Ray node {host}: {problem}. The runs folder must be "
            "on storage that the studio and every Ray node mount at the same path (NFS, a cluster "
            "filesystem); see docs/SCALING.md",
            file=sys.stderr,
            flush=True,
        )
        return NOT_SHARED
    if args.check:
        print(f"ok: Ray node {host} sees {marker.parent}", flush=True)
        return 0
    run = RunDir(args.path)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(run.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    cmd = [sys.executable, "-m", "backends.worker", str(run.path)]
    print(f"Ray node {host}: {' '.join(cmd)}", flush=True)
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.execv(sys.executable, cmd)
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
