"""ORPO with TRL's ORPOTrainer: SFT loss plus an odds-ratio preference term, no reference model.
`dpo.beta` is ORPO's lambda."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PREFERENCE, MethodSpec
from backends.methods.dpo import DPOParams, fit_preference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


def train(ctx: RunContext) -> RunState:
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return fit_preference(ctx, ORPOTrainer, ORPOConfig)


METHOD = MethodSpec(
    name="orpo",
    help="ORPO: SFT loss plus an odds-ratio preference term; no reference model.",
    run=train,
    formats=PREFERENCE,
    section="dpo",
    params=DPOParams,
    charts=("loss", "nll_loss", "log_odds_ratio", "rewards/accuracies"),
    multi_process=True,
    sequences_per_row=2,
    order=50,
)
