"""The `sample` stage: on-policy preference data from a model's own samples.

Generate `sample.num_samples` responses per prompt (batched), score each with the judge
(the checkers, a reward-model run, or a function), and write
  data/pairs.jsonl   best vs worst response where their scores differ (preference format)
  data/sft.jsonl     the best response when it scores >= sample.sft_threshold (rejection sampling)
  samples.jsonl      every response with its score
"""

from __future__ import annotations

import json
import time

from backends.config import RunConfig
from backends.data import load_for_method
from backends.generation import Generator
from backends.rewards import build_reward
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    s = cfg.sample
    ds, _ = load_for_method("sample", cfg.data, None)
    rows = list(ds)
    judge = build_reward(s.judge)
    gen = Generator(cfg.model, rt.device, rt.attn_implementation)
    total = (len(rows) + s.batch_size - 1) // s.batch_size
    run.update_status(phase="training", total_steps=total, step=0, train_started_at=time.time(), first_step=0)
    out_dir = run.path / "data"
    out_dir.mkdir(exist_ok=True)
    n_pairs = n_sft = 0
    with (
        open(out_dir / "pairs.jsonl", "w") as pairs,
        open(out_dir / "sft.jsonl", "w") as sft,
        open(run.samples_path, "a") as samples,
    ):
        for step, start in enumerate(range(0, len(rows), s.batch_size), 1):
            chunk = rows[start : start + s.batch_size]
            prompts = [r["prompt"] for r in chunk]
            outs = gen.generate(
                prompts, s.num_samples, s.max_new_tokens, s.temperature, s.batch_size, cfg.train.seed + step
            )
            flat_prompts = [p for p in prompts for _ in range(s.num_samples)]
            flat = [c for cs in outs for c in cs]
            extra = {
                k: [r[k] for r in chunk for _ in range(s.num_samples)] for k in chunk[0] if k != "prompt"
            }
            wrap = (
                (lambda t: [{"role": "assistant", "content": t}])
                if isinstance(prompts[0], list)
                else (lambda t: t)
            )
            scores = judge(flat_prompts, [wrap(c) for c in flat], **extra)
            best_scores = []
            for i, row in enumerate(chunk):
                group = list(zip(outs[i], scores[i * s.num_samples : (i + 1) * s.num_samples], strict=True))
                checker = {k: row[k] for k in ("constraints",) if k in row}
                for text, score in group:
                    samples.write(
                        json.dumps(
                            {
                                "step": step,
                                "prompt": row["prompt"],
                                "completion": text,
                                "reward": score,
                                "length": len(text.split()),
                                **checker,
                            }
                        )
                        + "\n"
                    )
                best, worst = max(group, key=lambda g: g[1]), min(group, key=lambda g: g[1])
                best_scores.append(best[1])
                keep = {k: v for k, v in row.items() if k not in ("prompt", "completion")}
                if best[1] > worst[1]:
                    pairs.write(
                        json.dumps(
                            {
                                "prompt": row["prompt"],
                                "chosen": wrap(best[0]),
                                "rejected": wrap(worst[0]),
                                **keep,
                            }
                        )
                        + "\n"
                    )
                    n_pairs += 1
                if best[1] >= s.sft_threshold:
                    sft.write(
                        json.dumps({"prompt": row["prompt"], "completion": wrap(best[0]), **keep}) + "\n"
                    )
                    n_sft += 1
            run.append_metrics(
                {
                    "step": step,
                    "time": time.time(),
                    "split": "train",
                    "reward": sum(scores) / len(scores),
                    "best_reward": sum(best_scores) / len(best_scores),
                    "pairs": n_pairs,
                    "sft_rows": n_sft,
                }
            )
            run.update_status(step=step, generation_engine=gen.engine)
            if run.stop_requested():
                return RunState.STOPPED
    print(f"sample: {n_pairs} pairs, {n_sft} best-of-{s.num_samples} SFT rows in {out_dir}", flush=True)
    return RunState.SUCCEEDED
