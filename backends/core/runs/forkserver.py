"""Start workers from a warm fork server when one is up. No torch: the studio uses this.

Every worker pays ~6 s of imports (torch, transformers, trl, peft) before it does anything;
a pipeline pays them once per stage. The fork server (backends/worker/forkserver.py) is a
long-lived process that has made those imports once, never touches CUDA or runs a tensor
op, and forks one child per run. The child is the same worker `python -m backends.worker
RUN_DIR` would be (same entry point, own session, own stdout.log, the caller's environment
and working folder), so a run is stopped, reconciled and resumed exactly as a cold one, and
outlives the server and the studio.

`warm_server` runs one for the studio's life and a headless pipeline's (set
$ALIGNMENT_STUDIO_COLD to start every worker cold). `spawn` asks the server for a worker and returns None when there is no server, it does not
answer, or its code is older than the files on disk (it then exits): the launcher starts the
worker cold, as before. Where the server listens: $ALIGNMENT_STUDIO_FORKSERVER, else a socket
named after the runs folder in the temporary folder (a Unix socket path holds 107 bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backends.core.runs.pids import pid_alive
from backends.core.spec.places import REPO_ROOT

SOCKET_ENV = "ALIGNMENT_STUDIO_FORKSERVER"


def socket_path(runs_dir: str | os.PathLike[str]) -> Path:
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    key = hashlib.sha1(str(Path(runs_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"alignment-studio-{key}.sock"


def recv_line(conn: socket.socket) -> bytes:
    """One JSON line of the protocol (both sides read with this), or what came before EOF."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _ask(path: Path, request: dict, timeout: float) -> dict | None:
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = recv_line(s)
    except OSError:  # not listening (a server that died left its socket), or too slow
        return None
    try:
        return json.loads(data or b"null")
    except json.JSONDecodeError:
        return None


def spawn(
    runs_dir: str | os.PathLike[str], argv: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> ForkedProcess | None:
    """A worker forked by the server for `argv` (`python -m backends.worker RUN_DIR`), or None
    (start it cold). The log line says which way it started."""
    if argv[1:3] != ["-m", "backends.worker"]:
        return None
    request = {"run_dir": argv[3], "cwd": str(cwd), "env": env, "log": str(log_path), "python": argv[0]}
    reply = _ask(socket_path(runs_dir), request, timeout=10.0)
    if not reply or "pid" not in reply:
        why = (reply or {}).get("refused") or (reply or {}).get("stale")
        if why:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"worker: started cold, the fork server refused: {why}\n")
        return None
    return ForkedProcess(int(reply["pid"]), Path(argv[3]))


def is_up(runs_dir: str | os.PathLike[str]) -> bool:
    reply = _ask(socket_path(runs_dir), {"ping": True}, timeout=2.0)
    return bool(reply and reply.get("ok"))


class ForkedProcess:
    """What the launcher keeps of a worker it started, for a forked one (the server is its
    parent, so its exit code comes from the file the server writes when it ends)."""

    def __init__(self, pid: int, run_dir: Path) -> None:
        self.pid = pid
        self.run_dir = run_dir
        self.returncode: int | None = None
        self.exit_known = True  # False when it ended without the server seeing it (the server died)

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if pid_alive(self.pid):
            return None
        from backends.core.runs.rundir import RunDir

        code = RunDir(self.run_dir).exit_code_path
        for _ in range(20):  # the server writes it a moment after the child ends
            if code.exists():
                break
            time.sleep(0.05)
        try:
            self.returncode = int(code.read_text().strip())
        except (OSError, ValueError):
            self.returncode, self.exit_known = 1, False
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            time.sleep(0.1)
        return self.returncode  # type: ignore[return-value]

    def terminate(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it has ended on its own meanwhile

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it has ended on its own meanwhile


def start_server(
    runs_dir: str | os.PathLike[str], python: str, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a fork server for `runs_dir` in the background (it imports for ~6 s; until it
    listens, runs start cold). Stop it with `stop_server`."""
    path = socket_path(runs_dir)
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [python, "-m", "backends.worker.forkserver", str(path)],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_until_up(runs_dir: str | os.PathLike[str], timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if is_up(runs_dir):
            return True
        time.sleep(0.2)
    return False


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server (its workers go on: each is in its own session)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def warm_server(runs_dir: str | os.PathLike[str], python: str) -> Iterator[None]:
    """A fork server for `runs_dir` while the block runs (the studio's life, a headless
    pipeline's), started unless one is already up; its log sits beside its socket."""
    if os.environ.get("ALIGNMENT_STUDIO_COLD") or is_up(runs_dir):
        yield
        return
    proc = start_server(runs_dir, python, socket_path(runs_dir).with_suffix(".log"))
    try:
        yield
    finally:
        stop_server(proc)
