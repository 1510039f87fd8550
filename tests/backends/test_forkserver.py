"""The warm fork server: a forked worker trains exactly as a cold one, is stopped and
reconciled as one, outlives the server, and a server whose code changed on disk refuses to
fork (its caller starts the worker cold)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from backends.core.runs import forkserver
from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import load_preset
from tests.conftest import ROOT


def losses(run: RunDir) -> list[float]:
    return [r["loss"] for r in map(json.loads, run.metrics_path.read_text().splitlines()) if "loss" in r]


def tiny_sft(launcher: Launcher, steps: int = 6) -> RunDir:
    # fp32 and one process pinned: the curve must not depend on the CPU's bf16 support
    sets = [f"train.max_steps={steps}", "train.bf16=false", "launch.processes=1", "train.logging_steps=1"]
    return launcher.create_run(load_preset(ROOT / "presets/tiny/sft.yaml", sets))


def wait(run: RunDir, timeout: float = 300) -> str:
    end = time.time() + timeout
    while not run.state().is_finalized and time.time() < end:
        time.sleep(0.2)
    return run.state().value


@pytest.fixture()
def private_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: str):
    """A server of this test's own (the suite's shared one is not stopped or made stale here)."""
    sock = Path(f"/tmp/as-test-{os.getpid()}-{time.monotonic_ns() % 10**6}.sock")
    monkeypatch.setenv(forkserver.SOCKET_ENV, str(sock))
    proc = forkserver.start_server(tmp_path, Launcher(tmp_path / "runs").python, tmp_path / "server.log")
    assert forkserver.wait_until_up(tmp_path), (tmp_path / "server.log").read_text()
    yield proc
    forkserver.stop_server(proc)


def test_a_forked_run_trains_as_a_cold_one(
    private_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = Launcher(tmp_path / "runs")
    forked = tiny_sft(launcher)
    proc = launcher.start(forked)
    assert isinstance(proc, forkserver.ForkedProcess)
    assert wait(forked) == "succeeded", forked.log_path.read_text()[-2000:]
    assert "forked from the warm fork server" in forked.log_path.read_text()
    assert proc.wait(timeout=30) == 0  # the exit code, from the server
    # the same run, started cold
    monkeypatch.setenv(forkserver.SOCKET_ENV, str(tmp_path / "no-server.sock"))
    cold = tiny_sft(launcher)
    assert not isinstance(launcher.start(cold), forkserver.ForkedProcess)
    assert wait(cold) == "succeeded", cold.log_path.read_text()[-2000:]
    assert "forked" not in cold.log_path.read_text()
    assert len(losses(forked)) >= 6 and losses(forked) == losses(cold)  # threads and RNG as cold


def test_a_forked_run_outlives_its_server_and_is_reconciled_as_a_cold_one(
    private_server, tmp_path: Path
) -> None:
    launcher = Launcher(tmp_path / "runs")
    run = tiny_sft(launcher, steps=400)
    proc = launcher.start(run)
    assert isinstance(proc, forkserver.ForkedProcess)
    forkserver.stop_server(private_server)  # the server goes; its worker does not
    end = time.time() + 120
    while run.read_status().get("step", 0) < 2 and time.time() < end:
        time.sleep(0.2)
    assert run.state().value == "running"
    os.kill(proc.pid, signal.SIGKILL)
    end = time.time() + 30
    while proc.poll() is None and time.time() < end:
        time.sleep(0.1)
    assert not proc.exit_known  # its parent (the server) was gone: nobody saw its exit code
    assert [r.run_id for r in launcher.reconcile()] == [run.run_id]
    assert "is gone without a final state" in run.read_status()["error"]


def test_a_stale_or_foreign_request_is_refused_and_the_worker_starts_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.worker.forkserver import SOURCES, Server

    server = Server(tmp_path / "x.sock")
    server.code = {**server.code, str(SOURCES / "gone.py"): 0.0}  # as if a file was removed

    def ask(req: dict) -> tuple[bool, dict]:
        a, b = socket.socketpair()
        with a, b:
            a.sendall(json.dumps(req).encode() + b"\n")
            goes_on = server.answer(b, b)
            return goes_on, json.loads(a.recv(65536))

    base = {"run_dir": str(tmp_path), "cwd": str(ROOT), "env": dict(os.environ), "log": str(tmp_path / "l")}
    import sys

    goes_on, reply = ask({**base, "cwd": str(tmp_path), "python": sys.executable})
    assert goes_on and "refused" in reply  # another checkout's code
    goes_on, reply = ask({**base, "python": sys.executable, "env": {**os.environ, "HF_HUB_OFFLINE": "0"}})
    assert goes_on and "HF_HUB_OFFLINE" in reply["refused"]  # read when the server imported
    # a caller that imported trl carries the variables its imports set (torch's
    # $TORCHINDUCTOR_CACHE_DIR), as the server's own imports set them: not a difference (the
    # suite's headless runs were all refused for it and started cold)
    from backends.worker import forkserver as server_side

    with monkeypatch.context() as m:
        before = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
        m.setattr(server_side, "STARTED_ENV", before)  # the server's env before its imports
        m.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_x")  # ... which set this
        assert server_side.env_differs(dict(os.environ)) is None
        other = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
        assert server_side.env_differs(other) == "TORCHINDUCTOR_CACHE_DIR"
        # a caller whose imports set what no worker reads later: gradio's Blocks (telemetry),
        # scikit-learn and joblib (OpenMP's KMP_*; CI's studio runs were all refused for
        # $KMP_INIT_AT_FORK when the suite's server had not imported scikit-learn)
        clean = {k: v for k, v in os.environ.items() if k not in server_side.HARMLESS_ENV}
        m.setattr(server_side, "STARTED_ENV", clean)
        for k in server_side.HARMLESS_ENV:
            m.delenv(k, raising=False)
        caller = {
            **clean,
            "KMP_INIT_AT_FORK": "FALSE",
            "KMP_DUPLICATE_LIB_OK": "True",
            "HF_HUB_DISABLE_TELEMETRY": "True",
        }
        assert server_side.env_differs(caller) is None
        assert server_side.env_differs({**clean, "KMP_AFFINITY": "compact"}) == "KMP_AFFINITY"
    goes_on, reply = ask({**base, "python": sys.executable})
    assert not goes_on and "gone.py" in reply["stale"]  # the server exits; no child was forked
    assert server.children == {}
    # and the launcher starts cold when nothing listens
    assert (
        forkserver.spawn(tmp_path, [sys.executable, "-m", "backends.worker", "x"], ROOT, {}, tmp_path / "l")
        is None
    )
