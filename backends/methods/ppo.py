"""PPO (InstructGPT's third stage), written here because TRL removed its PPOTrainer in 1.13:
rollouts, per-token KL to the reference, GAE with a value head, clipped updates. The
implementation is backends/worker/ppo.py; its settings are in the shared `rl` section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.spec.registry import PROMPTS, MethodSpec
from backends.methods.grpo import RLParams, kl_reference

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


def train(ctx: RunContext) -> RunState:
    from backends.worker.ppo import PPORunner

    return PPORunner(ctx).train()


METHOD = MethodSpec(
    name="ppo",
    help="PPO (InstructGPT): rollouts, per-token KL to the reference, GAE with a value head, clipped updates.",
    run=train,
    formats=PROMPTS,
    section="rl",
    params=RLParams,
    charts=("reward", "kl", "response_length", "loss/value", "entropy", "clipfrac"),
    keeps_columns=True,
    # The loop is written here: one optimizer step per minibatch, no scheduler, no eval split.
    ignores=(
        "train.warmup_steps",
        "train.lr_scheduler_type",
        "train.gradient_accumulation_steps",
        "train.max_length",
        "train.eval_steps",
        "train.per_device_eval_batch_size",
        "train.save_total_limit",
        "train.activation_checkpointing",
        "data.eval_fraction",
        "train.early_stopping_*",
        "train.metric_for_best_model",
    ),
    generates=True,
    reference_model=kl_reference,
    order=90,
)
