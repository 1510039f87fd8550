"""The Train form as data: which config fields it shows, and the one function that turns
form values into a validated RunConfig. No gradio import: tested directly."""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from backends.config import METHODS, ConfigError, RunConfig, validate_config
from backends.method_params import DPOLoss

RL = ("grpo", "rloo", "ppo")
TRAINED = tuple(m for m in METHODS if m != "sample")


@dataclass(frozen=True)
class FormField:
    key: str  # dotted config key
    label: str
    kind: str  # "text" | "number" | "int" | "bool" | "choice" | "yaml"
    info: str = ""
    choices: tuple[str, ...] = ()
    methods: tuple[str, ...] = METHODS  # the methods that use this field; hidden for others


FORM_FIELDS: tuple[FormField, ...] = (
    FormField("method", "Method", "choice", choices=METHODS),
    FormField("name", "Run name", "text", "Prefix of the run directory name."),
    FormField(
        "model.name_or_path",
        "Model",
        "text",
        "builtin:smollm2-135m-instruct (embedded), a local folder, a run's model/ folder, or a hub id.",
    ),
    FormField(
        "data.dataset",
        "Dataset",
        "text",
        "builtin:tasks (generated checkable instructions), a jsonl/json/csv/parquet file, or a saved dataset folder.",
    ),
    FormField("data.max_samples", "Max samples", "int", "Rows to use (empty: all)."),
    FormField("train.learning_rate", "Learning rate", "number", methods=TRAINED),
    FormField("train.max_steps", "Max steps", "int", "-1: run num_train_epochs.", methods=TRAINED),
    FormField(
        "train.per_device_train_batch_size",
        "Batch size",
        "int",
        "GRPO/RLOO: completions (a multiple of the group size); PPO: rollouts.",
        methods=TRAINED,
    ),
    FormField("train.gradient_accumulation_steps", "Grad. accumulation", "int", methods=TRAINED),
    FormField("train.max_length", "Max length (tokens)", "int", methods=TRAINED),
    FormField("train.eval_steps", "Eval every N steps", "int", "Empty: no eval.", methods=TRAINED),
    FormField("train.save_steps", "Checkpoint every N steps", "int", methods=TRAINED),
    FormField("lora.enabled", "LoRA", "bool", "Train an adapter instead of all weights.", methods=TRAINED),
    FormField("lora.r", "LoRA rank", "int", methods=TRAINED),
    FormField("lora.alpha", "LoRA alpha", "int", methods=TRAINED),
    FormField("sft.completion_only_loss", "Loss on completion only", "bool", methods=("sft",)),
    FormField(
        "reward.center_rewards_coefficient",
        "Center rewards coef.",
        "number",
        "Empty: off.",
        methods=("reward",),
    ),
    FormField(
        "dpo.beta",
        "beta",
        "number",
        "DPO: KL strength; IPO: regulariser; SimPO: scale; ORPO: lambda.",
        methods=("dpo", "simpo", "orpo"),
    ),
    FormField(
        "dpo.loss_type",
        "Loss",
        "choice",
        "sigmoid = DPO, ipo = IPO, robust, hinge, ...",
        choices=DPOLoss.__args__,
        methods=("dpo",),
    ),  # type: ignore[attr-defined]
    FormField("dpo.simpo_gamma", "SimPO margin (gamma)", "number", methods=("simpo",)),
    FormField("kto.beta", "KTO beta", "number", methods=("kto",)),
    FormField(
        "rl.rewards",
        "Rewards",
        "yaml",
        "A list: {kind: checkers} | {kind: reward_model, path: runs/<id>/model} | {kind: function, "
        "path: module:fn}, each with an optional weight.",
        methods=RL,
    ),
    FormField("rl.num_generations", "Group size", "int", "Completions per prompt.", methods=("grpo", "rloo")),
    FormField("rl.max_completion_length", "Max new tokens", "int", methods=RL),
    FormField("rl.temperature", "Temperature", "number", methods=RL),
    FormField("rl.beta", "KL coef. (beta)", "number", "Penalty toward the reference model.", methods=RL),
    FormField("rl.ppo_epochs", "PPO epochs", "int", methods=("ppo",)),
    FormField("rl.cliprange", "Clip range", "number", methods=("ppo",)),
    FormField("rl.vf_coef", "Value loss coef.", "number", methods=("ppo",)),
    FormField("rl.adaptive_kl", "Adaptive KL", "bool", methods=("ppo",)),
    FormField("sample.num_samples", "Samples per prompt", "int", methods=("sample",)),
    FormField("sample.max_new_tokens", "Max new tokens", "int", methods=("sample",)),
    FormField(
        "sample.judge",
        "Judge",
        "yaml",
        "{kind: checkers} or {kind: reward_model, path: ...}",
        methods=("sample",),
    ),
    FormField("sample.sft_threshold", "Best-of-N threshold", "number", methods=("sample",)),
)
OPTIONAL = {"data.max_samples", "train.eval_steps", "name", "reward.center_rewards_coefficient"}


def visible(field: FormField, method: str) -> bool:
    return method in field.methods


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
    return [_to_form(f, _get(resolved, f.key)) for f in FORM_FIELDS]


def _to_form(field: FormField, value: Any) -> Any:
    if field.kind == "yaml":
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    return value


def _clean(field: FormField, value: Any) -> Any:
    """Gradio hands numbers as floats and empty boxes as None / ''."""
    if value == "" or value is None:
        return None
    if field.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if field.kind == "yaml" and isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError([f"`{field.key}` ({field.label}) is not valid YAML: {e}"]) from None
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
        if value is None and field.key not in OPTIONAL:
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
