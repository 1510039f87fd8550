"""Queue, detached start, reconciliation of dead workers, stop of queued runs.

A stand-in worker (a small Python script whose command line contains `backends.worker`,
like the real one) keeps these tests fast; the real worker is covered in test_sft.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.core.runs.launcher import Launcher, pid_alive
from backends.core.spec.config import RunConfig

FAKE = """#!{python}
import json, os, sys, time
run = sys.argv[-1]
path = os.path.join(run, "status.json")
st = json.load(open(path))
st.update(state="running", pid=os.getpid())
json.dump(st, open(path + ".t", "w")); os.replace(path + ".t", path)
time.sleep(float(os.environ.get("FAKE_SLEEP", "30")))
"""


@pytest.fixture()
def fake_python(tmp_path: Path) -> str:
    p = tmp_path / "fake-python"
    p.write_text(FAKE.format(python=sys.executable))
    p.chmod(0o755)
    return str(p)


def wait_for(cond, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_queue_runs_one_at_a_time_on_cpu_and_reconciles_dead_workers(
    runs_dir: Path, fake_python: str
) -> None:
    launcher = Launcher(runs_dir, python=fake_python, gpus=[])
    first = launcher.create_run(RunConfig(name="first"))
    time.sleep(0.01)
    second = launcher.create_run(RunConfig(name="second"))
    started = launcher.schedule()
    assert [r.run_id for r in started] == [first.run_id]
    wait_for(lambda: first.state().value == "running")
    assert launcher.schedule() == []  # the only CPU slot is taken
    assert second.state().value == "pending"

    pid = first.read_status()["pid"]
    assert pid_alive(pid)
    os.kill(pid, 9)
    wait_for(lambda: launcher.reconcile() or first.state().value == "failed")
    st = first.read_status()
    assert st["state"] == "failed" and f"worker process {pid} was killed by SIGKILL" in st["error"]

    assert [r.run_id for r in launcher.schedule()] == [second.run_id]
    wait_for(lambda: second.state().value == "running")
    os.kill(second.read_status()["pid"], 9)


def test_a_restarted_studio_marks_orphans_failed_and_keeps_live_runs(
    runs_dir: Path, fake_python: str
) -> None:
    old = Launcher(runs_dir, python=fake_python, gpus=[], max_cpu_runs=2)
    live = old.create_run(RunConfig(name="live"))
    dead = old.create_run(RunConfig(name="dead"))
    old.schedule()
    wait_for(lambda: live.state().value == "running" and dead.state().value == "running")
    os.kill(dead.read_status()["pid"], 9)
    time.sleep(0.2)

    new = Launcher(runs_dir, python=fake_python, gpus=[], max_cpu_runs=2)  # "the studio restarted"
    failed = new.reconcile()
    assert [r.run_id for r in failed] == [dead.run_id]
    assert live.state().value == "running"  # detached: still going
    os.kill(live.read_status()["pid"], 9)


def test_pid_alive_rejects_recycled_pids_and_zombies() -> None:
    assert not pid_alive(None)
    assert not pid_alive(os.getpid())  # alive, but not a worker
    proc = subprocess.Popen([sys.executable, "-c", "pass", "backends.worker"])
    wait_for(lambda: open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[-1].split()[0] == "Z")
    assert not pid_alive(proc.pid)  # exited, not yet reaped
    proc.wait()


def test_stop_cancels_a_queued_run_and_requests_stop_of_a_running_one(
    runs_dir: Path, fake_python: str
) -> None:
    launcher = Launcher(runs_dir, python=fake_python, gpus=[])
    queued = launcher.create_run(RunConfig())
    assert "cancelled" in launcher.stop(queued)
    assert queued.read_status()["state"] == "stopped"
    assert "already stopped" in launcher.stop(queued)
    running = launcher.create_run(RunConfig())
    launcher.schedule()
    wait_for(lambda: running.state().value == "running")
    assert "stop requested" in launcher.stop(running)
    assert running.stop_requested()
    os.kill(running.read_status()["pid"], 9)


def test_gpus_get_one_run_each_with_cuda_visible_devices(runs_dir: Path, fake_python: str) -> None:
    launcher = Launcher(runs_dir, python=fake_python, gpus=["0", "1"])
    runs = [launcher.create_run(RunConfig()) for _ in range(3)]
    started = launcher.schedule()
    assert len(started) == 2
    assert sorted(r.read_status()["device"] for r in started) == ["0", "1"]
    for r in started:
        wait_for(lambda r=r: r.state().value == "running")
        env = open(f"/proc/{r.read_status()['pid']}/environ", "rb").read().split(b"\0")
        assert f"CUDA_VISIBLE_DEVICES={r.read_status()['device']}".encode() in env
        os.kill(r.read_status()["pid"], 9)
    assert runs[2].state().value == "pending"
