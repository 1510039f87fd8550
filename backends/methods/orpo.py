"""ORPO with TRL's ORPOTrainer: SFT loss plus an odds-ratio preference term, no reference model.
`dpo.beta` is ORPO's lambda."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PREFERENCE, MethodSpec
from backends.methods.dpo import DPOParams, fit_preference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return fit_preference(cfg, run, rt, ORPOTrainer, ORPOConfig)


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
