"""RL rollouts from a bf16 copy of the policy (backends/worker/rollouts.py): the copy samples
from the current weights with the adapter merged, and the training model stays as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from backends.core.runs.rundir import list_runs

ROOT = Path(__file__).resolve().parents[2]


def _policy(tiny_model: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    add_fused_lm_head(base)  # as TRL's trainers patch the model, before peft wraps it
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    _scramble_adapter(model, seed=1)
    # bf16 autocast wraps the instance's forward, as the trainers' accelerator does. accelerate
    # keeps one state per process: a trainer an earlier test made in this process set its own
    # mixed precision (accelerate's own tests reset it the same way)
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        return Accelerator(cpu=True, mixed_precision="bf16").prepare(model)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def _scramble_adapter(model, seed: int) -> None:
    """Large LoRA weights, so that greedy answers depend on the adapter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _reference(model, tiny_model: str, tmp_path: Path):
    """The same policy built independently: base from disk + the saved adapter, merged, bf16."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model.save_pretrained(tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, tmp_path / "adapter").merge_and_unload()
    return merged.to(torch.bfloat16).eval()


def _greedy(model, ids: torch.Tensor) -> list[int]:
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    return out[0, ids.shape[1] :].tolist()


def test_rollouts_sample_the_current_merged_policy_and_leave_the_model_alone(
    tiny_model: str, tmp_path: Path
) -> None:
    from backends.worker import rollouts

    model = _policy(tiny_model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    plain = _greedy(model, ids)  # the model's own generate, under autocast

    rollouts.install(model)
    # the training model must not run while the copy generates (the hook is copied with the
    # model, so it tells the two heads apart by identity)
    head, calls = model.get_base_model().lm_head, []
    hook = head.register_forward_hook(lambda module, *a: calls.append(module))
    first = _greedy(model, ids)
    hook.remove()
    assert calls and not any(m is head for m in calls), "the copy generated through the training model"
    assert first == _greedy(_reference(model, tiny_model, tmp_path / "a"), ids)
    assert model.generate.timing["copies"] == 1
    # the base alone answers otherwise: the copy really merged the adapter
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).eval()
    assert _greedy(base, ids) != first
    assert len(plain) == len(first) == 12

    # the training model is untouched: fp32, the same values, autocast still wrapping forward
    after = model.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values())
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert "_original_forward" in model.__dict__

    # an update to the adapter (what an optimizer step does) reaches the next rollout
    _scramble_adapter(model, seed=2)
    second = _greedy(model, ids)
    assert second != first
    assert second == _greedy(_reference(model, tiny_model, tmp_path / "b"), ids)


def test_a_grpo_run_with_bf16_samples_from_the_copy(runs_dir: Path, tiny_model: str) -> None:
    """`rl.rollouts: auto` on a bf16 CPU run: the log says so and the run trains as before;
    `policy` keeps the old path. (bf16 is forced: the rule is about bf16 autocast, whatever the CPU.)"""
    base = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir)]
    base += ["--preset", "presets/tiny/grpo.yaml", "--set", "train.max_steps=2", "--set", "train.bf16=true"]
    proc = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    log = run.log_path.read_text()
    assert "rollouts sampled from a bf16 copy" in log
    rows = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    assert len([r for r in rows if r.get("split") == "train" and "reward" in r]) == 2
    assert run.samples_path.read_text().strip()  # the copy's answers were scored and logged

    proc = subprocess.run(
        [*base[:4], str(runs_dir / "policy"), *base[5:], "--set", "rl.rollouts=policy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list_runs(runs_dir / "policy")
    assert "rollouts sampled from a bf16 copy" not in run.log_path.read_text()
