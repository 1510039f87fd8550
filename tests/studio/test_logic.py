"""Studio logic without gradio: form -> config, runs table, metrics polling, figures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError, read_preset
from studio.logic import forms
from studio.logic.charts import MonitorState, ema, make_figure
from studio.logic.runs import eta_seconds, fmt_seconds, resolve_run, run_row

ROOT = Path(__file__).resolve().parents[2]


def test_form_round_trip_and_overrides() -> None:
    raw = read_preset(ROOT / "presets/tiny/sft.yaml")
    values = forms.form_values(raw)
    cfg, _ = forms.form_to_config(raw, values, "form")
    assert cfg.model.name_or_path == "builtin:tiny-llama" and cfg.train.max_steps == 20
    assert forms.overrides(raw, values) == []  # unchanged form: nothing to --set
    keys = [f.key for f in forms.form_fields()]
    values[keys.index("train.max_steps")] = 7.0  # gradio numbers arrive as floats
    values[keys.index("lora.enabled")] = True
    cfg, _ = forms.form_to_config(raw, values, "form")
    assert cfg.train.max_steps == 7 and isinstance(cfg.train.max_steps, int) and cfg.lora.enabled
    sets = forms.overrides(raw, values)
    assert sets == ["train.max_steps=7", "lora.enabled=true"]
    assert forms.headless_command("presets/tiny/sft.yaml", sets).endswith(
        "--headless --set train.max_steps=7 --set lora.enabled=true"
    )


def test_form_errors_name_every_field() -> None:
    raw = read_preset(ROOT / "presets/tiny/sft.yaml")
    values = forms.form_values(raw)
    keys = [f.key for f in forms.form_fields()]
    values[keys.index("train.learning_rate")] = -1
    values[keys.index("model.name_or_path")] = ""
    with pytest.raises(ConfigError) as e:
        forms.form_to_config(raw, values, "Train form")
    assert any("`model.name_or_path`" in p for p in e.value.problems)
    values[keys.index("model.name_or_path")] = "x"
    with pytest.raises(ConfigError, match="learning_rate"):
        forms.form_to_config(raw, values, "Train form")


def test_runs_row_and_eta(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "20260101-000000-sft-abcd")
    run.path.mkdir()
    run.config_path.write_text("method: sft\n")
    run.init_status()
    now = time.time()
    run.update_status(
        state="running",
        started_at=now - 100,
        train_started_at=now - 50,
        first_step=0,
        step=10,
        total_steps=30,
        phase="training",
        device="cpu",
    )
    st = run.read_status()
    assert eta_seconds(st, now) == pytest.approx(100.0)  # 5 s/step since training began, 20 to go
    row = run_row(run, now)
    assert row[1:4] == ["sft", "running (training)", "10 / 30"] and row[4] == "1:40" and row[5] == "1:40"
    assert fmt_seconds(3725) == "1:02:05"
    assert resolve_run(tmp_path, "../etc") is None and resolve_run(tmp_path, run.run_id) is not None


def test_ema_is_debiased_and_keeps_gaps() -> None:
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    out = ema([0.0, None, 10.0], 0.5)
    assert out[1] is None and out[0] == 0.0 and 0.0 < out[2] < 10.0
    assert ema([3.0, 4.0], 0.0) == [3.0, 4.0]


def test_monitor_state_redraws_only_on_change(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        r = RunDir(tmp_path / name)
        r.path.mkdir()
        r.init_status()
        r.update_status(state="running")
        runs.append(r)
    st = MonitorState()
    st.select(tmp_path, ["a", "b"])
    assert st.poll(tmp_path)  # first look: states are new
    assert not st.poll(tmp_path)  # nothing happened
    runs[0].append_metrics({"step": 1, "split": "train", "loss": 2.0})
    runs[0].append_metrics({"step": 1, "split": "eval", "loss": 2.5})
    assert st.poll(tmp_path) and not st.poll(tmp_path)
    assert st.metric_names() == ["loss"] and not st.all_terminal()
    runs[0].update_status(state="succeeded")
    runs[1].update_status(state="failed", error="x")
    assert st.poll(tmp_path) and st.all_terminal()
    fig = make_figure(st, ["loss"], 0.0, ["train", "eval"])
    names = [t.name for t in fig.data]
    assert names == ["a · train", "a · eval"]
    assert list(fig.data[0].y) == [2.0]
    st.select(tmp_path, ["b"])  # deselecting drops the tail
    assert list(st.tails) == ["b"]


def test_form_fields_come_from_the_config_models() -> None:
    fields = {f.key: f for f in forms.form_fields()}
    assert fields["train.learning_rate"].label == "Learning rate" and fields["train.learning_rate"].main
    assert fields["train.warmup_steps"].kind == "number" and not fields["train.warmup_steps"].main
    assert fields["train.bf16"].choices == ("auto", "true", "false")
    assert fields["data.max_samples"].optional and fields["rl.rewards"].kind == "yaml"
    assert "model.trust_remote_code" not in fields and "resume_from" not in fields  # never from the web
    # PPO ignores warmup and the scheduler; eval has no learning rate; a shared section's
    # fields show only for the methods that read them
    assert not fields["train.warmup_steps"].visible("ppo") and fields["train.warmup_steps"].visible("dpo")
    assert not fields["train.learning_rate"].visible("eval") and fields["train.seed"].visible("eval")
    assert fields["rl.num_generations"].visible("grpo") and not fields["rl.num_generations"].visible("ppo")
    assert fields["dpo.simpo_gamma"].visible("simpo") and not fields["dpo.simpo_gamma"].visible("dpo")
    values = forms.form_values(read_preset(ROOT / "presets/tiny/sft.yaml"))
    assert values[forms.keys().index("lora.target_modules")] == "all-linear"
    assert values[forms.keys().index("train.bf16")] == "false"
    cfg, _ = forms.form_to_config(read_preset(ROOT / "presets/tiny/sft.yaml"), values, "form")
    assert cfg.lora.target_modules == "all-linear" and cfg.train.bf16 is False


def test_form_problems_name_the_form_label_once_and_say_the_source_once() -> None:
    from studio.logic.forms import readable_problems

    src = "Train form (preset tiny/sft.yaml)"
    problems = [
        f"`train.learning_rate`: Input should be greater than 0, got -0.001 ({src})",
        "`data.dataset`: data '/x.jsonl' does not exist",
        "`data.dataset`: data '/x.jsonl' does not exist",  # the same path refused twice
        "`no.such_key` is not a known key",
    ]
    assert readable_problems(problems, src) == [
        "**Learning rate** (`train.learning_rate`): Input should be greater than 0, got -0.001",
        "**Dataset** (`data.dataset`): data '/x.jsonl' does not exist",
        "`no.such_key` is not a known key",
    ]
