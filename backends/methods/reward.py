"""Reward model with TRL's RewardTrainer: a scalar head trained so chosen scores above rejected."""

from __future__ import annotations

from backends.callbacks import RunDirCallback
from backends.config import RunConfig
from backends.data import load_for_method
from backends.methods.common import peft_config, run_and_save, trainer_kwargs
from backends.models import load_sequence_classifier, load_tokenizer
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from trl import RewardConfig, RewardTrainer

    train_ds, eval_ds = load_for_method("reward", cfg.data, cfg.train.eval_steps)
    tokenizer = load_tokenizer(cfg.model)
    model = load_sequence_classifier(cfg.model, rt.attn_implementation, tokenizer.pad_token_id)
    args = RewardConfig(
        **trainer_kwargs(cfg, run, rt),
        max_length=cfg.train.max_length,
        center_rewards_coefficient=cfg.reward.center_rewards_coefficient,
    )
    check_lengths(train_ds, tokenizer, cfg.train.max_length)
    callback = RunDirCallback(run)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(cfg, "SEQ_CLS"),
        callbacks=[callback],
    )
    return run_and_save(trainer, cfg, run, callback, tokenizer)


def check_lengths(ds, tokenizer, max_length: int) -> None:
    """RewardTrainer drops pairs longer than max_length instead of truncating (TRL 1.16);
    say how many, and refuse when none would be left."""
    n = min(len(ds), 200)

    def length(msgs) -> int:
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
