"""The app through gradio_client against a real local server: launch, runs table, Monitor."""

from __future__ import annotations

import time
from pathlib import Path

from gradio_client import Client

from backends.core.spec.config import read_preset
from studio.logic import forms

ROOT = Path(__file__).resolve().parents[2]


def tiny_values() -> list:
    return forms.form_values(read_preset(ROOT / "presets/tiny/sft.yaml"))


def test_launch_from_the_app_shows_in_table_and_monitor(studio) -> None:
    from backends.core.runs import forkserver

    # the studio's process has built gradio's Blocks (which sets env variables of its own) and
    # its runs still fork from the warm server (here the suite's) instead of starting cold
    assert forkserver.wait_until_up(studio.runs_dir, timeout=120)
    client = Client(studio.url, verbose=False)
    values = tiny_values()
    errors, yaml_text, command, _ = client.predict("tiny/sft.yaml", *values, api_name="/preview")
    assert errors == "" and "builtin:tiny-llama" in yaml_text and "--preset presets/tiny/sft.yaml" in command

    msg, run_id, _, _ = client.predict("tiny/sft.yaml", "", *values, api_name="/launch")
    assert run_id and run_id in msg
    deadline = time.time() + 180
    row = None
    while time.time() < deadline:
        table, _, summary, _, hint = client.predict(run_id, api_name="/runs")
        row = next(r for r in table["data"] if r[0] == run_id)
        if row[2] in ("succeeded", "failed"):
            break
        time.sleep(1)
    assert row is not None and row[2] == "succeeded", (row, summary)
    assert row[3] == "20 / 20" and row[1] == "sft"
    assert "running" not in hint and hint.startswith("Resume")  # the hint follows the state, too
    log = (studio.runs_dir / run_id / "stdout.log").read_text()
    assert "forked from the warm fork server" in log, log[:400]

    plot, status, metrics, *_ = client.predict(
        [run_id], ["loss"], 0.0, ["train", "eval"], api_name="/monitor_select"
    )
    assert metrics["value"][:2] == ["loss", "mean_token_accuracy"]  # SFT's default charts
    assert f"`{run_id}`: succeeded" in status
    import json

    fig = json.loads(plot["plot"]) if isinstance(plot, dict) else json.loads(plot)
    # the first subplot is the loss; its train curve has one point per step
    train = next(t for t in fig["data"] if t.get("xaxis", "x") == "x" and t["name"].endswith("· train"))
    assert len(train["y"]) == 20 and train["y"][-1] < train["y"][0]


def test_invalid_form_starts_nothing(studio) -> None:
    client = Client(studio.url, verbose=False)
    values = tiny_values()
    values[[f.key for f in forms.form_fields()].index("train.learning_rate")] = -3
    msg, *_ = client.predict("tiny/sft.yaml", "", *values, api_name="/launch")
    assert "learning_rate" in msg and "-3" in msg
    assert not any(studio.runs_dir.iterdir())


def test_pipeline_preset_launches_from_the_app_and_shows_its_stages(studio) -> None:
    client = Client(studio.url, verbose=False)
    text = (ROOT / "presets/tiny/sft_dpo.yaml").read_text()
    msg, pipe_id, _, _ = client.predict("tiny/sft_dpo.yaml", text, *tiny_values(), api_name="/launch")
    assert pipe_id and "Pipeline" in msg
    deadline = time.time() + 240
    while time.time() < deadline:
        table, _, summary, _, _ = client.predict(pipe_id, api_name="/runs")
        row = next(r for r in table["data"] if r[0] == pipe_id)
        if row[2].split()[0] in ("succeeded", "failed"):
            break
        time.sleep(1)
    assert row[1] == "pipeline" and row[2] == "succeeded" and row[3] == "2 / 2", (row, summary)
    assert "| sft | sft | succeeded |" in summary and "| dpo | dpo | succeeded |" in summary
    stage_rows = [r for r in table["data"] if "tiny-sft-dpo-" in r[0] and r[0] != pipe_id]
    assert sorted(r[1] for r in stage_rows) == ["dpo", "sft"]


def test_pipeline_editor_errors_are_shown_and_start_nothing(studio) -> None:
    client = Client(studio.url, verbose=False)
    bad = "name: x\nstages:\n  - {stage: a, method: dpo, model: {name_or_path: '@nope'}}\n"
    msg, *_ = client.predict("tiny/sft_dpo.yaml", bad, *tiny_values(), api_name="/launch")
    assert "`@nope` does not name an earlier stage" in msg
    assert not any(studio.runs_dir.iterdir())


def test_stop_then_resume_from_the_app_continues_the_curve(studio) -> None:
    """Resume in the studio does what `--resume` does: a new run from the stopped run's
    checkpoint (accepted by the worker's policy check), its curve carried over and continued."""
    client = Client(studio.url, verbose=False)
    keys = forms.keys()
    values = tiny_values()
    for key, value in (("train.max_steps", 40), ("train.eval_steps", None), ("train.save_steps", 1000)):
        values[keys.index(key)] = value
    _, run_id, _, _ = client.predict("tiny/sft.yaml", "", *values, api_name="/launch")
    metrics = studio.runs_dir / run_id / "metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    client.predict(run_id, api_name="/stop")
    status = studio.runs_dir / run_id / "status.json"
    while time.time() < deadline and '"stopped"' not in status.read_text():
        time.sleep(0.5)
    assert '"stopped"' in status.read_text()
    msg, _, picked = client.predict(run_id, api_name="/resume")
    new_id = picked if isinstance(picked, str) else picked["value"]
    assert f"Resumed `{run_id}` as `{new_id}`" in msg
    new = studio.runs_dir / new_id
    while time.time() < deadline + 120 and '"succeeded"' not in (new / "status.json").read_text():
        assert '"failed"' not in (new / "status.json").read_text(), (new / "stdout.log").read_text()[-2000:]
        time.sleep(0.5)
    import json

    st = json.loads((new / "status.json").read_text())
    assert st["state"] == "succeeded" and st["resumed_from"] == run_id
    assert (
        "resume_from: " in (new / "config.yaml").read_text()
        and "/checkpoints/checkpoint-" in (new / "config.yaml").read_text()
    )
    steps = [json.loads(line)["step"] for line in (new / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))  # the old curve up to the checkpoint, then the rest


def test_export_model_writes_a_finished_runs_model_to_the_data_folder(studio) -> None:
    """The runs panel's Export: a child process writes the run's model to data/exports/<run>,
    a folder plain transformers loads; a run still without a model is refused by name."""
    client = Client(studio.url, verbose=False)
    values = tiny_values()
    keys = forms.keys()
    values[keys.index("train.max_steps")] = 4
    values[keys.index("train.eval_steps")] = None
    _, run_id, _, _ = client.predict("tiny/sft.yaml", "", *values, api_name="/launch")
    status = studio.runs_dir / run_id / "status.json"
    deadline = time.time() + 180
    while time.time() < deadline and '"succeeded"' not in status.read_text():
        assert '"failed"' not in status.read_text(), (studio.runs_dir / run_id / "stdout.log").read_text()[
            -2000:
        ]
        time.sleep(0.5)
    msg = client.predict(run_id, api_name="/export")
    out = studio.ctx.data_dir / "exports" / run_id
    assert f"Exported `{run_id}` (full weights) to `{out}`" in msg, msg
    assert (out / "model.safetensors").exists() and "method `sft`" in (out / "README.md").read_text()
    import json

    assert json.loads((out / "export.json").read_text())["run"] == run_id


def test_a_headless_sweep_shows_its_trials_best_first_in_the_monitor(studio) -> None:
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "launch.py", "--preset", "presets/tiny/sweep.yaml", "--headless"]
        + ["--runs-dir", str(studio.runs_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "sweep (best first" in proc.stdout
    sweep_id = next(p.name for p in studio.runs_dir.iterdir() if (p / "sweep.json").exists())
    client = Client(studio.url, verbose=False)
    # one event draws the chart, the config diff and the sweep panel; the sweep's note, table
    # and chart come last (layout and state stay out of the API's outputs)
    *_, note, table, plot = client.predict([sweep_id], api_name="/monitor_select")
    assert "4 of 4 trials done" in note and "best (lowest `loss`)" in note
    assert table["headers"] == ["trial", "train.learning_rate", "train.warmup_steps", "loss", "state", "run"]
    rows = table["value"]["data"]  # a component update: its value holds the rows
    losses = [r[3] for r in rows]
    assert len(losses) == 4 and losses == sorted(losses)  # best first
    assert losses[0] < losses[-1]  # the learning rates train differently: the ranking means something
    fig = json.loads(plot["plot"]) if isinstance(plot, dict) else json.loads(plot)
    (trace,) = fig["data"]
    assert trace["type"] == "parcoords"
    assert [d["label"] for d in trace["dimensions"]] == ["train.learning_rate", "train.warmup_steps", "loss"]
    # a trial's run opens in the Monitor like any run
    _, status, *_ = client.predict([rows[0][5]], ["loss"], 0.0, ["train"], api_name="/monitor_select")
    assert "succeeded" in status


def test_the_studio_starts_when_its_first_page_is_slow(tmp_path: Path, tiny_model: str, monkeypatch) -> None:
    """gradio asks for its own page once with a 3 s timeout and refuses to start when that
    times out; on busy cores (a pipeline training beside the studio, CI) the first answer can
    be late. The studio's launch asks again."""
    import httpx

    from studio.app import launch_app
    from studio.context import StudioContext
    from tests.studio.conftest import free_port

    real_head = httpx.head
    asked: list[str] = []

    def late_once(url, **kw):  # the first start-up check times out, as on a loaded machine
        asked.append(url)
        if len(asked) == 1:
            raise httpx.ReadTimeout("timed out")
        return real_head(url, **kw)

    monkeypatch.setattr(httpx, "head", late_once)
    ctx = StudioContext.create(
        runs_dir=tmp_path / "runs", presets_dir=ROOT / "presets", data_dir=tmp_path / "data"
    )
    port = free_port()
    app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
    try:
        assert len(asked) >= 2  # asked again after the timeout, and got the page
        assert real_head(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
    finally:
        ctx.stop_scheduler()
        app.close()
