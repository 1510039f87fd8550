"""What the TRL-based methods share: trainer arguments, LoRA config, and one `fit` that builds
the trainer with the run-directory callback, trains (resuming if asked) and saves."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec.config import RunConfig
from backends.worker.callbacks import EarlyStop, RunDirCallback
from backends.worker.context import RunContext
from backends.worker.runtime import Runtime


def trainer_kwargs(ctx: RunContext) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config (they all extend TrainingArguments)."""
    cfg, run, rt = ctx.cfg, ctx.run, ctx.runtime
    t = cfg.train
    multi: dict[str, Any] = {}
    if ctx.plan.processes > 1:
        # LoRA leaves most parameters frozen; DDP's unused-parameter search only costs time.
        multi = dict(ddp_find_unused_parameters=False, ddp_backend="gloo" if rt.device == "cpu" else None)
    return dict(
        output_dir=str(run.checkpoints_dir),
        learning_rate=t.learning_rate,
        max_steps=t.max_steps,
        num_train_epochs=t.num_train_epochs,
        # `launch.processes: auto` splits the preset's batch over the processes (processes.py).
        per_device_train_batch_size=ctx.plan.per_device_batch,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if t.eval_steps else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        # TRL configs default to bf16=True, which fails on a CPU unless use_cpu is set.
        bf16=rt.bf16,
        use_cpu=rt.device == "cpu",
        activation_checkpointing=t.activation_checkpointing,
        report_to=list(t.report_to) or "none",
        disable_tqdm=True,  # progress lives in status.json / metrics.jsonl, not in the log
        dataloader_num_workers=0,
        **early_stopping_kwargs(cfg),
        **multi,
    )


def early_stopping_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """With early stopping the best checkpoint becomes the model (the config check made sure
    there is an eval split and a checkpoint at the evaluations)."""
    t = cfg.train
    if t.early_stopping_patience is None:
        return {}
    return dict(load_best_model_at_end=True, metric_for_best_model=t.metric_for_best_model)


def early_stopping(cfg: RunConfig) -> EarlyStop | None:
    t = cfg.train
    if t.early_stopping_patience is None:
        return None
    return EarlyStop(t.early_stopping_patience, t.early_stopping_threshold, t.metric_for_best_model)


def peft_config(cfg: RunConfig, task_type: str = "CAUSAL_LM") -> Any:
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type=task_type,
    )


def score_labelled_positions_only(device: str) -> None:
    """Make TRL's fused LM head score only the positions that carry a label on the CPU.

    TRL 1.16 (`trl/trainer/utils.py`, `add_fused_lm_head`) projects only labelled positions
    through the 49k-word LM head on Triton devices, but every position elsewhere, so that
    Neuron does not recompile for each new shape. A CPU compiles nothing, and with the loss on
    the completion only most positions are prompt: scoring them all made the LM head about a
    third of an SFT step (bench/profile_step.py, docs/BENCHMARKS.md). The result is the same
    (the other positions are masked out of the loss and the metrics either way)."""
    if device != "cpu":
        return
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    if getattr(original, "studio_cpu_compact", False):
        return

    def compact_on_cpu(dev: Any) -> bool:
        return dev.type == "cpu" or original(dev)

    compact_on_cpu.studio_cpu_compact = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact_on_cpu


@dataclass
class Inputs:
    """What a TRL trainer starts from: the method's datasets, the tokenizer and the model."""

    train: Any
    eval: Any
    tokenizer: Any
    model: Any


def prepare(ctx: RunContext, *, reward_head: bool = False) -> Inputs:
    """Load the datasets in the method's format (refused with a clear error otherwise), the
    tokenizer and the model: a causal LM, or with `reward_head` its backbone plus a scalar head."""
    from backends.core.data.formats import load_for_method
    from backends.worker.models import load_policy, load_sequence_classifier, load_tokenizer

    cfg, rt = ctx.cfg, ctx.runtime
    score_labelled_positions_only(rt.device)
    train_ds, eval_ds = load_for_method(cfg.method, cfg.data, cfg.train.eval_steps)
    if ctx.main_process:
        print(f"data: {len(train_ds)} train rows, {len(eval_ds) if eval_ds else 0} eval rows", flush=True)
    tokenizer = load_tokenizer(cfg.model)
    # A new head (the reward model's score) is drawn when the model loads, before the trainer
    # seeds: without this it differed from run to run and from rank to rank, and `train.seed`
    # did not reproduce a reward model.
    from transformers import set_seed

    set_seed(cfg.train.seed)
    if reward_head:
        model = load_sequence_classifier(cfg.model, rt.attn_implementation, tokenizer.pad_token_id)
    else:
        model = load_policy(cfg.model, rt.attn_implementation)
    return Inputs(train_ds, eval_ds, tokenizer, model)


def fit(
    trainer_cls: Any,
    ctx: RunContext,
    inputs: Inputs,
    args: Any,
    *,
    peft_task: str = "CAUSAL_LM",
    callbacks: list[Any] | None = None,
    before_train: Callable[[Any], None] | None = None,
    **trainer_args: Any,
) -> RunState:
    """Build a TRL trainer with the run-directory callback, train, save model/, return the state.
    `before_train(trainer)` may adjust the built trainer (the RL methods' rollouts)."""
    callback = RunDirCallback(ctx.progress)
    stopper = early_stopping(ctx.cfg)
    trainer = trainer_cls(
        model=inputs.model,
        args=args,
        train_dataset=inputs.train,
        eval_dataset=inputs.eval,
        processing_class=inputs.tokenizer,
        peft_config=peft_config(ctx.cfg, peft_task),
        callbacks=[callback, *([stopper] if stopper else []), *(callbacks or [])],
        **trainer_args,
    )
    if before_train is not None:
        before_train(trainer)
    return run_and_save(trainer, ctx, callback, inputs.tokenizer, stopper)


def run_and_save(
    trainer: Any,
    ctx: RunContext,
    callback: RunDirCallback,
    tokenizer: Any,
    stopper: EarlyStop | None = None,
) -> RunState:
    """Train (resuming if asked), save the final model or adapter to model/, return the state.
    A run stopped by its early-stopping rule succeeded; its status says where and why."""
    run = ctx.run
    trainer.train(resume_from_checkpoint=ctx.cfg.resume_from)
    if ctx.main_process and stopper is not None and stopper.stopped is not None:
        best = trainer.state.best_model_checkpoint
        run.update_status(early_stop={**stopper.stopped, "best_checkpoint": best})
    ctx.progress.phase("saving")
    trainer.save_model(str(run.model_dir))  # every rank calls it (FSDP / ZeRO gather); rank 0 writes
    if ctx.main_process:
        tokenizer.save_pretrained(str(run.model_dir))
    return RunState.STOPPED if callback.stopped else RunState.SUCCEEDED


def use_vllm(rt: Runtime) -> bool:
    """vLLM for GRPO / RLOO generation when on a GPU and installed; the log says which."""
    if rt.device != "cuda":
        return False
    if importlib.util.find_spec("vllm") is None:
        print("generation: vLLM is not installed, using transformers generate", flush=True)
        return False
    print("generation: vLLM (colocate mode)", flush=True)
    return True


TRACKER_PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "mlflow": "mlflow"}


def configure_trackers(report_to: list[str], run: RunDir) -> None:
    """Refuse a tracker that is not installed (before any model loads), and point the local
    ones at the run folder unless the environment already says where they log."""
    missing = [t for t in report_to if importlib.util.find_spec(TRACKER_PACKAGES[t]) is None]
    if missing:
        raise ValueError(
            f"`train.report_to` names {missing} but the package is not installed here: "
            f"`pip install {' '.join(TRACKER_PACKAGES[t] for t in missing)}`, or remove it from the preset"
        )
    import os

    if "tensorboard" in report_to:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run.path / "tensorboard"))
    if "mlflow" in report_to:
        os.environ.setdefault("MLFLOW_TRACKING_URI", (run.path / "mlruns").as_uri())
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "alignment-studio")
    for t in report_to:
        print(f"runtime: also reporting to {t}", flush=True)
