"""Model loading: the embedded default (converted once from GGUF), the tiny model, and the
message for a hub id that cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.core.spec.config import ModelConfig
from backends.worker.models import ModelLoadError, load_causal_lm, load_tokenizer, resolve_model_path


def test_embedded_model_loads_and_generates() -> None:
    import torch

    cfg = ModelConfig(name_or_path="builtin:smollm2-135m-instruct")
    path = Path(resolve_model_path(cfg.name_or_path))
    assert (path / "model.safetensors").exists()  # the cached, dequantized copy
    tok = load_tokenizer(cfg)
    model = load_causal_lm(cfg, "sdpa")
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    assert getattr(model, "hf_quantizer", None) is None  # trainable: no GGUF quantizer left
    batch = tok.apply_chat_template(
        [{"role": "user", "content": "Name a color."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    text = tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert out.shape[1] > batch["input_ids"].shape[1] and text.strip()


def test_tiny_model_has_chat_template_and_separate_pad(tiny_model: str) -> None:
    tok = load_tokenizer(ModelConfig(name_or_path=tiny_model))
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.pad_token_id != tok.eos_token_id


def test_unreachable_hub_id_says_what_to_do() -> None:
    with pytest.raises(ModelLoadError) as e:
        load_tokenizer(ModelConfig(name_or_path="some-org/some-model-that-is-not-here"))
    msg = str(e.value)
    assert "some-org/some-model-that-is-not-here" in msg and "local folder" in msg


def test_unknown_builtin_and_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown builtin model"):
        resolve_model_path("builtin:gpt-9")
    with pytest.raises(ModelLoadError, match="without config.json"):
        resolve_model_path(str(tmp_path))


def test_auto_attention_on_a_cpu_is_eager_for_short_sequences_and_sdpa_for_long_ones() -> None:
    from backends.core.spec.config import ModelConfig, TrainConfig
    from backends.worker.runtime import CPU_EAGER_MAX_LENGTH, resolve_runtime

    short = resolve_runtime(TrainConfig(device="cpu", max_length=256), ModelConfig(name_or_path="x"))
    assert short.attn_implementation == "eager"
    assert any(n.startswith("attention: eager (CPU, training") for n in short.notes)
    long = resolve_runtime(
        TrainConfig(device="cpu", max_length=CPU_EAGER_MAX_LENGTH + 1), ModelConfig(name_or_path="x")
    )
    assert long.attn_implementation == "sdpa"
    # a method that mostly generates keeps sdpa (eager generated 8-10 % slower)
    gen = resolve_runtime(
        TrainConfig(device="cpu", max_length=256), ModelConfig(name_or_path="x"), generates=True
    )
    assert gen.attn_implementation == "sdpa"
    # an explicit choice is kept
    chosen = resolve_runtime(
        TrainConfig(device="cpu", max_length=256), ModelConfig(name_or_path="x", attn_implementation="sdpa")
    )
    assert chosen.attn_implementation == "sdpa"
