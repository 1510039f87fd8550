"""What a run config may name, checked before any run directory exists.

Every field that holds a path a person typed has a path type (`ModelPath`, `DataPath`,
`CheckpointPath`, `ConfigFile`, `SpecPath` in `backends/core/spec/params.py`), so one walker finds
them all: the model, the dataset, reward-model and judge folders, function rewards, the
models of a comparison, a target or held-out set, an accelerate config, a resume checkpoint.

Two levels:
- everyone (the command line too): a local model or dataset path must exist; a relative one
  becomes absolute, so the worker (which runs in the repository root) finds it;
- the web (`StudioPolicy`): every path must be under the folders the studio serves
  (`backends/core/access/paths.py`), a `function` reward or judge must be one the operator
  registered at start-up, and fields the form never offers (`ui(form=False)`:
  `trust_remote_code`, `resume_from`) keep their defaults.

The studio records its policy in each run's status (`policy`), and the worker checks the run
against it again before loading anything, so no route around the form runs foreign code.
No torch, no gradio: both sides import this.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backends.core.access.paths import (
    PathMissing,
    PathPolicy,
    PathRefused,
    check_length,
    looks_like_hub_id,
)
from backends.core.access.reward_functions import (  # noqa: F401 - moved there; imported here for their users
    RewardFunctions,
)
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import EMBEDDED_DATA, ConfigError, RunConfig, validate_config
from backends.core.spec.params import path_role
from backends.core.spec.places import BUILTIN_MODELS

NEVER_HUB = ("checkpoint", "config")  # roles a hub id cannot fill: always a local path
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_BARE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a hub id without an org (`gpt2`)

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class UserValue:
    """One value a person typed: where it is (`("rl", "rewards", 0, "path")`), what it is."""

    loc: Loc
    value: str
    role: str  # model | data | checkpoint | function

    @property
    def key(self) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.loc).lstrip(".")


def user_values(cfg: BaseModel) -> list[UserValue]:
    """Every path-valued (or function-valued) string set in `cfg`, found by the fields' hints."""
    return list(_walk(cfg, ()))


def _walk(obj: BaseModel, loc: Loc) -> Iterator[UserValue]:
    for name, info in type(obj).model_fields.items():
        value = getattr(obj, name)
        here = (*loc, name)
        role = path_role(info)
        if role == "by_kind":
            role = getattr(obj, "PATH_ROLES", {}).get(getattr(obj, "kind", None))
        if role and isinstance(value, str):
            yield UserValue(here, value, role)
        elif role and isinstance(value, list):
            yield from (UserValue((*here, i), v, role) for i, v in enumerate(value) if isinstance(v, str))
        elif isinstance(value, BaseModel):
            yield from _walk(value, here)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, BaseModel):
                    yield from _walk(v, (*here, i))


def cli_only_fields(cfg: BaseModel, loc: Loc = ()) -> Iterator[tuple[str, Any, Any]]:
    """(key, value, default) of fields marked `ui(form=False)` whose value is not the default."""
    for name, info in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        hints = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if hints.get("ui_form") is False:
            default = info.get_default(call_default_factory=True)
            if value != default:
                yield ".".join(map(str, (*loc, name))), value, default
        elif isinstance(value, BaseModel):
            yield from cli_only_fields(value, (*loc, name))


# --- checking a config ----------------------------------------------------------------------


@dataclass(frozen=True)
class StudioPolicy:
    """What a config from the web may name. Recorded in each web run's status."""

    paths: PathPolicy
    functions: RewardFunctions = field(default_factory=RewardFunctions)

    def as_dict(self) -> dict[str, Any]:
        return {**self.paths.as_dict(), "reward_functions": list(self.functions.names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudioPolicy:
        return cls(PathPolicy.from_dict(data), RewardFunctions(tuple(data.get("reward_functions", []))))


def _hub_like(value: str, role: str) -> bool:
    if role == "data" and value.lower().endswith(_DATA_SUFFIXES):
        return False
    return looks_like_hub_id(value) or bool(_BARE_NAME.match(value))


def check_value(value: str, role: str, policy: StudioPolicy | None, refs_ok: bool = False) -> str:
    """The value to store for one typed path (a local path comes back absolute), or
    PathRefused saying why not. `policy` None: the command line (existence only)."""
    check_length(value, role)
    if value.startswith("@"):
        if refs_ok:
            return value  # an earlier stage's output; the pipeline checks the name
        raise PathRefused(f"{value!r}: `@stage` references only work inside a pipeline's stages")
    if role == "function":
        if policy is not None and not policy.functions.allows(value):
            raise PathRefused(
                f"reward function {value!r} was not registered when the studio started "
                f"(registered: {policy.functions.describe()}); the operator adds it with "
                "`--reward-module`, or runs the preset from the command line"
            )
        return value
    if value.startswith("builtin:"):
        known = sorted(BUILTIN_MODELS) if role == "model" else [EMBEDDED_DATA]
        if value in known:
            return value
        raise PathRefused(f"{value!r} is not a builtin {role}; known: {', '.join(known)}")
    if policy is None:
        path = Path(value).expanduser()
        if path.exists():
            _a_file_if_config(path, value, role)
            return os.path.abspath(path)  # the worker runs in the repository root, not here
        if role == "data" or (role not in NEVER_HUB and _hub_like(value, role)):
            return value  # a dataset's preflight names what is missing; a hub id loads when online
        raise PathMissing(f"{role} {value!r} does not exist")
    resolve = policy.paths.resolve_model if role == "model" else policy.paths.resolve
    try:
        found = resolve(value, role)
        _a_file_if_config(found, value, role)  # asked only inside the served folders
        return str(found)
    except PathRefused:
        # `org/name` that exists nowhere on this machine is a hub id (loaded when online).
        if role not in NEVER_HUB and _hub_like(value, role) and not policy.paths.exists_locally(value):
            return value
        raise


def _a_file_if_config(path: Path, value: str, role: str) -> None:
    if role == "config" and not path.is_file():
        raise PathRefused(f"config {value!r} is a folder; expected a YAML file")


def is_run_checkpoint(value: Any) -> bool:
    """`<run>/checkpoints/checkpoint-<n>` of a run directory: what a worker saved and the
    studio's Resume names, never a folder of someone's choosing."""
    if not isinstance(value, str):
        return False
    p = Path(value)
    shaped = p.parent.name == "checkpoints" and re.fullmatch(r"checkpoint-\d+", p.name) is not None
    return shaped and RunDir(p.parent.parent).exists()


def check_config(cfg: RunConfig, policy: StudioPolicy | None, refs_ok: bool = False) -> RunConfig:
    """`cfg` with every typed path checked (and made absolute), or ConfigError naming each
    problem. With a policy (the web) also: registered functions only, CLI-only fields unset."""
    problems: list[str] = []
    changes: dict[Loc, str] = {}
    for uv in user_values(cfg):
        try:
            new = check_value(uv.value, uv.role, policy, refs_ok)
        except PathRefused as e:
            problems.append(f"`{uv.key}`: {e}")
            continue
        if new != uv.value:
            changes[uv.loc] = new
    if policy is not None:
        for key, value, default in cli_only_fields(cfg):
            if key == "resume_from" and is_run_checkpoint(value):
                continue  # the studio's Resume: a run's own checkpoint (still under the served folders)
            problems.append(
                f"`{key}` is {value!r}: it can only be set from the command line "
                f"(python launch.py --preset ... --headless); the studio keeps it {default!r}"
            )
    if problems:
        raise ConfigError(problems)
    if not changes:
        return cfg
    raw = cfg.model_dump(mode="json")
    for loc, new in changes.items():
        _put(raw, loc, new)
    return validate_config(raw, "checked config")


def _put(node: Any, loc: Loc, value: Any) -> None:
    for part in loc[:-1]:
        node = node[part]
    node[loc[-1]] = value


def check_pipeline(raw: dict[str, Any], policy: StudioPolicy | None, source: str) -> dict[str, Any]:
    """A pipeline preset with each stage's typed paths checked like a run's (`@stage`
    references allowed); local paths come back absolute, set on the stage itself."""
    from backends.core.pipelines.pipeline import stage_dicts

    stages = stage_dicts(raw, source, check=lambda cfg: check_config(cfg, policy, refs_ok=True))
    out = copy.deepcopy(raw)
    problems: list[str] = []
    for i, (name, merged) in enumerate(stages):
        try:
            cfg = validate_config(merged, f"{source}: stage {name}")
            checked = check_config(cfg, policy, refs_ok=True)
        except ConfigError as e:
            problems += [f"stage `{name}`: {p}" for p in e.problems]
            continue
        done = checked.model_dump(mode="json")
        for uv in user_values(cfg):
            new = _get(done, uv.loc)
            if new != uv.value:
                _put_stage(out["stages"][i], merged, uv.loc, new)
    if problems:
        raise ConfigError(problems)
    return out


def _get(node: Any, loc: Loc) -> Any:
    for part in loc:
        node = node[part]
    return node


def _put_stage(body: dict[str, Any], merged: dict[str, Any], loc: Loc, value: Any) -> None:
    """Set `loc` in a stage's own body: what it inherits from `defaults` is copied in first,
    so the merged stage changes only at `loc`."""
    node, src = body, merged
    for part in loc[:-1]:
        src = src[part]
        if isinstance(node, dict) and part not in node:
            node[part] = copy.deepcopy(src)
        node = node[part]
    node[loc[-1]] = value


def recorded_policy(status: dict[str, Any], runs_dir: Path) -> StudioPolicy | None:
    """The policy a run (or the pipeline it is a stage of) was created under; None: the
    command line created it."""
    data = status.get("policy")
    if data is None and status.get("pipeline"):
        parent = RunDir(runs_dir / str(status["pipeline"]))
        try:
            data = parent.read_status().get("policy")
        except (OSError, ValueError) as e:
            raise ConfigError([f"the pipeline {parent.path} of this stage cannot be read ({e})"]) from None
    return StudioPolicy.from_dict(data) if data is not None else None
