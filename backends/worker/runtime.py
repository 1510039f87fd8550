"""What hardware a worker runs on, and what `auto` settings resolve to there.

Every fallback is said out loud in `Runtime.notes`, which the worker prints and records in
status.json, so a run on a CPU never silently pretends to be a GPU run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from backends.core.spec.config import ModelConfig, TrainConfig


@dataclass
class Runtime:
    device: str  # "cpu" or "cuda"
    bf16: bool
    attn_implementation: str
    num_gpus: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "bf16": self.bf16,
            "attn_implementation": self.attn_implementation,
            "num_gpus": self.num_gpus,
            "notes": self.notes,
        }


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16: bf16 autocast is faster than fp32 on such CPUs."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# On a CPU, torch's sdpa kernel was slower than plain (eager) attention for training on short
# sequences: a LoRA forward+backward of SmolLM2-135M under bf16 autocast, 1 thread, took
# 2.24-2.30 CPU-s per batch of 4 rows of 61-184 tokens with eager against 2.74-3.34 with sdpa,
# and 3.6 vs 4.5 at 2 x 512; at 1024 tokens sdpa won (5.5 vs 7.0). The presets' steps: SFT
# 2.00 vs 2.21 s, DPO 1.69 vs 2.10, reward 1.87 vs 2.31. Generating, eager was 8-10 % slower
# (one query token against the cache), so methods that mostly generate keep sdpa.
# docs/BENCHMARKS.md.
CPU_EAGER_MAX_LENGTH = 512


def cpu_attention(max_length: int, generates: bool = False) -> tuple[str, str]:
    """`auto` attention on a CPU for sequences up to `max_length` tokens, and why."""
    if generates:
        return "sdpa", "attention: sdpa (CPU, a method that mostly generates: faster than eager there)"
    if max_length <= CPU_EAGER_MAX_LENGTH:
        return "eager", (
            f"attention: eager (CPU, training on sequences <= {CPU_EAGER_MAX_LENGTH} tokens: faster than sdpa here)"
        )
    return "sdpa", f"attention: sdpa (CPU, sequences over {CPU_EAGER_MAX_LENGTH} tokens)"


def resolve_runtime(train: TrainConfig, model: ModelConfig, generates: bool = False) -> Runtime:
    import torch

    notes: list[str] = []
    has_cuda = torch.cuda.is_available()
    device = train.device
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
        if not has_cuda:
            notes.append("no CUDA device found: training on the CPU")
    elif device == "cuda" and not has_cuda:
        raise RuntimeError("`train.device` is `cuda` but no CUDA device is visible; use `auto` or `cpu`")

    if train.bf16 == "auto":
        if device == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
        else:
            bf16 = cpu_supports_bf16()
            notes.append(
                "bf16 autocast on: this CPU has bf16 instructions"
                if bf16
                else "bf16 autocast off: this CPU lacks AVX512-BF16/AMX, fp32 is faster here"
            )
    else:
        bf16 = bool(train.bf16)

    attn = model.attn_implementation
    if attn == "auto" and device == "cpu":
        attn, why = cpu_attention(train.max_length, generates)
        notes.append(why)
    elif attn == "auto" or attn == "flash_attention_2":
        has_fa = importlib.util.find_spec("flash_attn") is not None
        if device == "cuda" and has_fa:
            attn = "flash_attention_2"
        else:
            why = "no GPU" if device != "cuda" else "flash-attn is not installed"
            notes.append(f"flash-attention 2 unavailable ({why}): using sdpa")
            attn = "sdpa"
    return Runtime(device, bf16, attn, torch.cuda.device_count() if has_cuda else 0, notes)
