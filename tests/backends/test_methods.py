"""Every method end to end on the tiny model (headless, a few steps), RL learning on a tiny
task, and pipelines passing outputs between stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from backends.core.runs.rundir import RunDir, list_runs

ROOT = Path(__file__).resolve().parents[2]
PREF = {"rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"}
RL = {"reward", "kl", "entropy"}
METRICS = {
    "reward": {"loss", "accuracy", "margin", "mean_reward"},
    "dpo": PREF | {"rewards/accuracies"},
    "ipo": PREF | {"rewards/accuracies"},
    "simpo": PREF | {"rewards/accuracies"},
    "orpo": PREF | {"log_odds_ratio", "nll_loss"},
    "kto": {"rewards/chosen", "rewards/rejected", "kl"},
    "grpo": RL | {"rewards/checkers/mean", "reward_std", "completions/mean_length", "clip_ratio/region_mean"},
    "rloo": RL | {"rewards/checkers/mean", "completions/mean_length"},
    "ppo": RL | {"loss/policy", "loss/value", "clipfrac", "approx_kl", "response_length", "returns"},
}


def headless(runs_dir: Path, preset: str, *sets: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", preset]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def metric_rows(run: RunDir) -> list[dict]:
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines()]


@pytest.mark.parametrize("method", list(METRICS))
def test_method_runs_logs_its_metrics_and_trains_its_adapter(
    method: str, runs_dir: Path, tiny_model: str
) -> None:
    sets = []
    if method in ("grpo", "rloo"):
        # A random model's samples in a group usually meet the same constraints: equal rewards,
        # zero advantage, no gradient. A weighted mix with a graded reward gives them a signal
        # (and checks that mixes work).
        sets = [
            "rl.rewards=[{kind: checkers, weight: 1.0}, "
            '{kind: function, path: "tests.backends.rl_rewards:vowel_share", weight: 1.0}]'
        ]
    proc = headless(runs_dir, f"presets/tiny/{method}.yaml", *sets)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    assert run.read_status()["state"] == "succeeded"
    rows = metric_rows(run)
    keys = {k for r in rows if r["split"] == "train" for k in r}
    assert METRICS[method] <= keys, METRICS[method] - keys
    adapter = load_file(run.model_dir / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at 0: training moved it
    if method in ("grpo", "rloo", "ppo"):
        samples = [json.loads(line) for line in run.samples_path.read_text().splitlines()]
        assert samples and {"step", "prompt", "completion", "reward", "length"} <= set(samples[0])
        assert all(0.0 <= s["reward"] <= 1.0 for s in samples)  # each reward function is a share in [0, 1]
        if method != "ppo":
            assert "rewards/vowel_share/mean" in keys


def rewards_over_run(runs_dir: Path) -> list[float]:
    (run,) = list_runs(runs_dir)
    return [r["reward"] for r in metric_rows(run) if r["split"] == "train" and "reward" in r]


LEARN = [
    "--set",
    'rl.rewards=[{kind: function, path: "tests.backends.rl_rewards:vowel_share"}]',
    "--set",
    "lora.enabled=false",
    "--set",
    "rl.beta=0.0",
    "--set",
    "train.per_device_train_batch_size=16",
]


# The curve depends on the seed and on the CPU's kernels (sampled tokens diverge after a few
# steps), so the settings were chosen over many seeds: PPO at lr 2e-2 for 30 steps gained
# +0.20 to +0.86 over seeds 1-15 and 42 on an AMD EPYC with AVX512-BF16 (lr 1e-2 for 20
# steps failed 2 seeds of 6); GRPO at 5e-2 for 20 steps gained +0.34 to +0.53 over 6 seeds.
@pytest.mark.parametrize(("method", "lr", "steps"), [("ppo", "2e-2", 30), ("grpo", "5e-2", 20)])
def test_rl_raises_a_programmatic_reward(
    method: str, lr: str, steps: int, runs_dir: Path, tiny_model: str
) -> None:
    """A tiny random policy learns to write more 'e' and 'a' characters."""
    proc = headless(
        runs_dir,
        f"presets/tiny/{method}.yaml",
        *LEARN[1::2],
        f"train.learning_rate={lr}",
        f"train.max_steps={steps}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = rewards_over_run(runs_dir)
    assert len(r) == steps
    first, last = sum(r[:3]) / 3, sum(r[-3:]) / 3
    assert last > first + 0.15, r


def test_pipeline_passes_outputs_and_reruns_reuse_succeeded_stages(runs_dir: Path, tiny_model: str) -> None:
    proc = headless(runs_dir, "presets/tiny/sft_dpo.yaml")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    st = pipe.read_status()
    assert st["state"] == "succeeded" and [s["state"] for s in st["stages"]] == ["succeeded", "succeeded"]
    sft_run = RunDir(runs_dir / st["stages"][0]["run_id"])
    dpo_cfg = (runs_dir / st["stages"][1]["run_id"] / "config.yaml").read_text()
    assert f"name_or_path: {sft_run.model_dir}" in dpo_cfg  # "@sft" became the SFT run's model
    # DPO's model/ is an adapter trained on top of the SFT model: loaded back, it must sit on
    # the SFT weights, not on the raw base (which would silently drop the SFT)
    import torch
    from transformers import AutoModelForCausalLM

    from backends.worker.models import adapter_base, from_pretrained

    dpo_base = adapter_base(str(RunDir(runs_dir / st["stages"][1]["run_id"]).model_dir))
    assert dpo_base is not None
    sft_weights = from_pretrained(AutoModelForCausalLM, str(sft_run.model_dir)).state_dict()
    start_weights = AutoModelForCausalLM.from_pretrained(dpo_base).state_dict()
    raw_weights = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    assert any(not torch.equal(sft_weights[k], raw_weights[k]) for k in sft_weights)  # SFT moved
    assert all(torch.allclose(sft_weights[k], start_weights[k]) for k in sft_weights)

    # a run written before a config field existed still counts as the same config (the field
    # takes its default when the earlier config is read again)
    cfg_path = sft_run.config_path
    assert "  padding_free: auto\n" in cfg_path.read_text()
    cfg_path.write_text(cfg_path.read_text().replace("  padding_free: auto\n", ""))
    again = headless(runs_dir, "presets/tiny/sft_dpo.yaml")
    assert again.returncode == 0
    assert again.stdout.count("(reused)") == 2
    assert len([r for r in list_runs(runs_dir) if r.read_status().get("kind") != "pipeline"]) == 2


def test_a_failed_stage_stops_the_pipeline_with_its_reason(
    runs_dir: Path, tmp_path: Path, tiny_model: str
) -> None:
    # Rows the preflight reads (the first 100) are fine; row 102 only the worker sees.
    good = {
        "prompt": "2+2?",
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    rows = [good] * 101 + [{**good, "chosen": [{"role": "narrator", "content": "4"}]}]
    bad = tmp_path / "pairs.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preset = tmp_path / "p.yaml"
    preset.write_text(f"""
name: broken
defaults:
  model: {{name_or_path: builtin:tiny-llama}}
  train: {{max_steps: 2, bf16: false, activation_checkpointing: false, max_length: 128}}
  data: {{max_samples: 16, eval_fraction: 0.0}}
stages:
  - {{stage: sft, method: sft}}
  - {{stage: dpo, method: dpo, model: {{name_or_path: "@sft"}}, data: {{dataset: {bad}, max_samples: null}}}}
  - {{stage: after, method: sft, model: {{name_or_path: "@dpo"}}}}
""")
    proc = headless(runs_dir, str(preset))
    assert proc.returncode == 1
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    st = pipe.read_status()
    assert (
        st["state"] == "failed"
        and st["error"].startswith("stage `dpo` failed:")
        and "row 102 `chosen` turn 0 has role 'narrator'" in st["error"]
    )
    assert [s["state"] for s in st["stages"]] == ["succeeded", "failed", "pending"]
    assert "stage `dpo` failed" in proc.stderr


def test_sample_stage_writes_pairs_ordered_by_the_judge(runs_dir: Path, tiny_model: str) -> None:
    from backends.core.data.formats import text_of
    from backends.core.tasks.tasks import score_response

    proc = headless(runs_dir, "presets/tiny/sample.yaml", "data.max_samples=24", "sample.sft_threshold=0.3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    samples = [json.loads(line) for line in run.samples_path.read_text().splitlines()]
    assert len(samples) == 24 * 4
    pairs = [json.loads(line) for line in (run.path / "data/pairs.jsonl").read_text().splitlines()]
    sft = [json.loads(line) for line in (run.path / "data/sft.jsonl").read_text().splitlines()]
    assert pairs, "a random model's 4 samples differ in score on some prompts"
    for p in pairs:
        assert score_response(p["constraints"], text_of(p["chosen"])) > score_response(
            p["constraints"], text_of(p["rejected"])
        )
    assert all(score_response(r["constraints"], text_of(r["completion"])) >= 0.3 for r in sft)
    assert run.read_status()["generation_engine"] == "transformers"
