"""KTO with TRL's KTOTrainer: single responses labelled desirable or not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from backends.core.spec.params import Params, ui
from backends.core.spec.registry import MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


class KTOParams(Params):
    """KTO"""

    beta: float = Field(0.1, gt=0.0, title="KTO beta", json_schema_extra=ui(main=True))
    desirable_weight: float = Field(1.0, gt=0.0, title="Desirable weight")
    undesirable_weight: float = Field(1.0, gt=0.0, title="Undesirable weight")


def train(ctx: RunContext) -> RunState:
    from trl import KTOConfig, KTOTrainer

    from backends.worker.trainers import fit, prepare, trainer_kwargs

    inputs = prepare(ctx)
    cfg = ctx.cfg
    k = cfg.kto
    args = KTOConfig(
        **trainer_kwargs(ctx),
        max_length=cfg.train.max_length,
        beta=k.beta,
        desirable_weight=k.desirable_weight,
        undesirable_weight=k.undesirable_weight,
    )
    return fit(KTOTrainer, ctx, inputs, args)


METHOD = MethodSpec(
    name="kto",
    help="KTO: learns from single responses labelled good or bad (unpaired preferences).",
    run=train,
    formats=("unpaired_preference",),
    section="kto",
    params=KTOParams,
    charts=("loss", "rewards/chosen", "rewards/rejected", "kl"),
    multi_process=True,
    sequences_per_row=2,  # its KL term scores mismatched pairs: a second pass
    reference_model=lambda cfg: True,
    order=60,
)
