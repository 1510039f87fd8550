"""GRPO's variants reach TRL (and RLOO gets the ones it has), unknown ones are refused before a
run, and the rlvr pipeline (SFT -> GRPO on checkers + quality -> a three-model comparison) runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir, list_runs
from backends.core.spec.config import validate_config
from backends.methods.grpo import TRL_OPTIONS, RLParams, trl_options

ROOT = Path(__file__).resolve().parents[2]


def headless(runs_dir: Path, preset: str, *sets: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", preset]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_each_option_goes_to_the_trl_configs_that_have_it(tmp_path: Path) -> None:
    from trl import GRPOConfig, RLOOConfig

    rl = RLParams(loss_type="cispo", epsilon_high=5.0, mask_truncated_completions=True, scale_rewards="none")
    grpo, rloo = trl_options(rl, "grpo"), trl_options(rl, "rloo")
    assert set(grpo) == set(TRL_OPTIONS)
    assert set(rloo) == {"epsilon", "epsilon_high", "mask_truncated_completions"}
    assert trl_options(rl, "ppo") == {}  # PPO is written here and reads none of them
    g = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", **grpo)
    assert (g.loss_type, g.scale_rewards, g.epsilon_high, g.mask_truncated_completions) == (
        "cispo",
        "none",
        5.0,
        True,
    )
    r = RLOOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", **rloo)
    assert (r.epsilon_high, r.mask_truncated_completions) == (5.0, True)


def test_rl_defaults_are_trls_and_scale_rewards_takes_trls_booleans() -> None:
    from trl import GRPOConfig

    rl = RLParams()
    trl_default = GRPOConfig.__dataclass_fields__
    for name in TRL_OPTIONS:
        assert getattr(rl, name) == trl_default[name].default, name
    cfg = validate_config({"method": "grpo", "rl": {"scale_rewards": False}}, "test")
    assert cfg.rl.scale_rewards == "none"


def test_grpo_passes_dr_grpo_and_sequence_sampling_to_trl(runs_dir: Path, tiny_model: str) -> None:
    import torch

    proc = headless(
        runs_dir,
        "presets/tiny/grpo.yaml",
        "rl.loss_type=dr_grpo",
        "rl.importance_sampling_level=sequence",
        "rl.epsilon_high=0.28",
        "rl.rewards=[{kind: checkers}, {kind: quality, weight: 0.5}]",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    assert run.read_status()["state"] == "succeeded"
    # the arguments TRL trained with, as its Trainer saved them beside the checkpoint
    (ckpt,) = run.checkpoints_dir.glob("checkpoint-*")
    args = torch.load(ckpt / "training_args.bin", weights_only=False)
    assert (args.loss_type, args.importance_sampling_level, args.epsilon_high) == (
        "dr_grpo",
        "sequence",
        0.28,
    )
    assert args.reward_weights == [1.0, 0.5]
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len([r for r in train if "loss" in r]) == 4
    assert all(0.0 <= r["rewards/quality/mean"] <= 1.0 for r in train)


def test_an_unknown_loss_type_is_refused_before_a_run(runs_dir: Path) -> None:
    proc = headless(runs_dir, "presets/tiny/grpo.yaml", "rl.loss_type=ppo")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "`rl.loss_type`" in out and "'dr_grpo'" in out and "got 'ppo'" in out
    assert list_runs(runs_dir) == []


@pytest.mark.parametrize("preset", ["rlvr", "instructgpt", "study_sda"])
def test_presets_reuse_the_quickstart_sft(preset: str) -> None:
    """Every shipped study that starts from the quickstart's SFT resolves it to the same config,
    so a finished quickstart run is reused instead of trained again (on other rows)."""
    from backends.core.pipelines.pipeline import load_pipeline, stage_dicts
    from backends.core.spec.config import config_to_yaml

    def sft(preset: str) -> str:
        stages = dict(stage_dicts(load_pipeline(ROOT / preset), preset))
        return config_to_yaml(validate_config(stages["sft"], preset))

    assert sft(f"presets/{preset}.yaml") == sft("presets/quickstart.yaml")


def test_tiny_rlvr_ends_with_base_sft_and_grpo_compared(runs_dir: Path, tiny_model: str) -> None:
    proc = headless(runs_dir, "presets/tiny/rlvr.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    stages = {s["stage"]: s for s in pipe.read_status()["stages"]}
    assert list(stages) == ["sft", "grpo", "heldout"]
    assert [s["state"] for s in stages.values()] == ["succeeded"] * 3
    grpo = RunDir(runs_dir / stages["grpo"]["run_id"])
    keys = {k for line in grpo.metrics_path.read_text().splitlines() for k in json.loads(line)}
    assert {"rewards/checkers/mean", "rewards/quality/mean", "rewards/ifeval/mean"} <= keys
    wr = json.loads(RunDir(runs_dir / stages["heldout"]["run_id"]).winrate_path.read_text())
    assert len(wr["models"]) == 3 and len(wr["scores"]["checkers"]) == 3 == len(wr["scores"]["ifeval"])
    # the embedded rows are judged both ways: IFEval's four scores per model, and agreement
    assert set(wr["ifeval"]["models"]) == set(wr["models"])
    assert 0.0 <= wr["ifeval"]["agreement_with_checkers"]["share"] <= 1.0
