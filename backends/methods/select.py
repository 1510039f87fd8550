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

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from backends.core.spec.params import DataPath, Params, ui
from backends.core.spec.registry import LANGUAGE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


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


def train(ctx: RunContext) -> RunState:
    from backends.worker.select import select

    return select(ctx)


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
