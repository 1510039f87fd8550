"""SimPO with TRL's CPOTrainer and the `simpo` loss: length-normalised log-prob margin with a
target gap, no reference model. Settings in the shared `dpo` section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PREFERENCE, MethodSpec
from backends.methods.dpo import PREFERENCE_CHARTS, DPOParams, fit_preference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    return fit_preference(
        cfg, run, rt, CPOTrainer, CPOConfig, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.dpo.simpo_gamma
    )


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
