"""RLOO with TRL's RLOOTrainer: REINFORCE with a leave-one-out baseline over the group of
samples. Settings in the shared `rl` section (see grpo.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PROMPTS, MethodSpec
from backends.methods.grpo import RL_CHARTS, RLParams, check_group, fit_group, kl_reference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


def train(ctx: RunContext) -> RunState:
    from trl import RLOOConfig, RLOOTrainer

    return fit_group(ctx, RLOOTrainer, RLOOConfig)


METHOD = MethodSpec(
    name="rloo",
    help="RLOO: REINFORCE with a leave-one-out baseline over the group of samples.",
    run=train,
    formats=PROMPTS,
    section="rl",
    params=RLParams,
    charts=RL_CHARTS,
    keeps_columns=True,
    ignores=("train.max_length", "train.early_stopping_*", "train.metric_for_best_model"),
    check=check_group,
    generates=True,
    multi_process=True,
    reference_model=kl_reference,
    order=80,
)
