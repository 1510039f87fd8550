"""The `sample` stage's work (backends/methods/sample.py says what it does and writes)."""

from __future__ import annotations

import json
from typing import Any

from backends.core.data.formats import load_for_method
from backends.core.runs.rundir import RunState
from backends.worker.context import RunContext
from backends.worker.generation import Generator, server_pool
from backends.worker.rewards import build_reward


def sample(ctx: RunContext) -> RunState:
    cfg, run, rt, progress = ctx.cfg, ctx.run, ctx.runtime, ctx.progress
    s = cfg.sample
    ds, _ = load_for_method("sample", cfg.data, None)
    rows = list(ds)
    judge = build_reward(s.judge)
    gen = Generator(cfg.model, rt.device, rt.attn_implementation, server_pool(s.warm))
    total = (len(rows) + s.batch_size - 1) // s.batch_size
    progress.begin("sampling", total)
    run.data_dir.mkdir(exist_ok=True)
    n_pairs = n_sft = 0
    with (
        open(run.data_path("pairs"), "w") as pairs,
        open(run.data_path("sft"), "w") as sft,
        open(run.samples_path, "a") as samples,
    ):
        for step, start in enumerate(range(0, len(rows), s.batch_size), 1):
            chunk = rows[start : start + s.batch_size]
            prompts = [r["prompt"] for r in chunk]
            outs = gen.generate(
                prompts, s.num_samples, s.max_new_tokens, s.temperature, s.batch_size, cfg.train.seed + step
            )
            wrap = _wrapper(prompts[0])
            flat_prompts = [p for p in prompts for _ in range(s.num_samples)]
            extra = {
                k: [r[k] for r in chunk for _ in range(s.num_samples)] for k in chunk[0] if k != "prompt"
            }
            scores = judge(flat_prompts, [wrap(c) for cs in outs for c in cs], **extra)
            best_scores = []
            for i, row in enumerate(chunk):
                group = list(zip(outs[i], scores[i * s.num_samples : (i + 1) * s.num_samples], strict=True))
                checker = {k: row[k] for k in ("constraints",) if k in row}
                for text, score in group:
                    line = {"step": step, "prompt": row["prompt"], "completion": text, "reward": score}
                    samples.write(json.dumps({**line, "length": len(text.split()), **checker}) + "\n")
                best, worst = max(group, key=lambda g: g[1]), min(group, key=lambda g: g[1])
                best_scores.append(best[1])
                keep = {k: v for k, v in row.items() if k not in ("prompt", "completion")}
                if best[1] > worst[1]:
                    pair = {
                        "prompt": row["prompt"],
                        "chosen": wrap(best[0]),
                        "rejected": wrap(worst[0]),
                        **keep,
                    }
                    pairs.write(json.dumps(pair) + "\n")
                    n_pairs += 1
                if best[1] >= s.sft_threshold:
                    sft.write(
                        json.dumps({"prompt": row["prompt"], "completion": wrap(best[0]), **keep}) + "\n"
                    )
                    n_sft += 1
            for f in (pairs, sft, samples):
                f.flush()
            metrics = {
                "reward": sum(scores) / len(scores),
                "best_reward": sum(best_scores) / len(best_scores),
            }
            progress.step(
                step, {**metrics, "pairs": n_pairs, "sft_rows": n_sft}, generation_engine=gen.engine
            )
            if progress.should_stop():
                return RunState.STOPPED
    print(f"sample: {n_pairs} pairs, {n_sft} best-of-{s.num_samples} SFT rows in {run.data_dir}", flush=True)
    return RunState.SUCCEEDED


def _wrapper(prompt: Any) -> Any:
    """Answers to conversational prompts are conversations too."""
    if isinstance(prompt, list):
        return lambda t: [{"role": "assistant", "content": t}]
    return lambda t: t
