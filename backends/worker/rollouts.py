"""RL rollouts on a CPU from a bf16 copy of the policy.

GRPO, RLOO and PPO spend most of a step generating (60 % of a GRPO step here). Under bf16
autocast the trained model keeps fp32 weights and every decoding step casts them again, so
sampling runs at fp32 speed; a copy with the adapter merged and the weights in bf16 samples
about twice as fast on a CPU with bf16 instructions (8 answers x 64 tokens of the embedded
model: 5.0 s -> 2.6 s plus 0.4 s to make the copy), and a GRPO step of presets/rlvr.yaml's
shape took 7.7 s instead of 10.8 (`bench/rollouts.py`, docs/BENCHMARKS.md).
The copy is made again before every generation, so it always holds the current weights, and
the training model itself is never touched. The answers are sampled from the same policy up to
bf16 rounding of the weights, which autocast applies to every matmul of the training pass too;
TRL's vLLM path samples from a separately synced copy the same way.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from backends.worker.runtime import Runtime


def wanted(rt: Runtime, setting: str = "auto") -> bool:
    """bf16 rollouts where they pay (`rl.rollouts: auto`): a CPU run with bf16 autocast on (a
    CPU with bf16 instructions). On a GPU the autocast cast is cheap and vLLM is the fast path."""
    return setting == "auto" and rt.device == "cpu" and rt.bf16


def bf16_copy(model: Any) -> Any:
    """A frozen bf16 copy of `model` (a causal LM, or a peft model whose adapter is merged into
    the copy) in eval mode, ready to generate."""
    import torch

    clone = copy.deepcopy(model)
    for attr in ("generate", "studio_bf16_rollouts"):  # what `install` put on the instance
        clone.__dict__.pop(attr, None)
    if hasattr(clone, "merge_and_unload"):
        clone = clone.merge_and_unload()
    # Instance-level forwards are the trainers' wrappers: accelerate's autocast one, and TRL's
    # fused LM head, whose closure holds the *original* model's forward (a deep copy keeps
    # closures as they are), so a copy that kept it generated with the training model's fp32
    # weights and gained nothing. The copy generates with its classes' own forwards.
    for module in clone.modules():
        for attr in ("forward", "_original_forward"):
            module.__dict__.pop(attr, None)
    clone = clone.to(torch.bfloat16).eval()
    clone.requires_grad_(False)
    return clone


def install(model: Any) -> None:
    """Make `model.generate` sample from a fresh bf16 copy of `model` (the trainers call the
    model's own `generate`; everything else about the model stays as it is)."""
    if getattr(model, "studio_bf16_rollouts", False):
        return
    plain_generate = model.generate
    timing = {"copies": 0, "copy_s": 0.0}

    def generate(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        clone = bf16_copy(model)
        timing["copies"] += 1
        timing["copy_s"] += time.perf_counter() - t0
        try:
            return clone.generate(*args, **kwargs)
        finally:
            del clone

    generate.plain = plain_generate  # type: ignore[attr-defined]
    generate.timing = timing  # type: ignore[attr-defined]
    model.generate = generate
    model.studio_bf16_rollouts = True
    print(
        "generation: rollouts sampled from a bf16 copy of the policy (adapter merged), made again "
        "before each generation: faster than generating under autocast on this CPU (rl.rollouts: policy "
        "turns it off)",
        flush=True,
    )
