"""SFT with TRL's SFTTrainer: chat template applied, loss on the completion only, LoRA or full."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from backends.core.spec.params import Params, ui
from backends.core.spec.registry import LANGUAGE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


class SFTParams(Params):
    """SFT"""

    completion_only_loss: bool = Field(
        True,
        title="Loss on completion only",
        description="Loss on the completion only (prompt-completion data).",
        json_schema_extra=ui(main=True),
    )
    packing: bool = Field(False, title="Packing", description="Pack several sequences into one row.")
    padding_free: bool | Literal["auto"] = Field(
        "auto",
        title="Padding-free batches",
        description="Join a batch's rows into one sequence instead of padding them (same loss, no compute "
        "on padding). auto: on with flash-attention (GPU), where it is faster; true: also with sdpa, after "
        "checking on the model that joined rows stay apart.",
    )


def train(ctx: RunContext) -> RunState:
    from trl import SFTConfig, SFTTrainer

    from backends.worker import padding_free
    from backends.worker.trainers import fit, prepare, trainer_kwargs

    cfg = ctx.cfg
    inputs = prepare(ctx)
    free, line = padding_free.decide(
        cfg.sft.padding_free,
        cfg.sft.packing,
        ctx.plan.per_device_batch,
        inputs.model,
        ctx.runtime.attn_implementation,
    )
    if ctx.main_process:
        print(line, flush=True)
    args = SFTConfig(
        **trainer_kwargs(ctx),
        max_length=cfg.train.max_length,
        completion_only_loss=cfg.sft.completion_only_loss,
        packing=cfg.sft.packing,
    )
    return fit(padding_free.trainer_class(SFTTrainer) if free else SFTTrainer, ctx, inputs, args)


METHOD = MethodSpec(
    name="sft",
    help="Supervised fine-tuning: imitate prompt -> completion pairs (loss on the completion only).",
    run=train,
    formats=LANGUAGE,
    section="sft",
    params=SFTParams,
    charts=("loss", "mean_token_accuracy", "learning_rate", "grad_norm"),
    multi_process=True,
    cpu_auto_multi=True,
    logits="chunked",  # TRL 1.16 SFT's fused LM head: no full logits tensor
    order=10,
)
