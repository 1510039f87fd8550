"""The common sections of every run config (`model`, `lora`, `data`, `train`, `launch`), in the
Train form's order, and the embedded defaults' names. backends/core/spec/config.py builds the run
config from them and the methods' own sections. No torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from backends.core.spec.layout_fields import LayoutName, layout_fields
from backends.core.spec.params import ConfigFile, DataPath, ModelPath, Params, ui

EMBEDDED_MODEL = "builtin:smollm2-135m-instruct"
TINY_MODEL = "builtin:tiny-llama"
EMBEDDED_DATA = "builtin:tasks"
PIPELINE_HELP = "A pipeline of stages (e.g. SFT -> reward model -> PPO), each stage its own run."


class ModelConfig(Params):
    """Model"""

    name_or_path: ModelPath = Field(
        EMBEDDED_MODEL,
        min_length=1,
        title="Model",
        description="builtin:smollm2-135m-instruct (embedded), a local folder, a run's model/ folder, or a hub id.",
        json_schema_extra=ui(main=True),
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", title="Weight dtype", description="`auto` is float32 on CPU (bf16 autocast does the rest)."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto",
        title="Attention",
        description="`auto`: flash_attention_2 on a GPU when installed, else sdpa; on a CPU eager up to 512 "
        "tokens (measured faster there), sdpa beyond.",
    )
    trust_remote_code: bool = Field(
        False, description="Run code shipped with a hub model.", json_schema_extra=ui(form=False)
    )


class LoraConfig(Params):
    """LoRA"""

    enabled: bool = Field(
        True,
        title="LoRA",
        description="Train an adapter instead of all weights.",
        json_schema_extra=ui(main=True),
    )
    r: int = Field(16, gt=0, title="LoRA rank", json_schema_extra=ui(main=True))
    alpha: int = Field(
        32,
        gt=0,
        title="LoRA alpha",
        description="Scaling numerator (scale = alpha / r).",
        json_schema_extra=ui(main=True),
    )
    dropout: float = Field(0.05, ge=0.0, lt=1.0, title="LoRA dropout")
    target_modules: str | list[str] = Field(
        "all-linear", title="LoRA target modules", description="Module names to adapt, or `all-linear`."
    )


class DataConfig(Params):
    """Data"""

    dataset: DataPath = Field(
        EMBEDDED_DATA,
        min_length=1,
        title="Dataset",
        description="builtin:tasks (generated checkable instructions), a jsonl/json/csv/parquet file, "
        "a folder saved by `datasets`, or a hub id.",
        json_schema_extra=ui(main=True),
    )
    split: str = Field("train", min_length=1, title="Split")
    max_samples: int | None = Field(
        None,
        gt=0,
        title="Max samples",
        description="Rows to use (empty: all).",
        json_schema_extra=ui(main=True),
    )
    eval_fraction: float = Field(
        0.05, ge=0.0, lt=1.0, title="Eval fraction", description="Rows held out for eval loss."
    )
    seed: int = Field(0, title="Data seed", description="Seed of the generator / shuffle.")
    references: Literal["sampled", "template"] = Field(
        "sampled",
        title="Embedded answers",
        description="builtin:tasks only: sampled (the embedded model's own answers that meet every "
        "constraint, templates as the last resort) or template (the filler templates, which a tiny "
        "random model learns in a few steps: the tests' tiny presets).",
    )
    layout: LayoutName = Field(
        "auto",
        title="Layout",
        description="How rows are read: auto (found from the columns), trl (TRL's formats), alpaca, "
        "sharegpt, dolly, shp, ultrafeedback, hh, ifeval.",
        json_schema_extra=ui(main=True),
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        title="Column mapping",
        description="The layout's field -> your column, e.g. {prompt: question, completion: answer}.",
        json_schema_extra=ui(main=True),
    )
    min_score_gap: float | None = Field(
        None,
        ge=0.0,
        title="Min score gap",
        description="Pairs built from scores (shp, ultrafeedback): drop those whose scores differ by less.",
    )

    @model_validator(mode="after")
    def _known_fields(self) -> DataConfig:
        """A mapping names the layout's own fields (any layout's, with `auto`) and real column names."""
        known = layout_fields(self.layout)
        unknown = sorted(set(self.columns) - known)
        empty = sorted(f for f, c in self.columns.items() if not c.strip())
        problems = []
        if unknown:
            problems.append(
                f"`data.columns` maps {unknown}, which layout {self.layout} does not have; "
                f"its fields: {', '.join(sorted(known))}"
            )
        if empty:
            problems.append(f"`data.columns` maps {empty} to an empty column name")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrainConfig(Params):
    """Training"""

    learning_rate: float = Field(2e-4, gt=0.0, title="Learning rate", json_schema_extra=ui(main=True))
    max_steps: int = Field(
        -1, ge=-1, title="Max steps", description="-1: run num_train_epochs.", json_schema_extra=ui(main=True)
    )
    num_train_epochs: float = Field(1.0, gt=0.0, title="Epochs")
    per_device_train_batch_size: int = Field(
        4,
        gt=0,
        title="Batch size",
        description="GRPO/RLOO: completions (a multiple of the group size); PPO: rollouts.",
        json_schema_extra=ui(main=True),
    )
    per_device_eval_batch_size: int = Field(8, gt=0, title="Eval batch size")
    gradient_accumulation_steps: int = Field(
        1, gt=0, title="Grad. accumulation", json_schema_extra=ui(main=True)
    )
    max_length: int = Field(
        256,
        gt=0,
        title="Max length (tokens)",
        description="Tokens per sequence; longer is truncated.",
        json_schema_extra=ui(main=True),
    )
    warmup_steps: float = Field(
        0.0, ge=0.0, title="Warmup", description="Steps, or a fraction of all steps if < 1."
    )
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", title="LR schedule"
    )
    weight_decay: float = Field(0.0, ge=0.0, title="Weight decay")
    max_grad_norm: float = Field(1.0, gt=0.0, title="Max grad norm")
    logging_steps: int = Field(1, gt=0, title="Log every N steps")
    eval_steps: int | None = Field(
        None, gt=0, title="Eval every N steps", description="Empty: no eval.", json_schema_extra=ui(main=True)
    )
    save_steps: int = Field(
        50,
        gt=0,
        title="Checkpoint every N steps",
        description="Checkpoints make --resume possible.",
        json_schema_extra=ui(main=True),
    )
    save_total_limit: int | None = Field(2, gt=0, title="Checkpoints kept")
    # transformers' EarlyStoppingCallback names; TRL-trainer methods only (others list them in `ignores`).
    early_stopping_patience: int | None = Field(
        None,
        gt=0,
        title="Early stopping patience",
        description="Stop after this many evaluations in a row without improving `metric_for_best_model`; "
        "the best checkpoint becomes the run's model. Needs eval (eval_steps) and save_steps a multiple "
        "of eval_steps. Empty: off. Read by sft, reward, dpo, simpo, orpo, kto (not grpo, rloo, ppo).",
    )
    early_stopping_threshold: float = Field(
        0.0,
        ge=0.0,
        title="Early stopping threshold",
        description="An evaluation counts as an improvement only if the metric gets better by more than this.",
    )
    metric_for_best_model: str = Field(
        "loss",
        min_length=1,
        title="Metric for best model",
        description="The eval metric early stopping watches, as logged without `eval_` (loss, "
        "rewards/accuracies, ...): lower is better for a name ending in loss, higher otherwise.",
    )
    seed: int = Field(42, title="Seed")
    bf16: bool | Literal["auto"] = Field(
        "auto", title="bf16", description="bf16 autocast; `auto`: on when the CPU/GPU supports bf16."
    )
    activation_checkpointing: bool = Field(
        True, title="Activation checkpointing", description="Recompute activations in backward: less memory."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", title="Device")
    report_to: list[Literal["tensorboard", "trackio", "mlflow"]] = Field(
        default_factory=list,
        title="Also report to",
        description="Trackers to log to beside the studio's own metrics.jsonl (each must be installed); "
        "logs go to the run folder (tensorboard/, mlruns/) unless the tracker is configured otherwise.",
    )


class LaunchConfig(Params):
    """Processes"""

    processes: int | Literal["auto"] = Field(
        "auto",
        title="Processes",
        description="Data-parallel worker processes (`accelerate launch`). `auto`: 2 single-thread "
        "processes on a 2-core CPU where that measured faster (SFT; the batch is split between "
        "them), one per GPU, else 1. A number: that many, each with the per-device batch.",
    )
    accelerate_config: ConfigFile | None = Field(
        None,
        title="accelerate config file",
        description="An accelerate config YAML (FSDP, DeepSpeed ZeRO, multi-GPU) passed to "
        "`accelerate launch --config_file` unchanged.",
    )
    cpus: int | None = Field(
        None,
        ge=0,
        title="CPUs on a cluster",
        description="CPUs a run reserves on a Ray cluster (`--executor ray`). Empty: one per process.",
    )
    gpus: int | None = Field(
        None,
        ge=0,
        title="GPUs on a cluster",
        description="GPUs a run reserves on a Ray cluster (`--executor ray`). Empty: one per process "
        "when `train.device` is cuda, else none.",
    )
    retry_oom: bool = Field(
        False,
        title="Retry once on out-of-memory",
        description="After an out-of-memory failure, run once more with half the per-device batch "
        "and twice the gradient accumulation (the same global batch).",
    )

    @field_validator("processes")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"`launch.processes` must be `auto` or a number >= 1, got {value}")
        return value


# In the Train form's order.
COMMON_SECTIONS: dict[str, type[Params]] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "lora": LoraConfig,
    "launch": LaunchConfig,
}
