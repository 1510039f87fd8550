"""Typed run configuration and strict preset loading.

A preset is a YAML file that maps onto a run config: the common sections below (`model`,
`lora`, `data`, `train`) plus one section per method family, declared by the methods
themselves (see `backends/core/registry.py`). Loading is strict: an unknown key, a wrong
type or an out-of-range value is an error that names the field and the file, and all
problems are reported at once. Field names follow TRL / transformers (`learning_rate`,
`max_length`, `per_device_train_batch_size`) so a preset reads like TRL's docs.

No torch import here: the studio builds and validates configs in its own process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from backends.core import registry
from backends.core.layouts import LAYOUT_FIELDS, LAYOUTS, LayoutName
from backends.core.params import CheckpointPath, ConfigFile, DataPath, ModelPath, Params, ui
from backends.core.rawconfig import ConfigError, check_structure, load_yaml

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
        known = LAYOUT_FIELDS if self.layout == "auto" else frozenset(LAYOUTS[self.layout].fields)
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


class RunConfig(Params):
    """The common part of every run config. The class that validates a preset is built from
    this one plus each registered method's section (`config_model()`), so `cfg.dpo`,
    `cfg.rl`, ... exist on every validated config."""

    name: str | None = Field(
        None,
        title="Run name",
        description="Prefix of the run directory name.",
        json_schema_extra=ui(main=True),
    )
    method: str = Field("sft", title="Method", json_schema_extra=ui(main=True))
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)
    resume_from: CheckpointPath | None = Field(
        None,
        description="Set by --resume: the checkpoint this run continues from.",
        json_schema_extra=ui(form=False),
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in registry.names():
            raise ValueError(
                f"`method` {value!r} is not a known method; known: {', '.join(registry.names())}"
            )
        return value

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RunConfig:
        problems: list[str] = []
        if self.train.eval_steps is not None and self.data.eval_fraction == 0:
            problems.append(
                f"`train.eval_steps` is {self.train.eval_steps} but `data.eval_fraction` is 0: "
                "set a fraction > 0 or eval_steps: null"
            )
        problems += _launch_problems(self)
        spec = registry.get(self.method)
        problems += _early_stopping_problems(self, spec)
        if spec.check is not None:
            problems += spec.check(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _early_stopping_problems(cfg: RunConfig, spec: registry.MethodSpec) -> list[str]:
    """Early stopping keeps the best checkpoint (load_best_model_at_end), so it needs evaluations
    and a checkpoint saved at each of them (transformers refuses it otherwise, deep in a run)."""
    t = cfg.train
    if t.early_stopping_patience is None:
        return []
    key = f"`train.early_stopping_patience` is {t.early_stopping_patience}"
    if not spec.uses("train.early_stopping_patience"):
        return [f"{key} but `{cfg.method}` does not read it; leave it empty (null)"]
    if t.eval_steps is None:  # (eval_steps with eval_fraction 0 is refused above)
        return [
            f"{key} but the run has no eval split: set `train.eval_steps` and `data.eval_fraction` > 0 "
            "(early stopping watches an eval metric), or leave the patience empty"
        ]
    if t.save_steps % t.eval_steps:
        return [
            f"{key}: `train.save_steps` ({t.save_steps}) must be a multiple of `train.eval_steps` "
            f"({t.eval_steps}), so that a checkpoint is saved where an evaluation may find the best model"
        ]
    return []


def _launch_problems(cfg: RunConfig) -> list[str]:
    n = cfg.launch.processes
    if n != "auto" and n > 1 and not registry.get(cfg.method).multi_process:
        many = [s.name for s in registry.specs() if s.multi_process]
        return [
            f"`launch.processes` is {n} but `{cfg.method}` runs in one process only "
            f"(multi-process methods: {', '.join(sorted(many))}); use 1 or auto"
        ]
    # `launch.accelerate_config` is a ConfigFile: the path policy checks it (backends/core/policy.py),
    # after the served-folders rule, so a refused path reads the same whether or not it exists
    if cfg.launch.gpus and cfg.train.device == "cpu":
        return [
            f"`launch.gpus` is {cfg.launch.gpus} but `train.device` is cpu: the run would hold "
            "GPUs it never uses; set `train.device: cuda` (or auto), or `launch.gpus: 0`"
        ]
    return []


_MODEL_CACHE: dict[int, type[RunConfig]] = {}


def config_model() -> type[RunConfig]:
    """RunConfig with a field per method section (rebuilt when the registry changes)."""
    version = registry.version()
    if version not in _MODEL_CACHE:
        fields: dict[str, Any] = {
            name: (model, Field(default_factory=model)) for name, model in registry.sections().items()
        }
        _MODEL_CACHE.clear()
        _MODEL_CACHE[version] = create_model("RunConfig", __base__=RunConfig, **fields)
    return _MODEL_CACHE[version]


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _format_error(err: dict[str, Any], source: str) -> str:
    field = _loc(err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"`{field}` is not a known key ({source}); check its spelling and section"
    if err["type"] == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{msg} ({source})"
    got = repr(err.get("input"))
    got = got if len(got) <= 200 else got[:200] + "..."  # a hostile value can be megabytes long
    return f"`{field}`: {err['msg']}, got {got} ({source})"


def validate_config(raw: Any, source: str) -> RunConfig:
    """Build a run config from plain data, or raise ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"a preset must be a mapping of keys to values, got {type(raw).__name__} ({source})"]
        )
    check_structure(raw, source)
    try:
        return config_model().model_validate(raw)
    except ValidationError as e:
        raise ConfigError([_format_error(err, source) for err in e.errors()]) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` strings (value parsed as YAML) to a raw preset dict."""
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"`--set {item}` must look like key.sub=value")
            continue
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"`--set {item}`: `{part}` is not a section")
                break
            node = child
        else:
            try:
                node[parts[-1]] = load_yaml(value, f"`--set {item}`") if value.strip() else None
            except ConfigError as e:
                problems += e.problems
    if problems:
        raise ConfigError(problems)
    return raw


def read_preset(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"preset file {p} does not exist"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"preset file {p} is not UTF-8 text ({e})"]) from None
    except IsADirectoryError:
        raise ConfigError([f"preset {p} is a folder, not a YAML file"]) from None
    raw = load_yaml(text, str(p))
    return raw if raw is not None else {}


def load_preset(path: str | os.PathLike[str], overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a preset file."""
    raw = read_preset(path)
    source = str(path) + (" with --set" if overrides else "")
    if overrides:
        if not isinstance(raw, dict):
            raise ConfigError([f"a preset must be a mapping, got {type(raw).__name__} ({path})"])
        raw = apply_overrides(raw, overrides)
    return validate_config(raw, source)


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def config_from_text(text: str, source: str) -> dict[str, Any]:
    """A raw mapping from YAML text typed by a person (the pipeline editor)."""
    raw = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise ConfigError([f"{source} must be a mapping of keys to values"])
    return raw


def config_from_yaml(text: str, source: str) -> RunConfig:
    return validate_config(config_from_text(text, source), source)
