"""SFT end to end on the tiny model, through the same commands a user types."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from backends.core.runs.rundir import RunDir, list_runs

ROOT = Path(__file__).resolve().parents[2]
TINY = "presets/tiny/sft.yaml"


def headless(runs_dir: Path, *args: str, preset: str | None = TINY) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), *args]
    if preset:
        cmd += ["--preset", preset]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def only_run(runs_dir: Path) -> RunDir:
    (run,) = list_runs(runs_dir)
    return run


def rows(run: RunDir, split: str = "train") -> list[dict]:
    lines = run.metrics_path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def test_headless_sft_succeeds_and_learns(runs_dir: Path, tiny_model: str) -> None:
    proc = headless(runs_dir)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(runs_dir)
    st = run.read_status()
    assert st["state"] == "succeeded" and st["step"] == st["total_steps"] == 20
    train, evals = rows(run), rows(run, "eval")
    assert [r["step"] for r in train] == list(range(1, 21))
    assert all({"loss", "learning_rate", "grad_norm", "epoch"} <= set(r) for r in train)
    assert any("tokens_per_sec" in r for r in train)
    assert [r["step"] for r in evals] == [10, 20]
    assert evals[-1]["loss"] < evals[0]["loss"] - 0.2, evals  # the model learned the format
    assert sum(r["loss"] for r in train[-5:]) < sum(r["loss"] for r in train[:5]) - 1.0
    # weights changed: the saved model differs from the base it started from
    before = load_file(Path(tiny_model) / "model.safetensors")
    after = load_file(run.model_dir / "model.safetensors")
    changed = [k for k in before if k in after and not (before[k] == after[k]).all()]
    assert len(changed) >= len(before) // 2
    assert "succeeded" in proc.stdout and str(run.path) in proc.stdout


def test_lora_sft_trains_only_an_adapter(runs_dir: Path, tiny_model: str) -> None:
    proc = headless(
        runs_dir,
        "--set",
        "lora.enabled=true",
        "--set",
        "lora.r=4",
        "--set",
        "train.max_steps=4",
        "--set",
        "train.eval_steps=null",
        "--set",
        "train.learning_rate=2e-2",
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(runs_dir)
    assert not (run.model_dir / "model.safetensors").exists()
    adapter = load_file(run.model_dir / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero; training moved it
    assert json.loads((run.model_dir / "adapter_config.json").read_text())["r"] == 4


def test_ctrl_c_stops_cleanly_and_resume_continues(runs_dir: Path, tiny_model: str) -> None:
    cmd = [
        sys.executable,
        "launch.py",
        "--headless",
        "--runs-dir",
        str(runs_dir),
        "--preset",
        TINY,
        "--set",
        "train.max_steps=400",
        "--set",
        "train.eval_steps=null",
        "--set",
        "train.save_steps=1000",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list_runs(runs_dir)
        if runs and runs[0].metrics_path.exists() and len(runs[0].metrics_path.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    run = only_run(runs_dir)
    st = run.read_status()
    assert st["state"] == "stopped", st
    ckpt = run.last_checkpoint()
    assert ckpt is not None  # STOP saved a checkpoint although save_steps was never reached
    stopped_at = int(ckpt.name.split("-")[1])
    assert 2 <= stopped_at < 400

    resumed = headless(
        runs_dir, "--resume", str(run.path), "--set", f"train.max_steps={stopped_at + 5}", preset=None
    )
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    new = next(r for r in list_runs(runs_dir) if r.run_id != run.run_id)
    assert new.read_status()["state"] == "succeeded"
    steps = [r["step"] for r in rows(new)]
    assert steps == list(range(1, stopped_at + 6))  # old curve carried over, then continued
    assert f"checkpoint-{stopped_at}" in new.config_path.read_text()


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        ("/nonexistent/data.jsonl", "`data.dataset` /nonexistent/data.jsonl does not exist"),
        ("PROMPT_ONLY", "needs columns"),
        ("BAD_JSON", "line 3 is not valid JSON"),
    ],
)
def test_bad_data_is_refused_before_a_run_starts(
    runs_dir: Path, tmp_path: Path, data: str, expect: str
) -> None:
    if data == "PROMPT_ONLY":
        data = str(tmp_path / "prompts.jsonl")
        Path(data).write_text('{"prompt": "hi"}\n{"prompt": "hello"}\n')
    if data == "BAD_JSON":
        data = str(tmp_path / "bad.jsonl")
        Path(data).write_text('\n{"prompt": "hi", "completion": "yo"}\n{"prompt": oops}\n')
    proc = headless(runs_dir, "--set", f"data.dataset={data}")
    assert proc.returncode == 2
    assert expect in proc.stderr
    if "needs columns" in expect:
        assert "['prompt']" in proc.stderr and "prompt, completion" in proc.stderr
    assert list_runs(runs_dir) == []


def test_wrong_format_found_by_the_worker_fails_the_run_in_one_line(tmp_path: Path, tiny_model: str) -> None:
    """The worker checks the format again (for data only it can see, such as a hub dataset):
    the run ends as failed with the reason on one line."""
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.config_path.write_text(
        f"method: sft\nmodel: {{name_or_path: {tiny_model}}}\ndata: {{dataset: {data}}}\n"
    )
    run.init_status()
    proc = subprocess.run(
        [sys.executable, "-m", "backends.worker", str(run.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    st = run.read_status()
    assert st["state"] == "failed" and "\n" not in st["error"]
    assert "found preference" in st["error"] and "needs columns [prompt, completion]" in st["error"]


def test_bad_preset_never_creates_a_run(runs_dir: Path) -> None:
    proc = headless(runs_dir, "--set", "train.max_steps=-5")
    assert proc.returncode == 2
    assert "`train.max_steps`" in proc.stderr and "-5" in proc.stderr
    assert list_runs(runs_dir) == []


def test_worker_marks_failed_with_reason_and_reraises(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.config_path.write_text("method: sft\ntrain:\n  bogus: 1\n")
    run.init_status()
    proc = subprocess.run(
        [sys.executable, "-m", "backends.worker", str(run.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert proc.returncode != 0
    st = run.read_status()
    assert st["state"] == "failed" and "`train.bogus` is not a known key" in st["error"]
    assert "Traceback" in proc.stderr  # re-raised: the full story is in the log
