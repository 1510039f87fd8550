"""Data selection by influence (LESS-style), the `select` stage: which rows of a candidate SFT
set (`data.dataset`) look, to the model's gradients, most like a small target set
(`select.target_dataset`, e.g. the embedded tasks' dev split, or a user file)?

With a warm-up adapter as the model (an earlier SFT stage's model/, `@warmup`), it computes
each candidate's and each target example's LoRA gradient, sketches it to `select.dim`
numbers (backends/worker/influence.py), scores a candidate by its mean cosine similarity to
the targets, and writes the top `select.fraction` as data/selected.jsonl (with an
`influence` column), every candidate with its score as data/scored.jsonl, and summary.json
(time, peak memory, the score distribution).
"""

from __future__ import annotations

import json
import resource
import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from backends.core.spec.params import DataPath, Params, ui
from backends.core.spec.registry import LANGUAGE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime


class SelectParams(Params):
    """Selection"""

    target_dataset: DataPath = Field(
        "builtin:tasks",
        title="Target set",
        description="What the selected data should help with: builtin:tasks (its dev split) or a file.",
        json_schema_extra=ui(main=True),
    )
    target_split: str = Field(
        "dev", title="Target split", description="dev: held-out topics, not the test prompts."
    )
    target_max_samples: int = Field(32, gt=0, title="Target examples")
    fraction: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        title="Keep share",
        description="Top share of candidates written out.",
        json_schema_extra=ui(main=True),
    )
    dim: int = Field(
        4096, ge=64, title="Sketch size", description="Numbers per gradient after the random projection."
    )
    aggregate: Literal["mean", "max"] = Field(
        "mean", title="Score by", description="Similarity to the targets: mean or max."
    )


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from backends.core.data.formats import load_converted, load_for_method
    from backends.core.runs.rundir import RunState, atomic_write_text
    from backends.core.spec.config import DataConfig
    from backends.worker.influence import GradientSketch, features
    from backends.worker.models import load_tokenizer, load_trainable_adapter
    from backends.worker.trainers import peft_config

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
    run.update_status(
        phase="gradients", total_steps=total, step=0, train_started_at=time.time(), first_step=0
    )
    print(
        f"select: {sketch.total:,} adapter weights sketched to {s.dim}; {len(candidates)} candidates, {len(targets)} targets",
        flush=True,
    )

    def progress(done: int, seconds: float, offset: int = 0) -> None:
        run.update_status(step=offset + done)
        run.append_metrics(
            {
                "step": offset + done,
                "time": time.time(),
                "split": "train",
                "seconds_per_example": seconds / done,
            }
        )

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


METHOD = MethodSpec(
    name="select",
    help="Data selection by influence (LESS-style): score an SFT set's rows by how their LoRA gradients align "
    "with a target set's, keep the top share.",
    run=train,
    formats=LANGUAGE,
    section="select",
    params=SelectParams,
    charts=("seconds_per_example",),
    resumable=False,
    outputs=("selected", "scored"),
    ignores=(
        "train.learning_rate",
        "train.max_steps",
        "train.num_train_epochs",
        "train.per_device_*",
        "train.gradient_*",
        "train.warmup_steps",
        "train.lr_scheduler_type",
        "train.weight_decay",
        "train.max_grad_norm",
        "train.eval_steps",
        "train.save_*",
        "train.logging_steps",
        "train.activation_checkpointing",
        "data.eval_fraction",
    ),
    order=107,
)
