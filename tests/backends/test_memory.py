"""The memory estimate against numbers computed by hand for the tiny and the embedded model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.core.runs.memory import GIB, RUNTIME_BYTES, estimate, model_shape
from backends.core.spec.config import load_preset

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_models_shape_gives_its_known_parameter_count() -> None:
    shape = model_shape("builtin:smollm2-135m-instruct")
    assert shape is not None
    # 30 layers x (q,o 576x576; k,v 576x192; gate,up,down 576x1536; 2 norms) + tied 49152x576 + norm
    per_layer = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576
    assert shape.params == 30 * per_layer + 49152 * 576 + 576 == 134_515_008


def test_lora_sft_on_the_tiny_model_by_hand() -> None:
    cfg = load_preset(
        ROOT / "presets/tiny/sft.yaml",
        ["lora.enabled=true", "lora.r=8", "train.activation_checkpointing=false"],
    )
    shape = model_shape("builtin:tiny-llama")
    assert shape is not None
    est = estimate(cfg, shape, bf16=False)
    h, i, kv, layers, vocab = 64, 128, 2 * 16, 2, 768
    params = layers * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + vocab * h + h
    lora = layers * 8 * ((h + h) * 2 + (h + kv) * 2 + (h + i) * 2 + (i + h))
    tokens = 4 * 128  # batch 4 x max_length 128
    assert est.parts["weights"] == params * 4
    assert est.parts["grads"] == lora * 4
    assert est.parts["optimizer"] == lora * 8
    assert est.parts["activations"] == tokens * (10 * h + 4 * i) * 4 * layers
    assert est.parts["logits"] == tokens * vocab * 4 * 2
    assert est.parts["runtime"] == RUNTIME_BYTES
    assert est.total == sum(est.parts.values())


def test_checkpointing_keeps_one_input_per_layer_and_full_dpo_needs_a_reference_copy() -> None:
    shape = model_shape("builtin:smollm2-135m-instruct")
    assert shape is not None
    on = load_preset(ROOT / "presets/dpo.yaml", ["train.activation_checkpointing=true"])
    off = load_preset(ROOT / "presets/dpo.yaml", ["train.activation_checkpointing=false"])
    tokens = 2 * 2 * 256  # 2 pairs = 4 sequences of 256 tokens
    per_layer_token = (10 * 576 + 4 * 1536) * 2  # bf16 activations
    e_on, e_off = estimate(on, shape, bf16=True), estimate(off, shape, bf16=True)
    assert e_on.parts["activations"] == tokens * 576 * 2 * 30 + tokens * per_layer_token
    assert e_off.parts["activations"] == tokens * per_layer_token * 30
    full = load_preset(ROOT / "presets/dpo.yaml", ["lora.enabled=false"])
    e_full = estimate(full, shape, bf16=True)
    assert e_full.parts["weights"] == 2 * shape.params * 4  # policy + reference, fp32
    assert e_full.parts["optimizer"] == shape.params * 8


def test_the_verdict_warns_when_tight_and_refuses_when_it_does_not_fit() -> None:
    cfg = load_preset(ROOT / "presets/sft.yaml")
    shape = model_shape("builtin:smollm2-135m-instruct")
    assert shape is not None
    need = estimate(cfg, shape, processes=2, per_device_batch=2, bf16=True).total
    assert estimate(cfg, shape, processes=2, per_device_batch=2, available=need * 2).verdict == "fits"
    assert (
        estimate(cfg, shape, processes=2, per_device_batch=2, bf16=True, available=int(need * 1.1)).verdict
        == "tight"
    )
    small = estimate(cfg, shape, processes=2, per_device_batch=2, bf16=True, available=need - 1)
    assert small.verdict == "too_big"
    assert "x 2 processes" in small.summary() and f"{need / GIB:.1f} GiB" in small.summary()


def test_on_gpus_the_verdict_uses_the_least_free_gpu_from_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.core.runs.memory import available_memory, estimate_run

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, GPU-aaa, 81000'\necho '1, GPU-bbb, 1200'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert available_memory("cuda", ["0"]) == 81000 * 2**20
    assert available_memory("cuda", ["0", "GPU-bbb"]) == 1200 * 2**20
    assert available_memory("cuda", ["MIG-x"]) is None  # not named by nvidia-smi: unknown
    cfg = load_preset(ROOT / "presets/sft.yaml", ["train.device=auto"])
    assert estimate_run(cfg, ["0"], bf16=True).verdict == "fits"
    assert estimate_run(cfg, ["1"], bf16=True).verdict == "too_big"  # ~1.9 GiB on 1.2 GiB free


@pytest.mark.parametrize("preset", ["sample", "eval", "sda", "uncertainty"])
def test_stages_that_do_not_train_count_no_gradients_optimizer_or_activations(preset: str) -> None:
    """They load a model and run it (the registry says they do not train); sda also generates."""
    from backends.core.spec.config import validate_config

    shape = model_shape("builtin:smollm2-135m-instruct")
    assert shape is not None
    if preset == "eval":  # presets/eval.yaml is a pipeline (SFT, then the comparison)
        models = ["builtin:smollm2-135m-instruct", "builtin:tiny-llama"]
        cfg = validate_config({"method": "eval", "eval": {"models": models}}, "test")
    else:
        cfg = load_preset(ROOT / f"presets/{preset}.yaml")
    est = estimate(cfg, shape, bf16=True)
    assert est.parts["grads"] == est.parts["optimizer"] == est.parts["activations"] == 0
    assert est.parts["weights"] == shape.params * 4
    assert (est.parts["generation"] > 0) == (preset != "uncertainty")
