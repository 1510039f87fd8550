"""Typed run configuration and strict preset loading.

A preset is a YAML file that maps onto `RunConfig`. Loading is strict: an unknown key, a
wrong type or an out-of-range value is an error that names the field and the file, and all
problems are reported at once. Field names follow TRL / transformers (`learning_rate`,
`max_length`, `per_device_train_batch_size`) so a preset reads like TRL's docs.

No torch import here: the studio builds and validates configs in its own process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backends.method_params import (
    DPOParams,
    EvalParams,
    KTOParams,
    RewardParams,
    RewardSpec,
    RLParams,
    SFTParams,
)

EMBEDDED_MODEL = "builtin:smollm2-135m-instruct"
TINY_MODEL = "builtin:tiny-llama"
EMBEDDED_DATA = "builtin:tasks"

Method = Literal["sft", "reward", "dpo", "simpo", "orpo", "kto", "grpo", "rloo", "ppo", "sample", "eval"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
METHOD_HELP: dict[str, str] = {
    "sft": "Supervised fine-tuning: imitate prompt -> completion pairs (loss on the completion only).",
    "reward": "Reward model: a scalar head learns to score chosen above rejected (Bradley-Terry loss).",
    "dpo": "Direct Preference Optimization and its losses (dpo.loss_type: sigmoid = DPO, ipo, robust, "
    "hinge, ...): learn from pairs against a frozen reference, no reward model.",
    "simpo": "SimPO: length-normalised log-prob margin with a target gap; no reference model.",
    "orpo": "ORPO: SFT loss plus an odds-ratio preference term; no reference model.",
    "kto": "KTO: learns from single responses labelled good or bad (unpaired preferences).",
    "grpo": "GRPO: sample a group per prompt, reward each, and push toward the above-average ones; no value model.",
    "rloo": "RLOO: REINFORCE with a leave-one-out baseline over the group of samples.",
    "ppo": "PPO (InstructGPT): rollouts, per-token KL to the reference, GAE with a value head, clipped updates.",
    "sample": "Sample N responses per prompt, score them with a judge, write best-vs-worst pairs and a "
    "best-of-N SFT set (on-policy preference data).",
    "eval": "Compare two or more models on a prompt set: generate, judge (checkers, reward model, LLM, "
    "people), and tally win rates with confidence intervals.",
    "pipeline": "A pipeline of stages (e.g. SFT -> reward model -> PPO), each stage its own run.",
}


class ConfigError(ValueError):
    """Every problem found in a config, each naming its field, value and source."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    name_or_path: str = Field(
        EMBEDDED_MODEL,
        min_length=1,
        description="A local path, a hub id, `builtin:smollm2-135m-instruct` (the embedded "
        "default) or `builtin:tiny-llama` (a tiny random model built locally for tests).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; `auto` is float32 on CPU (bf16 autocast does the rest)."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="`auto`: flash_attention_2 on a GPU when installed, else sdpa."
    )
    trust_remote_code: bool = Field(False, description="Run code shipped with a hub model.")


class LoraConfig(_Strict):
    enabled: bool = Field(True, description="Train a LoRA adapter instead of all weights.")
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = Field(
        "all-linear", description="Module names to adapt, or `all-linear`."
    )


class DataConfig(_Strict):
    dataset: str = Field(
        EMBEDDED_DATA,
        min_length=1,
        description="`builtin:tasks` (generated checkable instructions), a local file "
        "(jsonl/json/csv/parquet), a folder saved by `datasets`, or a hub id.",
    )
    split: str = Field("train", min_length=1)
    max_samples: int | None = Field(None, gt=0, description="Use at most this many rows.")
    eval_fraction: float = Field(0.05, ge=0.0, lt=1.0, description="Share of rows held out for eval loss.")
    seed: int = Field(0, description="Seed of the generator / shuffle.")


class TrainConfig(_Strict):
    learning_rate: float = Field(2e-4, gt=0.0)
    max_steps: int = Field(-1, ge=-1, description="-1: run `num_train_epochs` instead.")
    num_train_epochs: float = Field(1.0, gt=0.0)
    per_device_train_batch_size: int = Field(4, gt=0)
    per_device_eval_batch_size: int = Field(8, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_length: int = Field(256, gt=0, description="Tokens per sequence; longer is truncated.")
    warmup_steps: float = Field(0.0, ge=0.0, description="Steps, or a fraction of all steps if < 1.")
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    logging_steps: int = Field(1, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="Eval every N steps; None: no eval.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every N steps (for --resume).")
    save_total_limit: int | None = Field(2, gt=0)
    seed: int = 42
    bf16: bool | Literal["auto"] = Field(
        "auto", description="bf16 autocast; `auto`: on when the CPU/GPU supports bf16."
    )
    activation_checkpointing: bool = Field(
        True, description="Recompute activations in backward: less memory, on CPU no slower."
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"


class SampleParams(_Strict):
    """The `sample` stage: on-policy preference data from the model's own samples."""

    num_samples: int = Field(4, ge=2, description="Responses per prompt.")
    max_new_tokens: int = Field(64, gt=0)
    temperature: float = Field(0.9, gt=0.0)
    batch_size: int = Field(16, gt=0, description="Prompts per generate call.")
    judge: RewardSpec = Field(default_factory=RewardSpec, description="What scores each response.")
    sft_threshold: float = Field(1.0, description="Best responses scoring at least this go to the SFT set.")


class RunConfig(_Strict):
    name: str | None = Field(None, description="Run name prefix; default: the method.")
    method: Method = "sft"
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sft: SFTParams = Field(default_factory=SFTParams)
    reward: RewardParams = Field(default_factory=RewardParams)
    dpo: DPOParams = Field(default_factory=DPOParams)
    kto: KTOParams = Field(default_factory=KTOParams)
    rl: RLParams = Field(default_factory=RLParams)
    sample: SampleParams = Field(default_factory=SampleParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    resume_from: str | None = Field(
        None, description="Set by --resume: the checkpoint this run continues from."
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RunConfig:
        problems: list[str] = []
        if self.train.eval_steps is not None and self.data.eval_fraction == 0:
            problems.append(
                f"`train.eval_steps` is {self.train.eval_steps} but `data.eval_fraction` is 0: "
                "set a fraction > 0 or eval_steps: null"
            )
        if self.method == "eval" and len(set(self.eval.models)) < max(2, len(self.eval.models)):
            problems.append(f"`eval.models` must name two or more different models, got {self.eval.models}")
        if (
            self.method in ("grpo", "rloo")
            and self.train.per_device_train_batch_size % self.rl.num_generations
        ):
            problems.append(
                f"`train.per_device_train_batch_size` ({self.train.per_device_train_batch_size}) counts "
                f"completions for {self.method} and must be a multiple of `rl.num_generations` "
                f"({self.rl.num_generations})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _format_error(err: dict[str, Any], source: str) -> str:
    field = _loc(err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"`{field}` is not a known key ({source}); check its spelling and section"
    if err["type"] == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{msg} ({source})"
    got = err.get("input")
    return f"`{field}`: {err['msg']}, got {got!r} ({source})"


def validate_config(raw: Any, source: str) -> RunConfig:
    """Build a RunConfig from plain data, or raise ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"a preset must be a mapping of keys to values, got {type(raw).__name__} ({source})"]
        )
    try:
        return RunConfig.model_validate(raw)
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
                node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
            except yaml.YAMLError as e:
                problems.append(f"`--set {item}`: value is not valid YAML ({e})")
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
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{p} is not valid YAML: {e}"]) from None
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
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{source} is not valid YAML: {e}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{source} must be a mapping of keys to values"])
    return raw


def config_from_yaml(text: str, source: str) -> RunConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{source} is not valid YAML: {e}"]) from None
    return validate_config(raw, source)
