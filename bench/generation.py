"""Generation tokens/s at batch 1, 8 and 32: the studio's Generator vs plain batched
`generate`, in fp32 and bf16 weights, interleaved; prints JSON.

    python bench/generation.py [--new-tokens 64] [--batches 1,8,32] [--rounds 2]

Plain = `AutoModelForCausalLM.from_pretrained(...).generate(...)` on left-padded prompts, the
way a short script would do it. Studio = `backends.worker.generation.Generator` (what the
sample stage and the Arena use), which picks its dtype itself and logs engine/dtype/batch.
Both sample at temperature 1 with a fixed seed and a fixed number of new tokens (no early
stop: `min_new_tokens` = `max_new_tokens`) so both generate the same number of tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402


def prompts(n: int) -> list[Any]:
    from backends.core.tasks.taskgen import generate_tasks

    tasks = generate_tasks("heldout", n, seed=3)
    return [[{"role": "user", "content": t.prompt}] for t in tasks]


def plain(model: Any, tok: Any, batch: list[Any], new: int) -> int:
    import torch

    tok.padding_side = "left"
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **enc, do_sample=True, max_new_tokens=new, min_new_tokens=new, pad_token_id=tok.pad_token_id
        )
    return int((out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--studio-attn", default="eager,sdpa", help="the studio's attention, one Generator each")
    args = ap.parse_args()
    load_before = load_avg()

    import torch
    from transformers import AutoModelForCausalLM

    from backends.core.spec.config import ModelConfig
    from backends.worker.generation import Generator
    from backends.worker.models import load_tokenizer, resolve_model_path

    path = resolve_model_path("builtin:smollm2-135m-instruct")
    tok = load_tokenizer(ModelConfig())
    batches = [int(b) for b in args.batches.split(",")]
    rows: list[dict[str, Any]] = []
    models = {
        d: AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, d)) for d in args.dtypes.split(",")
    }
    studios = {a: Generator(ModelConfig(), "cpu", a) for a in args.studio_attn.split(",")}
    for studio in studios.values():
        studio.model.generation_config.min_new_tokens = args.new_tokens  # the same token count as plain
    ps = prompts(max(batches))
    for rnd in range(args.rounds):
        for b in batches:
            for dtype, model in models.items():  # plain, one per dtype
                torch.manual_seed(rnd)
                t0 = time.perf_counter()
                n = plain(model, tok, ps[:b], args.new_tokens)
                rows.append(
                    {
                        "system": f"plain-{dtype}",
                        "batch": b,
                        "round": rnd,
                        "tok_s": n / (time.perf_counter() - t0),
                    }
                )
            for attn, studio in studios.items():
                t0 = time.perf_counter()
                studio.generate(ps[:b], 1, args.new_tokens, 1.0, b, seed=rnd)
                dt = time.perf_counter() - t0
                rows.append(
                    {
                        "system": f"studio-{studio.dtype}-{attn}",
                        "batch": b,
                        "round": rnd,
                        "tok_s": b * args.new_tokens / dt,
                    }
                )
    summary: dict[str, dict[str, float]] = {}
    for r in rows:
        summary.setdefault(r["system"], {}).setdefault(str(r["batch"]), 0.0)
        summary[r["system"]][str(r["batch"])] += r["tok_s"] / args.rounds
    print(
        json.dumps(
            {
                "new_tokens": args.new_tokens,
                "threads": torch.get_num_threads(),
                "mean_tokens_per_s": {k: {b: round(v, 1) for b, v in d.items()} for k, d in summary.items()},
                "runs": [{**r, "tok_s": round(r["tok_s"], 1)} for r in rows],
                "studio_engine": {"engine": studio.engine, "dtype": studio.dtype, "why": studio.why},
                "studio_attention": list(studios),
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_avg(),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
