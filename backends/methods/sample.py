"""The `sample` stage: on-policy preference data from a model's own samples.

Generate `sample.num_samples` responses per prompt (batched), score each with the judge
(the checkers, a reward-model run, or a function), and write
  data/pairs.jsonl   best vs worst response where their scores differ (preference format)
  data/sft.jsonl     the best response when it scores >= sample.sft_threshold (rejection sampling)
  samples.jsonl      every response with its score
A pipeline refers to them as `@stage.pairs` and `@stage.sft`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import Params, RewardSpec, ui
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime


class SampleParams(Params):
    """Sampling"""

    num_samples: int = Field(4, ge=2, title="Samples per prompt", json_schema_extra=ui(main=True))
    max_new_tokens: int = Field(64, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(0.9, gt=0.0, title="Temperature")
    batch_size: int = Field(16, gt=0, title="Generation batch", description="Prompts per generate call.")
    judge: RewardSpec = Field(
        default_factory=RewardSpec,
        title="Judge",
        description="What scores each response: {kind: checkers} or {kind: reward_model, path: ...}",
        json_schema_extra=ui(main=True),
    )
    sft_threshold: float = Field(
        1.0,
        title="Best-of-N threshold",
        description="Best responses scoring at least this go to the SFT set.",
        json_schema_extra=ui(main=True),
    )


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from backends.core.data.formats import load_for_method
    from backends.core.runs.rundir import RunState
    from backends.worker.generation import Generator
    from backends.worker.rewards import build_reward

    s = cfg.sample
    ds, _ = load_for_method("sample", cfg.data, None)
    rows = list(ds)
    judge = build_reward(s.judge)
    gen = Generator(cfg.model, rt.device, rt.attn_implementation)
    total = (len(rows) + s.batch_size - 1) // s.batch_size
    run.update_status(phase="training", total_steps=total, step=0, train_started_at=time.time(), first_step=0)
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
            row = {"step": step, "time": time.time(), "split": "train", "reward": sum(scores) / len(scores)}
            row.update(best_reward=sum(best_scores) / len(best_scores), pairs=n_pairs, sft_rows=n_sft)
            run.append_metrics(row)
            run.update_status(step=step, generation_engine=gen.engine)
            if run.stop_requested():
                return RunState.STOPPED
    print(f"sample: {n_pairs} pairs, {n_sft} best-of-{s.num_samples} SFT rows in {run.data_dir}", flush=True)
    return RunState.SUCCEEDED


def _wrapper(prompt: Any) -> Any:
    """Answers to conversational prompts are conversations too."""
    if isinstance(prompt, list):
        return lambda t: [{"role": "assistant", "content": t}]
    return lambda t: t


METHOD = MethodSpec(
    name="sample",
    help="Sample N responses per prompt, score them with a judge, write best-vs-worst pairs and a "
    "best-of-N SFT set (on-policy preference data).",
    run=train,
    formats=PROMPTS,
    section="sample",
    params=SampleParams,
    charts=("reward", "best_reward", "pairs", "sft_rows"),
    resumable=False,
    keeps_columns=True,
    outputs=("pairs", "sft"),
    ignores=("train.*", "lora.*", "data.eval_fraction"),
    keeps=("train.seed", "train.device"),
    generates=True,
    trains=False,
    order=100,
)
