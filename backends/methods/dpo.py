"""The DPO family. `dpo`: TRL DPOTrainer with `dpo.loss_type` (sigmoid = DPO, ipo, robust,
hinge, ...). `simpo`: TRL's CPOTrainer with the simpo loss. `orpo`: TRL's ORPOTrainer.

With LoRA, DPO's reference model is the policy with its adapter disabled, not a second copy
(TRL does this when it receives a PEFT model and no ref_model). SimPO and ORPO need none.
"""

from __future__ import annotations

from backends.callbacks import RunDirCallback
from backends.config import RunConfig
from backends.data import load_for_method
from backends.methods.common import peft_config, run_and_save, trainer_kwargs
from backends.models import load_causal_lm, load_tokenizer
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    train_ds, eval_ds = load_for_method(cfg.method, cfg.data, cfg.train.eval_steps)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, rt.attn_implementation)
    common = dict(**trainer_kwargs(cfg, run, rt), max_length=cfg.train.max_length, beta=cfg.dpo.beta)
    if cfg.method == "dpo":
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer

        args = Config(**common, loss_type=[cfg.dpo.loss_type], label_smoothing=cfg.dpo.label_smoothing)
    elif cfg.method == "simpo":
        from trl.experimental.cpo import CPOConfig as Config
        from trl.experimental.cpo import CPOTrainer as Trainer

        args = Config(**common, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.dpo.simpo_gamma)
    elif cfg.method == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config
        from trl.experimental.orpo import ORPOTrainer as Trainer

        args = Config(**common)
    else:
        raise ValueError(f"`method` {cfg.method!r} is not in the DPO family")
    callback = RunDirCallback(run)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=[callback],
    )
    return run_and_save(trainer, cfg, run, callback, tokenizer)
