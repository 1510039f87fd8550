"""Faults: a worker killed with SIGKILL, broken run directories, a disk that fills up while a
checkpoint is saved, the studio killed while four annotators vote over the API, and a
scheduler that looks at a pipeline's folder while it is being created."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir, RunState, list_runs
from backends.core.spec.config import load_preset

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "presets/tiny/sft.yaml"


def wait_for(check, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sigkilled_worker_fails_with_the_signal_and_resume_continues(
    runs_dir: Path, tiny_model: str
) -> None:
    sets = ["train.max_steps=2000", "train.save_steps=4", "train.eval_steps=null", "train.save_total_limit=3"]
    launcher = Launcher(runs_dir)
    run = launcher.create_run(load_preset(TINY, sets))
    run.claim("cpu")
    proc = launcher.start(run, "cpu")
    ckpt = wait_for(run.last_checkpoint, 180, "a complete checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert [r.run_id for r in launcher.reconcile()] == [run.run_id]
    st = run.read_status()
    assert st["state"] == "failed" and "killed by SIGKILL" in st["error"], st
    ckpt = run.last_checkpoint()  # the newest complete one (a save cut short by the kill is passed over)
    assert ckpt is not None and (ckpt / "trainer_state.json").exists()
    at = int(ckpt.name.split("-")[1])
    resumed = subprocess.run(
        [
            sys.executable,
            "launch.py",
            "--headless",
            "--runs-dir",
            str(runs_dir),
            "--resume",
            str(run.path),
            "--set",
            f"train.max_steps={at + 3}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    new = next(r for r in list_runs(runs_dir) if r.run_id != run.run_id)
    assert new.read_status()["state"] == "succeeded"
    steps = [
        r["step"] for r in map(json.loads, new.metrics_path.read_text().splitlines()) if r["split"] == "train"
    ]
    assert steps == list(range(1, at + 4))  # the old curve up to the checkpoint, then three more steps
    assert f"resume_from: {ckpt}" in new.config_path.read_text()


def make_broken_runs_dir(runs_dir: Path) -> tuple[RunDir, RunDir]:
    """A finished run with a corrupt and a truncated metrics line, a pending run, and around
    them: a corrupt status.json, a missing one, a foreign folder and a stray file."""
    launcher = Launcher(runs_dir)
    good = launcher.create_run(load_preset(TINY))
    good.update_status(state=RunState.RUNNING, pid=None)
    good.update_status(state=RunState.SUCCEEDED)
    good.metrics_path.write_text(
        '{"step": 1, "time": 1, "split": "train", "loss": 3.0}\n'
        '{"step": 2, "time": 2, "split": "train", "loss": \n'  # corrupt (a crash mid-write, then more lines)
        '{"step": 3, "time": 3, "split": "train", "loss": 2.0}\n'
        '{"step": 4, "time": 4, "spl'  # truncated last line
    )
    pending = launcher.create_run(load_preset(TINY))
    corrupt = runs_dir / "20990101-000000-corrupt-aaaa"
    corrupt.mkdir()
    (corrupt / "config.yaml").write_text("method: sft\n")
    (corrupt / "status.json").write_text('{"state": "runn')
    missing = runs_dir / "20990101-000000-missing-bbbb"
    missing.mkdir()
    (missing / "config.yaml").write_text("method: sft\n")
    (runs_dir / "my-notes").mkdir()
    (runs_dir / "my-notes" / "todo.txt").write_text("not a run")
    (runs_dir / "README.txt").write_text("a stray file")
    return good, pending


def test_broken_run_dirs_are_named_and_the_rest_shows(runs_dir: Path, tmp_path: Path) -> None:
    from studio.app import build_app
    from studio.context import StudioContext
    from studio.logic.charts import MonitorState, make_figure
    from studio.logic.runs import run_summary, runs_table

    good, pending = make_broken_runs_dir(runs_dir)
    assert {r.run_id for r in list_runs(runs_dir)} == {good.run_id, pending.run_id}
    table = {row[0]: row for row in runs_table(runs_dir)}
    assert table[good.run_id][2] == "succeeded" and table[pending.run_id][2] == "pending"
    assert table["20990101-000000-corrupt-aaaa"][2].startswith("broken: status.json is unreadable")
    assert table["20990101-000000-missing-bbbb"][2] == "broken: status.json is missing"
    assert "my-notes" not in table and "README.txt" not in table  # not runs: left out, not named
    assert "broken" in run_summary(RunDir(runs_dir / "20990101-000000-corrupt-aaaa"))

    monitor = MonitorState()
    monitor.select(runs_dir, [good.run_id])
    monitor.poll(runs_dir)
    tail = monitor.tails[good.run_id]
    assert [r["step"] for r in tail.rows] == [1, 3]  # the rest of the curve
    assert tail.errors == ["line 2 is not valid JSON (Expecting value)"]
    fig = make_figure(monitor, ["loss"], 0.0, ["train"])
    assert any("line 2 is not valid JSON" in a.text and good.run_id in a.text for a in fig.layout.annotations)

    # The studio builds, and its scheduler still starts the pending run past the broken ones.
    ctx = StudioContext.create(runs_dir, ROOT / "presets", tmp_path / "data")
    build_app(ctx)
    ctx.launcher.python = "/bin/true"  # a stand-in worker: this test is about scheduling
    started = ctx.launcher.schedule()
    assert [r.run_id for r in started] == [pending.run_id]
    ctx.tick()  # reconciling past the broken dirs raises nothing either


def test_disk_full_while_saving_a_checkpoint_fails_the_run_and_keeps_earlier_ones(
    tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import Trainer

    from backends.core.pipelines.headless import prepare_resume
    from backends.core.spec.config import config_to_yaml
    from backends.worker.run import main as worker

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    cfg = load_preset(TINY, ["train.max_steps=12", "train.save_steps=4", "train.eval_steps=null"])
    run.config_path.write_text(config_to_yaml(cfg))
    run.init_status()
    real = Trainer._save_optimizer_and_scheduler
    saves: list[str] = []

    def filling_up(self: Trainer, output_dir: str) -> None:
        saves.append(output_dir)
        if len(saves) == 2:  # the second checkpoint: its model is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", output_dir)
        real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", filling_up)
    with pytest.raises(OSError, match="No space left"):
        worker([str(run.path)])
    st = run.read_status()
    assert st["state"] == "failed" and st["error"].startswith("disk full (OSError: [Errno 28] No space left")
    first, second = (Path(p) for p in saves)
    assert first.name == "checkpoint-4" and second.name == "checkpoint-8"
    assert second.exists() and not (second / "trainer_state.json").exists()  # cut short
    assert run.last_checkpoint() == first  # intact: state, optimizer, weights
    assert {"trainer_state.json", "optimizer.pt", "model.safetensors"} <= {p.name for p in first.iterdir()}
    assert json.loads((first / "trainer_state.json").read_text())["global_step"] == 4
    resumed, _ = prepare_resume(str(run.path))
    assert resumed.resume_from == str(first)


def port_open(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except OSError:
        return False
    return True


def test_killing_the_studio_mid_vote_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    from gradio_client import Client

    from backends.core.access.accounts import add_user
    from backends.core.labels.store import LabelStore
    from tests.studio.conftest import free_port

    data, users = tmp_path / "data", tmp_path / "users.txt"
    data.mkdir()
    names = [f"ann{i}" for i in range(4)]
    for name in names:
        add_user(users, name, "labeler", f"{name}-password")
    store = LabelStore(data / "labels.sqlite")
    sid = store.create_session("crash", [{"prompt": f"p{i}", "responses": ["a", "b"]} for i in range(400)])
    port = free_port()
    studio = subprocess.Popen(
        [
            sys.executable,
            "launch.py",
            "--port",
            str(port),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(data),
            "--users",
            str(users),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    acked = dict.fromkeys(names, 0)  # votes whose reply came back, per annotator
    errors: list[str] = []
    try:
        wait_for(lambda: port_open(url), 120, "the studio to serve")

        def annotate(name: str) -> None:
            client = Client(url, auth=(name, f"{name}-password"), verbose=False)
            client.predict(sid, "", api_name="/label_session")
            while True:
                try:
                    progress = client.predict("", "", api_name="/label_vote_left")[0]
                except Exception as e:  # noqa: BLE001 - the studio is gone: stop voting
                    errors.append(type(e).__name__)
                    return
                acked[name] = int(re.search(r"(\d+) of 400 labeled", progress).group(1))

        threads = [threading.Thread(target=annotate, args=(n,), daemon=True) for n in names]
        for t in threads:
            t.start()
        wait_for(lambda: min(acked.values()) >= 5, 180, "every annotator to have voted")
        studio.send_signal(signal.SIGKILL)  # mid-vote: the four keep sending
        studio.wait(timeout=30)
        for t in threads:
            t.join(timeout=60)
    finally:
        if studio.poll() is None:
            studio.kill()
    assert len(errors) == 4  # every annotator saw the studio go away
    after = LabelStore(data / "labels.sqlite")
    for name in names:
        kept = len(after.votes(sid, name))
        assert kept >= acked[name] >= 5, (name, kept, acked[name])  # nothing acknowledged was lost


def test_a_pipeline_folder_is_never_a_pending_training_run(runs_dir: Path, monkeypatch) -> None:
    """The studio's scheduler claims pending runs. A pipeline's status.json once appeared
    without its kind for a moment; under load the scheduler claimed the folder and started it
    as a training run (the suite saw it: "`stages` is not a known key"). Every write of the
    pipeline's status carries its kind, and claim() refuses a pipeline."""
    import yaml

    from backends.core.pipelines.pipeline import create_pipeline
    from backends.core.runs import rundir

    writes: list[dict] = []
    real = rundir.atomic_write_text

    def spy(path: Path, text: str) -> None:
        if path.name == "status.json":
            writes.append(json.loads(text))
        real(path, text)

    monkeypatch.setattr(rundir, "atomic_write_text", spy)
    raw = yaml.safe_load((ROOT / "presets/tiny/sft_dpo.yaml").read_text())
    pdir = create_pipeline(raw, runs_dir)
    assert writes and all(w.get("kind") == "pipeline" for w in writes), writes
    assert [s["stage"] for s in writes[0]["stages"]] == ["sft", "dpo"]
    assert pdir.state() == RunState.PENDING and not pdir.claim("cpu")
    assert not pdir.read_status().get("claimed")
