"""SimPO with TRL's CPOTrainer and the `simpo` loss: length-normalised log-prob margin with a
target gap, no reference model. Settings in the shared `dpo` section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PREFERENCE, MethodSpec
from backends.methods.dpo import PREFERENCE_CHARTS, DPOParams, fit_preference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


def train(ctx: RunContext) -> RunState:
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    gamma = ctx.cfg.dpo.simpo_gamma
    return fit_preference(ctx, CPOTrainer, CPOConfig, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=gamma)


METHOD = MethodSpec(
    name="simpo",
    help="SimPO: length-normalised log-prob margin with a target gap; no reference model.",
    run=train,
    formats=PREFERENCE,
    section="dpo",
    params=DPOParams,
    charts=PREFERENCE_CHARTS,
    multi_process=True,
    sequences_per_row=2,
    order=40,
)
