"""Edit and rerun, Resume and the config diff, in the studio's logic: a rerun carries the
run's own values under a new name; Resume makes the run `--resume` would, held until its old
curve is in, and only for failed or stopped runs with a checkpoint; the diff of two runs
lists exactly the fields that changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError, load_preset
from studio.context import StudioContext
from studio.logic import forms
from studio.logic.rerun import rerun_base, rerun_form, rerun_name, resume_hint, resume_run
from studio.logic.rundiff import changed_fields, config_diff, flatten

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "presets/tiny/sft.yaml"


def make_run(launcher: Launcher, overrides: list[str], state: str = "succeeded", steps: int = 6) -> RunDir:
    run = launcher.create_run(load_preset(TINY, overrides))
    for step in range(1, steps + 1):
        run.append_metrics({"step": step, "time": 100.0 + step, "split": "train", "loss": 5.0 - step / 10})
    run.append_metrics({"step": steps, "time": 200.0, "split": "eval", "loss": 4.2})
    if state != "pending":
        run.update_status(state="running")
        run.update_status(state=state, error="killed" if state == "failed" else None)
    return run


def fake_checkpoint(run: RunDir, step: int) -> Path:
    """What the trainer leaves: a folder whose trainer_state.json is written last."""
    ckpt = run.checkpoints_dir / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def test_a_config_diff_of_two_runs_lists_exactly_the_changed_fields(runs_dir: Path) -> None:
    launcher = Launcher(runs_dir)
    a = make_run(launcher, ["train.learning_rate=0.001"])
    b = make_run(launcher, ["train.learning_rate=0.002", "train.max_steps=30"], state="failed", steps=4)
    headers, rows, note = config_diff(runs_dir, [a.run_id, b.run_id])
    assert headers == [
        "run",
        "state",
        "train.learning_rate",
        "train.max_steps",
        "final loss (train)",
        "final loss (eval)",
    ]
    by_run = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert by_run[a.run_id]["train.learning_rate"] == 0.001 and by_run[b.run_id]["train.max_steps"] == 30
    assert by_run[a.run_id]["final loss (train)"] == pytest.approx(4.4)  # its last train row
    assert (
        by_run[b.run_id]["final loss (train)"] == pytest.approx(4.6) and by_run[b.run_id]["state"] == "failed"
    )
    assert note == "2 field(s) differ"
    same = make_run(launcher, ["train.learning_rate=0.001"])
    assert config_diff(runs_dir, [a.run_id, same.run_id])[2] == "The configs are the same."
    assert config_diff(runs_dir, [a.run_id])[0] == []  # one run: nothing to compare
    assert config_diff(runs_dir, [a.run_id, "../elsewhere"])[0] == []  # ids are names, never paths


def test_changed_fields_counts_a_missing_key_as_a_difference() -> None:
    one = flatten({"train": {"lr": 1, "steps": 2}, "rl": {"rewards": [{"kind": "checkers"}]}})
    two = flatten({"train": {"lr": 1, "steps": 3}, "rl": {"rewards": [{"kind": "function"}]}, "x": None})
    assert one["rl.rewards"] == [{"kind": "checkers"}]  # a list is one value
    assert changed_fields([one, two]) == ["train.steps", "rl.rewards", "x"]


def test_rerun_fills_the_form_with_the_runs_values_under_a_new_name(runs_dir: Path) -> None:
    launcher = Launcher(runs_dir)
    run = make_run(launcher, ["train.learning_rate=0.0042", "train.max_steps=17", "lora.r=4"])
    raw = run.config_path.read_text()
    run.config_path.write_text(raw.replace("resume_from: null", "resume_from: /x/checkpoints/checkpoint-2"))
    base, values = rerun_form(run)
    assert values is not None and "resume_from" not in base  # a rerun starts from scratch
    by_key = dict(zip(forms.keys(), values, strict=True))
    assert by_key["train.learning_rate"] == 0.0042 and by_key["train.max_steps"] == 17
    assert by_key["lora.r"] == 4 and by_key["name"] == "tiny-sft-rerun"
    assert by_key["model.name_or_path"] == "builtin:tiny-llama"
    cfg, _ = forms.form_to_config(base, values, "rerun")
    assert cfg.resume_from is None and cfg.train.learning_rate == 0.0042
    assert [rerun_name(n, "sft") for n in ("a", "a-rerun", "a-rerun2", None)] == [
        "a-rerun",
        "a-rerun2",
        "a-rerun3",
        "sft-rerun",
    ]


def test_rerun_of_an_unreadable_config_says_so(runs_dir: Path) -> None:
    run = make_run(Launcher(runs_dir), [])
    run.config_path.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        rerun_base(run)


def studio_ctx(tmp_path: Path) -> StudioContext:
    return StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")


def test_resume_from_the_studio_continues_a_stopped_run_from_its_checkpoint(tmp_path: Path) -> None:
    ctx = studio_ctx(tmp_path)
    old = make_run(ctx.launcher, ["train.max_steps=10"], state="stopped", steps=6)
    fake_checkpoint(old, 2)
    ckpt = fake_checkpoint(old, 4)
    assert "checkpoint-4" in resume_hint(ctx.runs_dir, old.run_id)
    new = resume_run(ctx.launcher, old)
    st = new.read_status()
    assert st["state"] == "pending" and not st["claimed"] and st["resumed_from"] == old.run_id
    assert st["policy"]["roots"]  # a web run: the worker checks it against the policy again
    assert f"resume_from: {ckpt}" in new.config_path.read_text()
    steps = [json.loads(line)["step"] for line in new.metrics_path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the old curve up to the checkpoint, nothing after it
    from backends.core.pipelines.policy import check_config
    from backends.core.spec.config import config_from_yaml

    # What the worker does before loading anything: the recorded policy accepts the checkpoint.
    check_config(config_from_yaml(new.config_path.read_text(), "x"), ctx.policy)


def test_resume_is_refused_for_finished_runs_and_runs_without_checkpoints(tmp_path: Path) -> None:
    ctx = studio_ctx(tmp_path)
    done = make_run(ctx.launcher, [])
    fake_checkpoint(done, 2)
    failed = make_run(ctx.launcher, [], state="failed")
    runs_before = sorted(p.name for p in ctx.runs_dir.iterdir())
    with pytest.raises(ConfigError, match="is succeeded: Resume continues a failed or stopped run"):
        resume_run(ctx.launcher, done)
    with pytest.raises(ConfigError, match="no checkpoint in"):
        resume_run(ctx.launcher, failed)
    assert sorted(p.name for p in ctx.runs_dir.iterdir()) == runs_before  # nothing created
    assert resume_hint(ctx.runs_dir, failed.run_id).startswith("Resume: no checkpoint")


def test_a_typed_resume_from_is_still_refused_from_the_web(tmp_path: Path) -> None:
    ctx = studio_ctx(tmp_path)
    folder = ctx.data_dir / "checkpoints" / "checkpoint-3"  # served, but no run's checkpoint
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}")
    cfg = load_preset(TINY).model_copy(update={"resume_from": str(folder)})
    with pytest.raises(ConfigError, match="`resume_from` .* can only be set from the command line"):
        ctx.launcher.create_run(cfg)
