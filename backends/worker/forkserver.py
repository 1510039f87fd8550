"""`python -m backends.worker.forkserver SOCKET`: the warm fork server (backends/core/runs/forkserver.py
says why and how the launcher uses it).

It imports what every worker imports (torch, transformers, trl, peft, datasets, accelerate
and the method modules) once, then answers one JSON line per connection:
`{"run_dir", "cwd", "env", "log"}` -> fork a worker, reply `{"pid": N}`; `{"ping": true}` ->
`{"ok": true}`. The child starts a session of its own, takes the caller's environment and
working folder, sends its output to the run's stdout.log and runs the worker's `main`, as
`python -m backends.worker RUN_DIR` would.

Forking is safe here because the server is one thread that never runs a tensor op or touches
CUDA: no OpenMP pool, no CUDA context and no lock held by another thread is copied into a
child (tests/backends/test_forkserver.py checks a forked run's losses equal a cold run's).
Before each fork it checks that no source file under backends/ changed since it started: code
edited on disk must not run as the old code it imported, so a stale server answers
`{"stale": ...}` and exits, and the launcher starts that worker cold.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

from backends.core.runs.forkserver import recv_line
from backends.core.runs.rundir import RunDir

SOURCES = Path(__file__).resolve().parents[1]  # backends/
# Read by the libraries when the server imported them: a caller whose value differs gets a
# cold worker, which reads its own
IMPORT_TIME_ENV = ("HF_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "KMP_", "ACCELERATE_")


# Read when the server imported, but nothing a worker does depends on them, so a caller's own
# value needs no cold start (the studio's and the suite's workers were all refused for them):
# gradio's Blocks sets HF_HUB_DISABLE_TELEMETRY in the studio's process when its analytics are
# off, after the studio's server started (the forked worker applies it itself, become_worker);
# scikit-learn's and joblib's imports (through lm-eval) set KMP_DUPLICATE_LIB_OK and
# KMP_INIT_AT_FORK, which Intel's OpenMP reads only when it loads (torch here uses GNU's), and
# the server loaded its OpenMP before any request.
HARMLESS_ENV = frozenset({"HF_HUB_DISABLE_TELEMETRY", "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"})


# the environment as the server was started, before its imports set some of their own (torch
# sets $TORCHINDUCTOR_CACHE_DIR): what a caller's is compared with
STARTED_ENV = dict(os.environ)


def env_differs(env: dict[str, str]) -> str | None:
    """The first import-time variable whose value in `env` is not the server's. A variable the
    server's own imports set is the server's when `env` has the value they set: a caller that
    imported trl itself (a test, a notebook) carries torch's $TORCHINDUCTOR_CACHE_DIR, and every
    worker it started used to be refused and start cold (~4.5 s each in the test suite)."""
    keys = {k for k in (*STARTED_ENV, *env) if k.startswith(IMPORT_TIME_ENV) and k not in HARMLESS_ENV}
    for k in sorted(keys):
        if STARTED_ENV.get(k) == env.get(k):
            continue
        if k not in STARTED_ENV and os.environ.get(k) == env.get(k):
            continue  # set by the server's imports, to the same value
        return k
    return None


def preload() -> None:
    """The imports a worker makes before its first step (the ~6 s a cold start pays)."""
    import accelerate  # noqa: F401
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer  # noqa: F401
    from trl import (  # noqa: F401
        DPOConfig,
        DPOTrainer,
        GRPOConfig,
        GRPOTrainer,
        RewardConfig,
        RewardTrainer,
        SFTConfig,
        SFTTrainer,
    )

    import backends.worker.run  # noqa: F401
    import backends.worker.runtime  # noqa: F401
    import backends.worker.trainers  # noqa: F401
    from backends.core.spec import registry

    registry.specs()  # the method modules


def fingerprint() -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(SOURCES.rglob("*.py"))}


class Server:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.children: dict[int, Path] = {}  # pid -> its run directory
        self.code = fingerprint()

    def reap(self, signum: int = 0, frame: object = None) -> None:
        """SIGCHLD: collect ended children and write each one's exit code into its run."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            run_dir = self.children.pop(pid, None)
            if run_dir is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                try:
                    RunDir(run_dir).exit_code_path.write_text(f"{code}\n")
                except OSError as e:  # the run directory was removed meanwhile
                    print(f"forkserver: cannot record worker {pid}'s exit code {code}: {e}", flush=True)

    def serve(self) -> None:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)  # the user's own: a request runs code as this user
        listener.listen(16)
        signal.signal(signal.SIGCHLD, self.reap)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print(f"forkserver: listening on {self.path} (pid {os.getpid()})", flush=True)
        try:
            while True:
                conn, _ = listener.accept()
                with conn:
                    if not self.answer(conn, listener):
                        return
        finally:
            listener.close()
            self.path.unlink(missing_ok=True)

    def answer(self, conn: socket.socket, listener: socket.socket) -> bool:
        """Answer one request; False when the server must exit (its code is stale)."""
        conn.settimeout(10)
        data = recv_line(conn)
        try:
            req = json.loads(data)
        except json.JSONDecodeError:
            conn.sendall(b'{"error": "not a JSON request"}\n')
            return True
        if req.get("ping"):
            conn.sendall(b'{"ok": true}\n')
            return True
        if Path(req.get("cwd", "")).resolve() != SOURCES.parent or req.get("python") != sys.executable:
            # another checkout or another Python: its code is not what this server imported
            print(f"forkserver: refused {req.get('run_dir')}: another code folder or Python", flush=True)
            conn.sendall(b'{"refused": "another code folder or Python"}\n')
            return True
        key = env_differs(req.get("env") or {})
        if key:
            why = f"${key} differs from the server's"
            print(f"forkserver: refused {req.get('run_dir')}: {why} (it starts cold)", flush=True)
            conn.sendall(json.dumps({"refused": why}).encode() + b"\n")
            return True
        changed = [p for p, t in fingerprint().items() if self.code.get(p) != t]
        changed += [p for p in self.code if not Path(p).exists()]
        if changed:
            conn.sendall(
                json.dumps({"stale": f"{changed[0]} changed since the server started"}).encode() + b"\n"
            )
            print(f"forkserver: {changed[0]} changed since start: exiting (workers start cold)", flush=True)
            return False
        # SIGCHLD waits until the child is recorded: one that ends at once still gets its exit code
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid == 0:  # the child: becomes the worker and never returns here
            listener.close()
            self.become_worker(conn, req)
        self.children[pid] = Path(req["run_dir"])
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        return True

    @staticmethod
    def become_worker(conn: socket.socket, req: dict) -> None:
        code = 1
        try:
            conn.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the worker waits on its own children
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            os.setsid()
            log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            os.close(null)
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            from huggingface_hub import constants

            # read once when the server imported huggingface_hub (HARMLESS_ENV)
            if os.environ.get("HF_HUB_DISABLE_TELEMETRY", "").upper() in {"1", "ON", "YES", "TRUE"}:
                constants.HF_HUB_DISABLE_TELEMETRY = True
            sys.stdout.reconfigure(line_buffering=True, write_through=True)  # as PYTHONUNBUFFERED
            sys.stderr.reconfigure(line_buffering=True, write_through=True)
            sys.argv = ["backends.worker", req["run_dir"]]
            from backends.core.spec import registry

            registry.reset()  # the caller's $ALIGNMENT_STUDIO_METHODS, not the server's
            from backends.worker.run import main

            print(f"worker: forked from the warm fork server (pid {os.getppid()})", flush=True)
            code = main([req["run_dir"]])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # main() recorded the failure; its traceback goes to stdout.log
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def main() -> int:
    path = Path(sys.argv[1])
    preload()
    Server(path).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
