"""What hardware a worker runs on, and what `auto` settings resolve to there.

Every fallback is said out loud in `Runtime.notes`, which the worker prints and records in
status.json, so a run on a CPU never silently pretends to be a GPU run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from backends.core.config import ModelConfig, TrainConfig


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


def resolve_runtime(train: TrainConfig, model: ModelConfig) -> Runtime:
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
    if attn == "auto" or attn == "flash_attention_2":
        has_fa = importlib.util.find_spec("flash_attn") is not None
        if device == "cuda" and has_fa:
            attn = "flash_attention_2"
        else:
            why = "no GPU" if device != "cuda" else "flash-attn is not installed"
            if model.attn_implementation == "flash_attention_2" or device == "cuda":
                notes.append(f"flash-attention 2 unavailable ({why}): using sdpa")
            attn = "sdpa"
    return Runtime(device, bf16, attn, torch.cuda.device_count() if has_cuda else 0, notes)
