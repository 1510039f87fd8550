"""KTO with TRL's KTOTrainer: single responses labelled desirable or not."""

from __future__ import annotations

from backends.callbacks import RunDirCallback
from backends.config import RunConfig
from backends.data import load_for_method
from backends.methods.common import peft_config, run_and_save, trainer_kwargs
from backends.models import load_causal_lm, load_tokenizer
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from trl import KTOConfig, KTOTrainer

    train_ds, eval_ds = load_for_method("kto", cfg.data, cfg.train.eval_steps)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, rt.attn_implementation)
    args = KTOConfig(
        **trainer_kwargs(cfg, run, rt),
        max_length=cfg.train.max_length,
        beta=cfg.kto.beta,
        desirable_weight=cfg.kto.desirable_weight,
        undesirable_weight=cfg.kto.undesirable_weight,
    )
    callback = RunDirCallback(run)
    trainer = KTOTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=[callback],
    )
    return run_and_save(trainer, cfg, run, callback, tokenizer)
