"""DPO and its losses with TRL's DPOTrainer (`dpo.loss_type`: sigmoid = DPO, ipo, robust, hinge, ...).

With LoRA, the reference model is the policy with its adapter disabled, not a second copy
(TRL does this when it receives a PEFT model and no ref_model). The `dpo` section is shared
with SimPO (simpo.py) and ORPO (orpo.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from backends.core.spec.params import Params, ui
from backends.core.spec.registry import PREFERENCE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext

DPOLoss = Literal[
    "sigmoid",
    "ipo",
    "robust",
    "hinge",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
]
PREFERENCE_CHARTS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")


class DPOParams(Params):
    """Preference optimisation"""

    beta: float = Field(
        0.1,
        gt=0.0,
        title="beta",
        description="DPO: KL strength; IPO: regulariser; SimPO: reward scale; ORPO: lambda.",
        json_schema_extra=ui(main=True),
    )
    loss_type: DPOLoss = Field(
        "sigmoid",
        title="Loss",
        description="sigmoid = DPO, ipo = IPO, robust, hinge, ...",
        json_schema_extra=ui(main=True, only=("dpo",)),
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        title="Label smoothing",
        description="Assumed label noise (robust / cDPO).",
        json_schema_extra=ui(only=("dpo",)),
    )
    simpo_gamma: float = Field(
        0.5,
        ge=0.0,
        title="SimPO margin (gamma)",
        description="Target reward margin.",
        json_schema_extra=ui(main=True, only=("simpo",)),
    )


def fit_preference(ctx: RunContext, trainer_cls: Any, config_cls: Any, **extra: Any) -> RunState:
    """The DPO family's shared path: data, model, TRL config (with `extra`), train, save."""
    from backends.worker.trainers import fit, prepare, trainer_kwargs

    inputs = prepare(ctx)
    cfg = ctx.cfg
    args = config_cls(**trainer_kwargs(ctx), max_length=cfg.train.max_length, beta=cfg.dpo.beta, **extra)
    return fit(trainer_cls, ctx, inputs, args)


def train(ctx: RunContext) -> RunState:
    from trl import DPOConfig, DPOTrainer

    d = ctx.cfg.dpo
    return fit_preference(
        ctx, DPOTrainer, DPOConfig, loss_type=[d.loss_type], label_smoothing=d.label_smoothing
    )


METHOD = MethodSpec(
    name="dpo",
    help="Direct Preference Optimization and its losses (dpo.loss_type: sigmoid = DPO, ipo, robust, hinge, ...): "
    "learn from pairs against a frozen reference, no reward model.",
    run=train,
    formats=PREFERENCE,
    section="dpo",
    params=DPOParams,
    charts=PREFERENCE_CHARTS,
    multi_process=True,
    sequences_per_row=2,
    reference_model=lambda cfg: True,
    order=30,
)
