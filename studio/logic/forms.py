"""Forms as data, and the one route from any form to a validated run config. No gradio.

The Train form's fields are derived from the config models: the common sections (`model`,
`lora`, `data`, `train`) and every registered method's section. A field's `title` is its
label, its `description` the help text, its type the widget; its `ui()` hints say whether it
sits in the form itself or under "More settings", which methods of a shared section use it,
and whether the web may set it at all. A method hides the common fields it ignores.

Every UI entry point that starts a run (the Train form, the Arena, the Label tab's
candidates and "train on these labels") goes through `build_config`.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from backends.core.data.dataplan import DataFormatError
from backends.core.data.preflight import preflight
from backends.core.pipelines.policy import StudioPolicy, check_config
from backends.core.spec import registry
from backends.core.spec.config import COMMON_SECTIONS, ConfigError, RunConfig, validate_config
from backends.core.spec.rawconfig import load_yaml

Kind = Literal["text", "number", "int", "bool", "choice", "yaml"]


@dataclass(frozen=True)
class FormField:
    key: str  # dotted config key
    label: str
    kind: Kind
    info: str = ""
    choices: tuple[str, ...] = ()
    section: str = ""  # "" for the run's own fields (method, name)
    group: str = ""  # the section's title, for the form's headings
    main: bool = False  # in the form itself; False: under "More settings"
    only: tuple[str, ...] = ()  # methods of a shared section that use it; empty: all
    optional: bool = False  # may be left empty (None)

    def visible(self, method: str) -> bool:
        """Shown for `method`: its own section's fields (those it uses), and the common ones it reads."""
        try:
            spec = registry.get(method)
        except KeyError:
            return False
        if self.section in COMMON_SECTIONS:
            return spec.uses(self.key)
        if self.section:
            return self.section == spec.section and (not self.only or method in self.only)
        return True


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...], bool]:
    """(widget kind, choices, optional) for a pydantic field annotation."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            kind, choices, _ = _kind(rest[0])
            return kind, choices, optional
        literals = [v for a in rest if typing.get_origin(a) is Literal for v in typing.get_args(a)]
        if bool in rest and literals:  # e.g. bf16: true | false | auto
            return "choice", (*map(str, literals), "true", "false"), optional
        return "yaml", (), optional
    if origin is Literal:
        return "choice", tuple(str(a) for a in args), False
    if annotation is bool:
        return "bool", (), False
    if annotation is int:
        return "int", (), False
    if annotation is float:
        return "number", (), False
    if annotation is str:
        return "text", (), False
    return "yaml", (), False  # lists and nested models are edited as YAML


def _fields_of(section: str, model: type[BaseModel]) -> list[FormField]:
    group = (model.__doc__ or section).strip().splitlines()[0]
    out = []
    for name, info in model.model_fields.items():
        hints = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not hints.get("ui_form", True):
            continue
        kind, choices, optional = _kind(info.annotation)
        out.append(
            FormField(
                key=f"{section}.{name}",
                label=info.title or name.replace("_", " "),
                kind=kind,
                info=info.description or "",
                choices=choices,
                section=section,
                group=group,
                main=bool(hints.get("ui_main")),
                only=tuple(hints.get("ui_only") or ()),
                optional=optional,
            )
        )
    return out


@functools.lru_cache(maxsize=4)
def _form_fields(version: int) -> tuple[FormField, ...]:
    own = RunConfig.model_fields
    fields = [
        FormField("method", own["method"].title or "Method", "choice", choices=registry.names(), main=True),
        FormField(
            "name",
            own["name"].title or "Run name",
            "text",
            own["name"].description or "",
            main=True,
            optional=True,
        ),
    ]
    for section, model in {**COMMON_SECTIONS, **registry.sections()}.items():
        fields += _fields_of(section, model)
    return tuple(fields)


def form_fields() -> tuple[FormField, ...]:
    """Every field of the Train form, in order (method, name, common sections, method sections)."""
    return _form_fields(registry.version())


def keys() -> list[str]:
    return [f.key for f in form_fields()]


def get(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError([f"`{key}`: `{part}` is not a section"])
        node = child
    node[parts[-1]] = value


def _resolved(raw: dict[str, Any], source: str) -> dict[str, Any]:
    return validate_config(raw or {}, source).model_dump(mode="json")


def form_values(raw: dict[str, Any], source: str = "preset") -> list[Any]:
    """The form's values for a preset: its own value, else the config default.

    Raises ConfigError when the preset itself is invalid."""
    resolved = _resolved(raw, source)
    return [_to_form(f, get(resolved, f.key)) for f in form_fields()]


def _to_form(field: FormField, value: Any) -> Any:
    if field.kind == "yaml":
        return _yaml_inline(value)
    if field.kind == "choice" and isinstance(value, bool):
        return "true" if value else "false"
    return value


def _yaml_inline(value: Any) -> str:
    """One line of YAML (a scalar loses the document-end marker `...` that safe_dump adds)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("...").strip()


def _clean(field: FormField, value: Any) -> Any:
    """Gradio hands numbers as floats and empty boxes as None / ''."""
    if value == "" or value is None:
        return None
    if field.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if field.kind == "choice" and value in ("true", "false"):
        return value == "true"
    if field.kind == "yaml" and isinstance(value, str):
        return load_yaml(value, f"`{field.key}` ({field.label})")
    return value


def build_config(
    base: dict[str, Any], values: dict[str, Any], source: str, policy: StudioPolicy | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """The one route from a form to a run: dotted `values` applied onto a preset's raw dict,
    validated, checked against the studio's `policy` (typed paths under the served folders,
    registered reward functions, no command-line-only fields; before anything is opened),
    and its data checked by the preflight. Raises ConfigError listing every problem. Returns
    the config and the raw dict (for the `--set` preview)."""
    raw = copy.deepcopy(base) if base else {}
    problems: list[str] = []
    for key, value in values.items():
        try:
            put(raw, key, value)
        except ConfigError as e:
            problems += e.problems
    if problems:
        raise ConfigError(problems)
    cfg = validate_config(raw, source)
    if policy is not None:
        cfg = check_config(cfg, policy)  # a refused path is never opened, not even to check it
    try:
        preflight(cfg)  # every UI route to a run refuses what its worker would, before a run exists
    except DataFormatError as e:
        raise ConfigError([str(e)]) from None
    return cfg, raw


def form_to_config(
    base: dict[str, Any], values: list[Any], source: str, policy: StudioPolicy | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """The Train form's values (in `form_fields()` order) onto a preset. Fields hidden for
    the chosen method keep the preset's value; an empty required field is an error."""
    fields = form_fields()
    if len(values) != len(fields):
        raise ValueError(f"expected {len(fields)} form values, got {len(values)}")
    method = values[0]
    problems, chosen = [], {}
    for field, value in zip(fields, values, strict=True):
        value = _clean(field, value)
        if value is None and not field.optional:
            if field.visible(method):
                problems.append(f"`{field.key}` ({field.label}) is empty; give a value")
            continue
        chosen[field.key] = value
    if problems:
        raise ConfigError(problems)
    return build_config(base, chosen, source, policy)


def overrides(base: dict[str, Any], values: list[Any]) -> list[str]:
    """`key=value` strings for the fields where the form differs from the preset."""
    resolved = _resolved(base, "preset")
    out = []
    for field, value in zip(form_fields(), values, strict=True):
        value = _clean(field, value)
        if value != get(resolved, field.key):
            out.append(f"{field.key}={_yaml_inline(value)}")
    return out


def headless_command(
    preset: str, sets: list[str], runs_dir: str | None = None, executor: list[str] | None = None
) -> str:
    """The headless command of a preset with `--set` overrides; `executor`: the flags that send
    it where the studio sends its runs (`--executor ray --ray-address ...`)."""
    parts = ["python", "launch.py", "--preset", preset, "--headless"]
    if runs_dir:
        parts += ["--runs-dir", runs_dir]
    parts += executor or []
    for s in sets:
        parts += ["--set", s]
    return shlex.join(parts)


def readable_problems(problems: list[str], source: str = "") -> list[str]:
    """Config problems for the form: the ` (source)` tail each line carries dropped (the
    heading says it once), repeats dropped, and a leading `key` named by its form label,
    e.g. "**Learning rate** (`train.learning_rate`): Input should be greater than 0"."""
    labels = {f.key: f.label for f in form_fields()}
    out: list[str] = []
    for p in problems:
        if source:
            p = p.replace(f" ({source})", "")
        m = re.match(r"^`([A-Za-z_][\w.\[\]]*)`(.*)$", p, re.DOTALL)
        if m and m.group(1) in labels:
            p = f"**{labels[m.group(1)]}** (`{m.group(1)}`){m.group(2)}"
        if p not in out:
            out.append(p)
    return out
