"""Runs of several processes (`launch.processes`): the plan `auto` makes, 2-process SFT and DPO
learning exactly what one process learns at the same global batch, and a dead rank failing
the run with its reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.core.runs.processes import plan_for_config, plan_processes, rank_command
from backends.core.runs.rundir import RunDir, list_runs
from backends.core.spec.config import ConfigError, load_preset
from backends.worker.multiproc import rank_failure

ROOT = Path(__file__).resolve().parents[2]
# Two processes of batch 2 see the same rows per step as one process of batch 4 (accelerate
# shards the batches in order) and DDP averages the gradients: the curves agree to float
# rounding (measured: identical to 5 decimals on the tiny model in fp32).
LOSS_TOLERANCE = 1e-3


def headless(runs_dir: Path, preset: str, *sets: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", preset]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def losses(runs_dir: Path) -> tuple[RunDir, list[float]]:
    (run,) = list_runs(runs_dir)
    rows = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    return run, [r["loss"] for r in rows if r.get("split") == "train" and "loss" in r]


def test_auto_picks_two_single_thread_processes_for_sft_on_two_cores_and_keeps_the_global_batch() -> None:
    plan = plan_processes("sft", "auto", 4, cores=2, model_params=135_000_000)
    assert (plan.processes, plan.threads, plan.per_device_batch) == (2, 1, 2)
    assert "global batch 4" in plan.why


@pytest.mark.parametrize(
    ("method", "batch", "cores", "params", "why"),
    [
        ("grpo", 8, 2, 135_000_000, "did not measure faster"),
        ("sample", 8, 2, 135_000_000, "runs in one process"),
        ("sft", 3, 2, 135_000_000, "does not split evenly"),
        ("sft", 4, 1, 135_000_000, "one CPU core"),
        ("sft", 4, 2, 100_000, "steps faster than a second process starts"),
        ("sft", 4, 2, 135_000_000, "20 steps: a second process's start-up costs more"),
    ],
)
def test_auto_stays_at_one_process_and_says_why(
    method: str, batch: int, cores: int, params: int, why: str
) -> None:
    steps = 20 if "20 steps" in why else 200
    plan = plan_processes(method, "auto", batch, cores=cores, model_params=params, steps=steps)
    assert plan.processes == 1 and plan.per_device_batch == batch
    assert why in plan.why


def test_an_explicit_count_keeps_the_per_device_batch_and_gpus_get_one_process_each() -> None:
    assert plan_processes("dpo", 3, 2, cores=6).as_dict() == {
        "processes": 3,
        "threads": 2,
        "per_device_batch": 2,
        "why": "launch.processes: 3",
    }
    gpu = plan_processes("sft", "auto", 8, device="auto", gpus=["0", "1"], cores=16)
    assert (gpu.processes, gpu.per_device_batch) == (2, 4)


def test_more_processes_than_gpus_are_refused_before_anything_starts() -> None:
    # NCCL refuses two ranks on one GPU; a second rank on a 1-GPU machine asks for cuda:1
    with pytest.raises(ConfigError, match=r"`launch.processes` is 2 but this run has 1 GPU\(s\) \(0\)"):
        plan_processes("sft", 2, 4, device="auto", gpus=["0"], cores=16)
    assert plan_processes("sft", 2, 4, device="cpu", gpus=["0"], cores=16).processes == 2  # CPU ranks
    assert plan_processes("sft", 2, 4, device="auto", gpus=["0", "1"], cores=16).processes == 2


def test_the_tiny_presets_run_in_one_process_under_auto() -> None:
    assert plan_for_config(load_preset(ROOT / "presets/tiny/sft.yaml")).processes == 1


def test_rank_command_passes_an_accelerate_config_through_unchanged(tmp_path: Path) -> None:
    plan = plan_processes("sft", 2, 4, cores=2)
    plain = rank_command("/runs/r", plan, None, python="py")
    assert plain[:4] == ["py", "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert plain[-3:] == ["-m", "backends.worker", "/runs/r"]
    assert plain[plain.index("--num_processes") + 1] == "2"
    fsdp = rank_command("/runs/r", plan, "/cfg/fsdp.yaml", python="py")
    assert fsdp[3:5] == ["--config_file", "/cfg/fsdp.yaml"] and "--multi_gpu" not in fsdp


def test_several_processes_are_refused_for_a_single_process_method() -> None:
    with pytest.raises(ConfigError) as e:
        load_preset(ROOT / "presets/tiny/sample.yaml", ["launch.processes=2"])
    assert "`launch.processes` is 2 but `sample` runs in one process only" in str(e.value)
    with pytest.raises(ConfigError, match="must be `auto` or a number >= 1, got 0"):
        load_preset(ROOT / "presets/tiny/sft.yaml", ["launch.processes=0"])


def test_a_dead_rank_is_named_from_torchruns_root_cause() -> None:
    tail = """Root Cause (first observed failure):
[0]:
  time      : 2026-11-24_14:43:24
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 12726)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 12726
"""
    reason = rank_failure(tail, 2, 1)
    assert reason.startswith("process 1 of 2 died with exit code -9 (Signal 9 (SIGKILL)")
    assert "out-of-memory killer" in reason
    assert "exit code 1 without a final state" in rank_failure("no summary", 2, 1)


@pytest.mark.parametrize("method", ["sft", "dpo", "reward"])
def test_two_processes_learn_what_one_process_learns_at_the_same_global_batch(
    method: str, tmp_path: Path, tiny_model: str
) -> None:
    # CPU processes (gloo) on any machine: on a 1-GPU machine two GPU ranks are refused
    common = ["train.max_steps=6", "train.eval_steps=null", "data.eval_fraction=0", "train.device=cpu"]
    one = headless(tmp_path / "one", f"presets/tiny/{method}.yaml", "launch.processes=1", *common)
    two = headless(
        tmp_path / "two",
        f"presets/tiny/{method}.yaml",
        "launch.processes=2",
        "train.per_device_train_batch_size=2",
        *common,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    run1, curve1 = losses(tmp_path / "one")
    run2, curve2 = losses(tmp_path / "two")
    status = run2.read_status()
    assert status["state"] == "succeeded" and status["launch"]["processes"] == 2
    assert "accelerate.commands.launch" in status["launch"]["command"]
    assert len(curve1) == len(curve2) == 6
    assert max(abs(a - b) for a, b in zip(curve1, curve2, strict=True)) < LOSS_TOLERANCE
    assert curve1[0] != curve1[-1]  # it trained: the curve moved
    assert (run2.model_dir / "tokenizer.json").exists()
    # one writer: every step's metrics row appears once
    rows = [json.loads(x) for x in run2.metrics_path.read_text().splitlines()]
    keys = [(r["step"], r.get("split")) for r in rows]
    assert len(keys) == len(set(keys)), keys
    if method == "reward":
        # the held-out pair accuracy after training: measured once, by the main process, on
        # the model it saved (another rank reading model/ before it was written failed the run)
        assert sum("heldout_pair_accuracy" in r for r in rows) == 1


def _rank_pids(run: RunDir) -> list[int]:
    """The ranks of `run`: processes running the worker under accelerate (`python -u -m ...`)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        if "-u" in args and "backends.worker" in args and str(run.path) in args:
            pids.append(int(proc.name))
    return sorted(pids)


def test_a_killed_rank_fails_the_run_with_its_exit_code_and_stops_the_others(
    runs_dir: Path, tiny_model: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "launch.py",
            "--headless",
            "--runs-dir",
            str(runs_dir),
            "--preset",
            "presets/tiny/sft.yaml",
            "--set",
            "launch.processes=2",
            "--set",
            "train.max_steps=100000",
            "--set",
            "train.eval_steps=null",
            "--set",
            "train.device=cpu",  # gloo ranks on any machine, a GPU one too
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        run = None
        while time.time() < deadline:
            runs = list_runs(runs_dir)
            if runs and runs[0].read_status().get("phase") == "training" and len(_rank_pids(runs[0])) == 2:
                run = runs[0]
                break
            time.sleep(1)
        found = [(r.read_status(), _rank_pids(r)) for r in list_runs(runs_dir)]
        assert run is not None, f"the 2-process run never reached training: {found}"
        os.kill(_rank_pids(run)[-1], signal.SIGKILL)
        assert proc.wait(timeout=120) == 1
        status = run.read_status()
        assert status["state"] == "failed"
        assert "died with exit code -9" in status["error"]
        assert _rank_pids(run) == []
    finally:
        if proc.poll() is None:
            proc.terminate()


def test_a_multi_gpu_run_takes_one_gpu_per_process_and_a_cpu_run_one_slot(tmp_path: Path) -> None:
    from backends.core.runs.launcher import Launcher

    gpus = Launcher(tmp_path / "g", gpus=["0", "1", "2"])
    two = gpus.create_run(load_preset(ROOT / "presets/tiny/dpo.yaml", ["launch.processes=2"]))
    auto = gpus.create_run(load_preset(ROOT / "presets/tiny/dpo.yaml"))
    assert (gpus.devices_needed(two), gpus.devices_needed(auto)) == (2, 1)
    # headless claims before the run exists; CPU processes hold no GPU
    cpu_two = load_preset(ROOT / "presets/tiny/dpo.yaml", ["launch.processes=2", "train.device=cpu"])
    two_gpu = load_preset(ROOT / "presets/tiny/dpo.yaml", ["launch.processes=2"])
    assert (gpus.devices_for(two_gpu), gpus.devices_for(cpu_two)) == (2, 1)
    cpu = Launcher(tmp_path / "c", gpus=[])
    assert (
        cpu.devices_needed(
            cpu.create_run(load_preset(ROOT / "presets/tiny/dpo.yaml", ["launch.processes=2"]))
        )
        == 1
    )
