"""How much memory a run will need, before it starts. No torch: the Train tab calls this.

From the model's config.json (a decoder-only transformer: hidden size, layers, heads, vocab)
and the run config, per process:

    weights      parameters x bytes of the weight dtype (a second copy when the method needs a
                 separate reference model: full fine-tuning with DPO-family / GRPO with beta > 0)
    grads        trainable parameters x 4 (fp32)
    optimizer    trainable parameters x 8 (AdamW's two fp32 moments)
    activations  tokens x per-token-per-layer bytes x layers; with activation checkpointing only
                 each layer's input is kept, plus one layer's full activations while recomputing
    logits       tokens x vocab x 4 x 2 (fp32 logits and their gradient) for trainers that
                 materialise them; TRL's SFT computes them in chunks (one chunk counted)
    generation   the KV cache of the sampled batch (methods whose registry entry says `generates`)
    runtime      torch, Python and the tokenizer: a measured constant (~0.9 GB per process)

The activation constants are the usual estimate for a Llama block without stored attention
scores (sdpa / flash attention keep none): 10 hidden-size tensors (norm inputs, q, k, v,
attention output, residuals) and 4 intermediate-size tensors (gate, up, activation, product)
per token and layer. (Eager attention, the CPU default for training up to 512 tokens, keeps
heads x tokens^2 scores per row and layer as well: at 512 tokens and SmolLM2's 9 heads that is
9 MiB per row and layer in bf16, inside this estimate's margin.) Measured against peak RSS in docs/BENCHMARKS.md; it is an estimate,
meant to say "fits / tight / will not fit", not to the megabyte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.core.spec import registry
from backends.core.spec.config import RunConfig
from backends.core.spec.shapes import (  # noqa: F401 - moved there; imported here for their users
    KNOWN_SHAPES,
    ModelShape,
    model_shape,
)

GIB = 2**30
RUNTIME_BYTES = int(0.9 * GIB)  # an idle worker after importing torch + transformers + trl
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
LINEARS_PER_LAYER = 7  # q, k, v, o, gate, up, down


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]  # bytes per process, by part
    processes: int
    available: int | None  # bytes the device has free (None: unknown)

    @property
    def per_process(self) -> int:
        return sum(self.parts.values())

    @property
    def total(self) -> int:
        return self.per_process * self.processes

    @property
    def verdict(self) -> str:
        """`fits`, `tight` (over 80 % of what is free) or `too_big` (over what is free)."""
        if self.available is None:
            return "unknown"
        if self.total > self.available:
            return "too_big"
        return "tight" if self.total > 0.8 * self.available else "fits"

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.parts.items() if v)
        where = f" of {self.available / GIB:.1f} GiB free" if self.available else ""
        procs = f" x {self.processes} processes" if self.processes > 1 else ""
        return f"~{self.total / GIB:.1f} GiB{where}{procs} ({parts} GiB per process)"


def lora_trainable(shape: ModelShape, r: int) -> int:
    return shape.layers * sum(r * (a + b) for a, b in shape.layer_linears())


def estimate(
    cfg: RunConfig,
    shape: ModelShape,
    *,
    processes: int = 1,
    per_device_batch: int | None = None,
    bf16: bool = False,
    available: int | None = None,
) -> MemoryEstimate:
    """Bytes per process of a run of `cfg` on a model of `shape` (see the module docstring)."""
    t = cfg.train
    batch = per_device_batch or t.per_device_train_batch_size
    wbytes = DTYPE_BYTES.get(cfg.model.dtype, 4)
    abytes = 2 if bf16 else 4
    method = cfg.method
    spec = registry.get(method)  # whether it trains and whether it generates: the method says
    trains, generating = spec.trains, spec.generates
    lora = cfg.lora.enabled and trains
    trainable = (lora_trainable(shape, cfg.lora.r) if lora else shape.params) if trains else 0

    weights = shape.params * wbytes
    # what the method holds besides the policy, and how it reads a batch: its spec says
    if not lora and spec.reference_model is not None and spec.reference_model(cfg):
        weights *= 2  # a frozen reference copy (LoRA's reference is the adapter switched off)
    seqs = batch * spec.sequences_per_row
    tokens = seqs * _seq_tokens(cfg)
    per_token_layer = (10 * shape.hidden + 4 * shape.intermediate) * abytes
    if not trains:
        activations = 0
    elif t.activation_checkpointing:
        activations = tokens * shape.hidden * abytes * shape.layers + tokens * per_token_layer
    else:
        activations = tokens * per_token_layer * shape.layers
    logit_tokens = tokens if spec.logits != "chunked" else min(tokens, 4096)
    logits = logit_tokens * shape.vocab * 4 * (2 if trains else 1) if spec.logits != "none" else 0
    generation = 0
    if generating:
        new = int(getattr(getattr(cfg, "rl", None), "max_completion_length", 0) or 256)
        kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * (_prompt_tokens(cfg) + new) * abytes
        generation = kv * max(batch, 8)
    return MemoryEstimate(
        {
            "weights": weights,
            "grads": trainable * 4,
            "optimizer": trainable * 8,
            "activations": activations,
            "logits": logits,
            "generation": generation,
            "runtime": RUNTIME_BYTES,
        },
        processes,
        available,
    )


def cfg_beta(cfg: RunConfig) -> float:
    rl = getattr(cfg, "rl", None)
    return float(getattr(rl, "beta", 0.0) or 0.0)


def _seq_tokens(cfg: RunConfig) -> int:
    if registry.get(cfg.method).generates:
        return _prompt_tokens(cfg) + int(getattr(getattr(cfg, "rl", None), "max_completion_length", 48) or 48)
    return cfg.train.max_length


def _prompt_tokens(cfg: RunConfig) -> int:
    return min(cfg.train.max_length, 128)


def gpu_free_memory(gpus: list[str]) -> int | None:
    """Free memory in bytes of the least free of `gpus` (each process of a run needs its share
    on its own GPU), from nvidia-smi; None when unknown."""
    from backends.core.runs.gpus import SmiError, query

    if not gpus:
        return None
    try:
        rows = query("index,uuid,memory.free")
    except SmiError:
        return None  # unknown: the estimate is shown without a verdict
    if rows is None:
        return None
    free: dict[str, int] = {}
    for fields in rows:
        if len(fields) == 3 and fields[2].isdigit():
            free[fields[0]] = free[fields[1]] = int(fields[2]) * 2**20  # MiB
    try:
        return min(free[g.strip()] for g in gpus)
    except KeyError:  # a CUDA_VISIBLE_DEVICES entry nvidia-smi does not name (a MIG id, say)
        return None


def available_memory(device: str = "cpu", gpus: list[str] | None = None) -> int | None:
    """Free memory of the device in bytes: MemAvailable on the CPU, the least free of `gpus`
    on GPUs (nvidia-smi); None when unknown."""
    if device != "cpu":
        return gpu_free_memory(gpus or [])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_run(
    cfg: RunConfig, gpus: list[str] | None = None, bf16: bool | None = None
) -> MemoryEstimate | None:
    """The estimate for `cfg` as it would run here (its processes, its device); None when the
    model's shape is unknown (a hub id not downloaded yet)."""
    from backends.core.runs.processes import plan_for_config

    shape = model_shape(cfg.model.name_or_path)
    if shape is None:
        return None
    plan = plan_for_config(cfg, gpus)
    device = "cuda" if gpus and cfg.train.device != "cpu" else "cpu"
    if bf16 is None:
        bf16 = cfg.train.bf16 is True or (cfg.train.bf16 == "auto" and _cpu_bf16())
    return estimate(
        cfg,
        shape,
        processes=plan.processes if device == "cpu" else 1,  # on GPUs: per device
        per_device_batch=plan.per_device_batch,
        bf16=bf16,
        available=available_memory(device, gpus),
    )


def _cpu_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
