"""Runs on a real Ray cluster: a local Ray head on this machine (2 CPUs, no usage stats, nothing
from the network), the studio's Ray executor submitting tiny SFT runs as jobs, metrics read
from the run directory while the job runs, Stop (the STOP file, and the job stop after the grace
period), a job killed from outside marked failed with Ray's reason by a restarted studio, the
shared-storage check refusing a runs folder the job cannot see, and headless mode with
`--executor ray`. The head is shut down at the end (its own process group, no `ray stop`,
which would stop every Ray on the machine).

Ray is the `cluster` extra (`pip install -e .[cluster]`; `make test` installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.core.runs.executors import ExecutorConfig, ExecutorError
from backends.core.runs.ray_executor import RayExecutor
from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec.config import load_preset
from studio.context import StudioContext

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "presets"
# Long enough to be stopped or killed mid-training; never reached.
LONG = ["train.max_steps=100000", "train.eval_steps=null", "train.save_steps=100000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tiny_model: str) -> Iterator[str]:
    """A Ray head of 2 CPUs on 127.0.0.1 with free ports, its files in a private temp dir; the
    jobs inherit this test's environment (offline, the tiny model's cache)."""
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: pip install -e .[cluster] (make test installs it)")
    # Short: Ray's unix sockets live under it (a path of 107 characters at most).
    tmp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")
    dash = free_port()
    env = dict(
        os.environ,
        RAY_TMPDIR=tmp,
        TMPDIR=tmp,  # the dashboard leaves pymp-* folders in the temp dir
        RAY_USAGE_STATS_ENABLED="0",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # SIGTERM: down at once, not after 30 s
    )
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        "--num-gpus=0",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats",
        f"--temp-dir={tmp}",
    ]
    log = Path(tmp) / "head.log"
    with open(log, "wb") as out:
        head = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        from ray.job_submission import JobSubmissionClient

        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                pytest.fail(f"the Ray head exited with {head.returncode}:\n{log.read_text()[-3000:]}")
            try:
                JobSubmissionClient(address)
                break
            except (ConnectionError, RuntimeError) as e:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not answer in 120 s ({e}):\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            # Ray's processes end within ~3 s; `ray start --block` itself then sometimes waits
            # ~30 s more (a head that served no job yet; Ray 2.60), its children already dead.
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def studio(runs_dir: Path, address: str, grace: float = 300.0) -> StudioContext:
    return StudioContext.create(
        runs_dir,
        PRESETS,
        data_dir=runs_dir.parent / "data",
        executor=ExecutorConfig("ray", address, stop_grace_s=grace),
    )


def until(ctx: StudioContext, done: Callable[[], bool], timeout: float = 120.0) -> None:
    """The studio's scheduler tick (reconcile, then submit) until `done()`."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise AssertionError("not reached in time")
        ctx.tick()
        time.sleep(0.2)


def job_status(address: str, run: RunDir, timeout: float = 60.0) -> str:
    """The run's job status once Ray has it ended (the worker writes its final state just
    before its process exits)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    end = time.monotonic() + timeout
    while True:
        status = str(client.get_job_info(run.read_status()["ray_job_id"]).status)
        if status not in ("PENDING", "RUNNING") or time.monotonic() > end:
            return status
        time.sleep(0.2)


def loss_rows(run: RunDir) -> list[dict]:
    tail = run.tail_metrics()
    tail.poll()
    return [r for r in tail.rows if r.get("split") == "train" and "loss" in r]


def test_a_tiny_sft_runs_as_a_ray_job_and_its_metrics_arrive_while_it_runs(
    ray_head: str, runs_dir: Path
) -> None:
    ctx = studio(runs_dir, ray_head)
    # The check job read the token the studio wrote: the runs folder is shared.
    assert "sees" in ctx.executor.check()
    run = ctx.launcher.create_run(
        load_preset(PRESETS / "tiny/sft.yaml", ["train.max_steps=40", "train.eval_steps=null"])
    )
    seen_running: list[int] = []

    def watch() -> bool:
        st = run.read_status()
        if st["state"] == "running":
            seen_running.append(len(loss_rows(run)))
        return RunState(st["state"]).is_finalized

    until(ctx, watch)
    st = run.read_status()
    assert st["state"] == "succeeded", (st.get("error"), run.log_tail(3000))
    assert st["executor"] == "ray" and st["ray_address"] == ray_head
    assert st["request"] == {"cpus": 1, "gpus": 0, "processes": "auto"}
    assert job_status(ray_head, run) == "SUCCEEDED"
    assert max(seen_running) > 0  # loss rows were there while the job still ran
    losses = [r["loss"] for r in loss_rows(run)]
    assert len(losses) == 40 and sum(losses[-10:]) < sum(losses[:10])  # it learned
    assert (run.model_dir / "config.json").exists()
    assert "Ray node" in run.log_path.read_text()  # the job wrote the worker's output in the run dir


def test_stop_kill_and_a_restarted_studio_on_ray(ray_head: str, runs_dir: Path) -> None:
    ctx = studio(runs_dir, ray_head)
    stop_me = ctx.launcher.create_run(load_preset(PRESETS / "tiny/sft.yaml", LONG))
    kill_me = ctx.launcher.create_run(load_preset(PRESETS / "tiny/sft.yaml", LONG))
    until(ctx, lambda: len(loss_rows(stop_me)) >= 3 and kill_me.read_status()["state"] == "running")

    # Stop: the STOP file; the worker saves and stops at its next step, its job ends by itself.
    assert "stop requested" in ctx.executor.stop(stop_me)
    assert stop_me.stop_requested()
    # Killed from outside (by hand, the OOM killer): the job's process goes with SIGKILL.
    os.kill(kill_me.read_status()["pid"], signal.SIGKILL)
    until(ctx, lambda: stop_me.state().is_finalized)
    del ctx  # the studio goes away; the killed run waits for whoever looks next

    st = stop_me.read_status()
    assert st["state"] == "stopped" and "ray_stop_sent_at" not in st
    assert job_status(ray_head, stop_me) == "SUCCEEDED"  # it stopped itself, within the grace period
    assert stop_me.last_checkpoint() is not None  # and saved on the way out

    # A restarted studio finds the killed run's job from its run directory alone.
    assert kill_me.read_status()["state"] == "running"
    until(lambda_ctx := studio(runs_dir, ray_head), lambda: kill_me.state().is_finalized)
    st = kill_me.read_status()
    assert st["state"] == "failed"
    assert st["error"].startswith(f"Ray job {st['ray_job_id']} FAILED") and "137" in st["error"], st["error"]
    assert job_status(ray_head, kill_me) == "FAILED"

    # Stop of a run that does not stop by itself: after the grace period, its job is stopped.
    slow = lambda_ctx.launcher.create_run(load_preset(PRESETS / "tiny/sft.yaml", LONG))
    until(lambda_ctx, lambda: slow.read_status()["state"] == "running")
    # a hung worker (paused here, so it cannot notice the STOP file before the grace is up)
    os.kill(slow.read_status()["pid"], signal.SIGSTOP)
    lambda_ctx.executor.stop(slow)
    long_ago = time.time() - 301  # the grace period (300 s) has passed
    os.utime(slow.stop_path, (long_ago, long_ago))
    until(lambda_ctx, lambda: slow.state().is_finalized)
    st = slow.read_status()
    assert st["state"] == "stopped" and st.get("ray_stop_sent_at"), st
    assert job_status(ray_head, slow) == "STOPPED"


def test_a_runs_folder_the_cluster_cannot_see_is_refused(
    ray_head: str, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Acts out storage that is not shared: the job finds no token, or another one.
    monkeypatch.setattr(RayExecutor, "_write_token", lambda self, path, token: path.write_text("elsewhere"))
    ctx = studio(runs_dir, ray_head)
    run = ctx.launcher.create_run(load_preset(PRESETS / "tiny/sft.yaml"))
    ctx.tick()  # submitted; its job must read the token before it starts the worker
    with pytest.raises(ExecutorError, match="not shared with Ray node") as refused:
        ctx.executor.check()
    assert "same path" in str(refused.value)
    until(ctx, lambda: run.state().is_finalized)
    st = run.read_status()
    assert st["state"] == "failed" and "the runs folder is not shared with Ray node" in st["error"], st
    assert not run.metrics_path.exists() and not run.model_dir.exists()  # no worker ever ran


def test_a_run_whose_job_the_cluster_does_not_know_is_failed_with_the_reason(
    ray_head: str, runs_dir: Path
) -> None:
    # As after the cluster was restarted (Ray keeps no jobs across restarts) or another one answers.
    ctx = studio(runs_dir, ray_head)
    run = ctx.launcher.create_run(load_preset(PRESETS / "tiny/sft.yaml"))
    run.update_status(state="running", executor="ray", ray_address=ray_head, ray_job_id="gone-1234")
    assert [r.run_id for r in ctx.executor.reconcile()] == [run.run_id]
    st = run.read_status()
    assert st["state"] == "failed" and f"Ray at {ray_head} has no job gone-1234" in st["error"], st


def test_the_ray_flags_are_checked_before_any_run_exists(tmp_path: Path) -> None:
    from launch import build_parser, executor_config

    def refused(*flags: str) -> str:
        args = build_parser().parse_args([*flags, "--runs-dir", str(tmp_path / "runs")])
        with pytest.raises(SystemExit) as e:
            executor_config(args)
        return str(e.value)

    assert "`--executor ray` needs `--ray-address`" in refused("--executor", "ray", "--ray-address", "")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        assert f"cannot reach Ray at http://127.0.0.1:{port}" in refused(
            "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"
        )
    assert "`--stop-grace` must be >= 0 seconds, got -1.0" in refused(
        "--executor", "ray", "--ray-address", "h:8265", "--stop-grace", "-1"
    )
    assert not list((tmp_path / "runs").iterdir())


def test_headless_runs_the_same_preset_on_ray_with_one_flag_and_accelerate_in_its_job(
    ray_head: str, runs_dir: Path
) -> None:
    # The flags of a local multi-process run, plus `--executor ray`: the job's worker starts the
    # two ranks with `accelerate launch` (gloo on the CPU), as it does on this machine.
    sets = ["train.eval_steps=null", "train.max_steps=6", "launch.processes=2"]
    out = subprocess.run(
        [sys.executable, "launch.py", "--preset", "presets/tiny/sft.yaml", "--headless"]
        + ["--runs-dir", str(runs_dir), "--executor", "ray", "--ray-address", ray_head]
        + [arg for s in sets for arg in ("--set", s)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (run,) = [RunDir(p) for p in runs_dir.iterdir() if (p / "status.json").exists()]
    st = run.read_status()
    assert st["state"] == "succeeded" and st["executor"] == "ray", st
    assert st["request"] == {"cpus": 2, "gpus": 0, "processes": 2}  # the job reserved both CPUs
    assert st["launch"]["processes"] == 2 and "accelerate.commands.launch" in st["launch"]["command"]
    assert f"on Ray at {ray_head}" in out.stdout and len(loss_rows(run)) == 6


def test_a_storage_refusal_is_named_even_before_the_jobs_own_line_reaches_rays_log() -> None:
    """Under load Ray reported the check job FAILED with a log tail that ended before the job's
    own "not shared" line; its exit code (3) says the same, and the reason must name it."""
    from types import SimpleNamespace

    from backends.core.runs.ray_executor import job_reason

    message = (
        "Job entrypoint command failed with exit code 3, last available logs (truncated to 20,000 chars):\n"
        "Running entrypoint for job raysubmit_x: cd /repo && python -m backends.core.runs.rayjob --check f t"
    )
    info = SimpleNamespace(status="FAILED", driver_exit_code=3, message=message)
    reason = job_reason("raysubmit_x", info)
    assert "exit code 3" in reason and "the runs folder is not shared with Ray node" in reason, reason
    other = SimpleNamespace(status="FAILED", driver_exit_code=1, message=message)
    assert "not shared" not in job_reason("raysubmit_x", other)  # only exit code 3 means storage
