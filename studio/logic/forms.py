"""The Train form as data: which config fields it shows, and the one function that turns
form values into a validated RunConfig. No gradio import: tested directly."""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from backends.config import ConfigError, RunConfig, config_to_yaml, validate_config


@dataclass(frozen=True)
class FormField:
    key: str  # dotted config key
    label: str
    kind: str  # "text" | "number" | "int" | "bool" | "choice"
    info: str = ""
    choices: tuple[str, ...] = ()


FORM_FIELDS: tuple[FormField, ...] = (
    FormField("method", "Method", "choice", choices=("sft",)),
    FormField("name", "Run name", "text", "Prefix of the run directory name."),
    FormField("model.name_or_path", "Model", "text",
              "builtin:smollm2-135m-instruct (embedded), a local folder, a run's model/ folder, or a hub id."),
    FormField("data.dataset", "Dataset", "text",
              "builtin:tasks (generated checkable instructions), a jsonl/json/csv/parquet file, or a saved dataset folder."),
    FormField("data.max_samples", "Max samples", "int", "Rows to use (empty: all)."),
    FormField("train.learning_rate", "Learning rate", "number"),
    FormField("train.max_steps", "Max steps", "int", "-1: run num_train_epochs."),
    FormField("train.per_device_train_batch_size", "Batch size", "int"),
    FormField("train.gradient_accumulation_steps", "Grad. accumulation", "int"),
    FormField("train.max_length", "Max length (tokens)", "int"),
    FormField("train.eval_steps", "Eval every N steps", "int", "Empty: no eval."),
    FormField("train.save_steps", "Checkpoint every N steps", "int"),
    FormField("lora.enabled", "LoRA", "bool", "Train an adapter instead of all weights."),
    FormField("lora.r", "LoRA rank", "int"),
    FormField("lora.alpha", "LoRA alpha", "int"),
    FormField("sft.completion_only_loss", "Loss on completion only", "bool"),
)  # fmt: skip


def _get(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _resolved(raw: dict[str, Any], source: str) -> dict[str, Any]:
    return validate_config(raw or {}, source).model_dump(mode="json")


def form_values(raw: dict[str, Any], source: str = "preset") -> list[Any]:
    """The form's values for a preset: its own value, else the config default.

    Raises ConfigError when the preset itself is invalid."""
    resolved = _resolved(raw, source)
    return [_get(resolved, f.key) for f in FORM_FIELDS]


def _clean(field: FormField, value: Any) -> Any:
    """Gradio hands numbers as floats and empty boxes as None / ''."""
    if value == "" or value is None:
        return None
    if field.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def form_to_config(base: dict[str, Any], values: list[Any], source: str) -> tuple[RunConfig, dict[str, Any]]:
    """Apply form values onto a preset's raw dict and validate. Raises ConfigError.

    Returns the config and the raw dict (for the --set preview)."""
    raw = copy.deepcopy(base) if base else {}
    if len(values) != len(FORM_FIELDS):
        raise ValueError(f"expected {len(FORM_FIELDS)} form values, got {len(values)}")
    problems = []
    for field, value in zip(FORM_FIELDS, values, strict=True):
        value = _clean(field, value)
        if value is None and field.key not in ("data.max_samples", "train.eval_steps", "name"):
            problems.append(f"`{field.key}` ({field.label}) is empty; give a value")
            continue
        _set(raw, field.key, value)
    if problems:
        raise ConfigError(problems)
    return validate_config(raw, source), raw


def overrides(base: dict[str, Any], values: list[Any]) -> list[str]:
    """`key=value` strings for the fields where the form differs from the preset."""
    resolved = _resolved(base, "preset")
    out = []
    for field, value in zip(FORM_FIELDS, values, strict=True):
        value = _clean(field, value)
        if value != _get(resolved, field.key):
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            out.append(f"{field.key}={text}")
    return out


def headless_command(preset: str, sets: list[str]) -> str:
    parts = ["python", "launch.py", "--preset", preset, "--headless"]
    for s in sets:
        parts += ["--set", s]
    return shlex.join(parts)


def preview(cfg: RunConfig) -> str:
    return config_to_yaml(cfg)
