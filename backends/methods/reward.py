"""Reward model with TRL's RewardTrainer: a scalar head trained so chosen scores above rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from backends.core.spec.params import DataPath, Params, ui
from backends.core.spec.registry import PREFERENCE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


class RewardParams(Params):
    """Reward model"""

    center_rewards_coefficient: float | None = Field(
        None,
        ge=0.0,
        title="Center rewards coef.",
        description="Pull the mean reward toward 0 (Eisenstein et al. 2023); empty: off.",
        json_schema_extra=ui(main=True),
    )
    eval_dataset: DataPath | None = Field(
        None,
        title="Held-out preference set",
        description="Scored after training: pair accuracy overall and by category (a `category` column, or the "
        "embedded tasks' constraint kinds). builtin:tasks: the embedded held-out topics. Empty: none.",
    )
    eval_split: str | None = Field(
        None, title="Held-out split", description="Empty: `heldout` for builtin:tasks, else `train`."
    )
    eval_max_samples: int = Field(200, gt=0, title="Held-out pairs", description="Pairs to score at most.")
    weighting: Literal["none", "per_prompt"] = Field(
        "none",
        title="Pair weighting",
        description="per_prompt: a prompt's pairs share one weight, so the C(K,2) pairs of a ranking of "
        "K answers count as much as a single pair (InstructGPT); none: every pair counts the same.",
    )


def train(ctx: RunContext) -> RunState:
    from trl import RewardConfig, RewardTrainer

    from backends.core.runs.rundir import RunState
    from backends.worker.rm_eval import eval_source, evaluate
    from backends.worker.trainers import fit, prepare, trainer_kwargs

    cfg, run = ctx.cfg, ctx.run
    inputs = prepare(ctx, reward_head=True)
    check_lengths(inputs.train, inputs.tokenizer, cfg.train.max_length)
    args = RewardConfig(
        **trainer_kwargs(ctx),
        max_length=cfg.train.max_length,
        center_rewards_coefficient=cfg.reward.center_rewards_coefficient,
    )
    trainer_cls: Any = RewardTrainer
    if cfg.reward.weighting == "per_prompt":
        # TRL 1.16's RewardTrainer has no per-example weight: a subclass weighs the loss.
        from backends.worker.weighted_reward import WeightedRewardTrainer, with_prompt_weights

        inputs.train = with_prompt_weights(inputs.train, "train")
        if inputs.eval is not None:
            inputs.eval = with_prompt_weights(inputs.eval, "eval")
        trainer_cls = WeightedRewardTrainer
    state = fit(trainer_cls, ctx, inputs, args, peft_task="SEQ_CLS")
    source = eval_source(cfg)
    # the main process alone: it saved model/ and is the one writer of metrics.jsonl
    if source is not None and state == RunState.SUCCEEDED and ctx.main_process:
        ctx.progress.phase("evaluating")
        evaluate(cfg, run, source, run.read_status().get("step") or 0)
    return state


def check_lengths(ds: Any, tokenizer: Any, max_length: int) -> None:
    """RewardTrainer drops pairs longer than max_length instead of truncating (TRL 1.16);
    say how many, and refuse when none would be left."""
    n = min(len(ds), 200)

    def length(msgs: Any) -> int:
        if isinstance(msgs, list):
            return len(tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=False))
        return len(tokenizer(msgs)["input_ids"])

    too_long = 0
    for row in ds.select(range(n)):
        prompt = row.get("prompt") or ([] if isinstance(row["chosen"], list) else "")
        longest = max(length(prompt + row["chosen"]), length(prompt + row["rejected"]))
        too_long += longest > max_length
    if too_long == n:
        raise ValueError(
            f"every checked pair is longer than `train.max_length` ({max_length} tokens) and RewardTrainer "
            "drops such pairs instead of truncating them; raise `train.max_length`"
        )
    if too_long:
        print(
            f"data: about {100 * too_long / n:.0f}% of pairs exceed max_length={max_length} and will be "
            "dropped by RewardTrainer",
            flush=True,
        )


METHOD = MethodSpec(
    name="reward",
    help="Reward model: a scalar head learns to score chosen above rejected (Bradley-Terry loss).",
    run=train,
    formats=PREFERENCE,
    section="reward",
    params=RewardParams,
    charts=("loss", "accuracy", "margin", "heldout_pair_accuracy"),
    multi_process=True,
    sequences_per_row=2,
    logits="none",
    scores_answers=True,
    order=20,
)
