"""Typed run configuration and strict preset loading.

A preset is a YAML file that maps onto a run config: the common sections (sections.py: `model`,
`lora`, `data`, `train`) plus one section per method family, declared by the methods
themselves (see `backends/core/spec/registry.py`). Loading is strict: an unknown key, a wrong
type or an out-of-range value is an error that names the field and the file, and all
problems are reported at once. Field names follow TRL / transformers (`learning_rate`,
`max_length`, `per_device_train_batch_size`) so a preset reads like TRL's docs.

No torch import here: the studio builds and validates configs in its own process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from backends.core.spec import registry
from backends.core.spec.params import CheckpointPath, Params, ui
from backends.core.spec.rawconfig import ConfigError, check_structure, load_yaml

# the common sections live in sections.py; imported here, where the rest of the code finds them
from backends.core.spec.sections import (  # noqa: E402, F401
    COMMON_SECTIONS,
    EMBEDDED_DATA,
    EMBEDDED_MODEL,
    PIPELINE_HELP,
    TINY_MODEL,
    DataConfig,
    LaunchConfig,
    LoraConfig,
    ModelConfig,
    TrainConfig,
)


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
    # `launch.accelerate_config` is a ConfigFile: the path policy checks it (backends/core/pipelines/policy.py),
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
