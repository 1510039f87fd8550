"""SFT with TRL's SFTTrainer: chat template applied, loss on the completion only, LoRA or full."""

from __future__ import annotations

from backends.callbacks import RunDirCallback
from backends.config import RunConfig
from backends.data import load_for_method
from backends.methods.common import peft_config, run_and_save, trainer_kwargs
from backends.models import load_causal_lm, load_tokenizer
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from trl import SFTConfig, SFTTrainer

    train_ds, eval_ds = load_for_method("sft", cfg.data, cfg.train.eval_steps)
    print(f"data: {len(train_ds)} train rows, {len(eval_ds) if eval_ds else 0} eval rows", flush=True)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, rt.attn_implementation)
    args = SFTConfig(
        **trainer_kwargs(cfg, run, rt),
        max_length=cfg.train.max_length,
        completion_only_loss=cfg.sft.completion_only_loss,
        packing=cfg.sft.packing,
    )
    callback = RunDirCallback(run)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=[callback],
    )
    return run_and_save(trainer, cfg, run, callback, tokenizer)
