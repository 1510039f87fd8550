"""The `select` stage's work (backends/methods/select.py says what it does and writes); the
gradient sketch is backends/worker/influence.py."""

from __future__ import annotations

import json
import resource
import time

from backends.core.data.formats import load_converted, load_for_method
from backends.core.runs.rundir import RunState, atomic_write_text
from backends.core.spec.config import DataConfig
from backends.worker.context import RunContext
from backends.worker.influence import GradientSketch, features
from backends.worker.models import load_tokenizer, load_trainable_adapter
from backends.worker.trainers import peft_config


def select(ctx: RunContext) -> RunState:
    cfg, run, rt = ctx.cfg, ctx.run, ctx.runtime
    s, t0 = cfg.select, time.time()
    candidates = list(load_converted("sft", cfg.data)[0])
    split = s.target_split if s.target_dataset == "builtin:tasks" else "train"
    target_cfg = DataConfig(
        dataset=s.target_dataset, split=split, max_samples=s.target_max_samples, eval_fraction=0.0
    )
    targets = list(load_for_method("sft", target_cfg, None)[0])
    tok = load_tokenizer(cfg.model)
    model = load_trainable_adapter(cfg.model, peft_config(cfg), rt.attn_implementation)
    model.eval()  # dropout off: a row's gradient is the same every time (gradients still flow)
    sketch = GradientSketch(model, s.dim, cfg.train.seed)
    total = len(candidates) + len(targets)
    ctx.progress.begin("gradients", total)
    print(
        f"select: {sketch.total:,} adapter weights sketched to {s.dim}; {len(candidates)} candidates, {len(targets)} targets",
        flush=True,
    )

    def progress(done: int, seconds: float, offset: int = 0) -> None:
        ctx.progress.step(offset + done, {"seconds_per_example": seconds / done})

    target_f, _ = features(sketch, tok, targets, cfg.train.max_length)
    cand_f, used = features(
        sketch, tok, candidates, cfg.train.max_length, lambda d, sec: progress(d, sec, len(targets))
    )
    sims = cand_f @ target_f.T
    scores = (sims.mean(1) if s.aggregate == "mean" else sims.max(1).values).tolist()
    order = sorted(range(len(used)), key=lambda i: -scores[i])
    keep = order[: max(1, round(s.fraction * len(candidates)))]
    run.data_dir.mkdir(exist_ok=True)
    scored = [{**candidates[used[i]], "influence": scores[i]} for i in range(len(used))]
    with open(run.data_path("scored"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in scored)
    with open(run.data_path("selected"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(scored[i]) + "\n" for i in keep)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "candidates": len(candidates),
        "scored": len(used),
        "targets": len(targets),
        "selected": len(keep),
        "seconds": time.time() - t0,
        "peak_rss_mb": peak_mb,
        "adapter_weights": sketch.total,
        "dim": s.dim,
        "scores": scores,
        "selected_mean": sum(scores[i] for i in keep) / len(keep),
        "all_mean": sum(scores) / len(scores),
    }
    atomic_write_text(run.summary_path, json.dumps(summary, indent=2))
    print(
        f"select: kept {len(keep)} of {len(candidates)} in {summary['seconds']:.0f} s, peak {peak_mb:.0f} MB",
        flush=True,
    )
    return RunState.SUCCEEDED
