"""A pipeline preset's stages: `defaults` merged into each stage, `@stage` and `@stage.<output>`
references found and resolved to an earlier stage's model or dataset, `--set stages.<stage>.<key>`
overrides, and the checks that each stage is a valid run config. No torch.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.core.data.dataplan import DataFormatError
from backends.core.data.preflight import preflight
from backends.core.pipelines.sweep import expand_sweep, is_sweep, stage_trials
from backends.core.runs.rundir import RunDir
from backends.core.spec import registry
from backends.core.spec.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    read_preset,
    validate_config,
)

REF = re.compile(r"^@([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?$")


def is_pipeline(raw: Any) -> bool:
    """A preset of stages, or a sweep (which runs as a pipeline of its trials)."""
    return isinstance(raw, dict) and ("stages" in raw or "sweep" in raw)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return [node] if isinstance(node, str) and node.startswith("@") else []


def stage_dicts(
    raw: dict[str, Any], source: str, check: Callable[[RunConfig], Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(stage name, merged raw config) per stage; validates names, references and each config."""
    if is_sweep(raw):
        raw = expand_sweep(raw, source)
    problems: list[str] = []
    unknown = set(raw) - {"name", "defaults", "stages", "reference"}
    ref = raw.get("reference")
    if ref is not None and (
        not isinstance(ref, dict) or not isinstance(ref.get("win_rate_vs_base", {}), dict)
    ):
        problems.append(
            f"`reference` must be a mapping with `source` and `win_rate_vs_base: {{stage: rate}}` ({source})"
        )
    if unknown:
        problems.append(
            f"pipeline keys {sorted(unknown)} are not known ({source}); use name, defaults, stages, reference"
        )
    stages = raw.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(problems + [f"`stages` must be a non-empty list ({source})"])
    defaults = raw.get("defaults") or {}
    out: list[tuple[str, dict[str, Any]]] = []
    methods: dict[str, str] = {}
    swept = ""
    for i, st in enumerate(stages):
        where = f"{source}: stages[{i}]"
        if not isinstance(st, dict) or not isinstance(st.get("stage"), str):
            problems.append(f"{where} needs a `stage` name")
            continue
        name = st["stage"]
        body = {k: v for k, v in st.items() if k not in ("stage", "sweep")}
        merged = _merge(defaults, body)
        merged.setdefault("name", f"{raw.get('name', 'pipeline')}-{name}")
        for ref in _refs(merged):
            m = REF.match(ref)
            if not m or m.group(1) not in methods:
                problems.append(
                    f"{where} ({name}): `{ref}` does not name an earlier stage "
                    f"(earlier: {sorted(methods) or 'none'})"
                )
            elif m.group(2) and m.group(2) not in stage_outputs(methods[m.group(1)]):
                made = stage_outputs(methods[m.group(1)])
                problems.append(
                    f"{where} ({name}): `{ref}`: stage `{m.group(1)}` ({methods[m.group(1)]}) writes "
                    + (f"the datasets {', '.join(made)}" if made else "no datasets, only a model")
                )
        trials = [(name, merged)]
        if "sweep" in st:  # its trials run in its place; `@name` later is the best trial's run
            if swept:
                problems.append(f"{where} ({name}): only one stage of a pipeline may be swept (`{swept}` is)")
            swept = name
            try:
                trials = stage_trials(name, merged, st["sweep"], f"{where} ({name})")
            except ConfigError as e:
                problems += e.problems
                trials = []
        for tname, tmerged in trials:
            problems += _check_stage(tmerged, f"{where} ({tname})", methods, check)
            out.append((tname, tmerged))
        if name in methods:
            problems.append(f"{where}: stage name `{name}` is used twice")
        methods[name] = str(merged.get("method", "sft"))
    if problems:
        raise ConfigError(problems)
    return out


def _check_stage(
    merged: dict[str, Any], where: str, methods: dict[str, str], check: Callable[[RunConfig], Any] | None
) -> list[str]:
    """A stage's config problems, its `@stage` references standing in for the runs to come."""
    placeholder = resolve_refs(merged, {n: Path("/pipeline") / n for n in methods})
    try:
        if check is not None:  # the studio's path policy, before the preflight opens anything
            check(validate_config(merged, where))
        cfg = validate_config(placeholder, where)
        if not str((merged.get("data") or {}).get("dataset", "")).startswith("@"):
            preflight(cfg)  # a stage's own data is checked now; `@stage` data when its stage starts
    except ConfigError as e:
        return e.problems
    except DataFormatError as e:
        return [f"{where}: {e}"]
    return []


def stage_outputs(method: str) -> tuple[str, ...]:
    try:
        return registry.get(method).outputs
    except KeyError:
        return ()  # an unknown method is reported by the stage's own validation


def resolve_refs(node: Any, outputs: dict[str, Path]) -> Any:
    if isinstance(node, dict):
        return {k: resolve_refs(v, outputs) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_refs(v, outputs) for v in node]
    if isinstance(node, str) and (m := REF.match(node)) and m.group(1) in outputs:
        base = outputs[m.group(1)]
        run = RunDir(base)
        return str(run.data_path(m.group(2))) if m.group(2) else str(run.model_dir)
    return node


def load_pipeline(path: str | os.PathLike[str], overrides: list[str] | None = None) -> dict[str, Any]:
    """Read and check a pipeline preset. `--set stages.<stage>.<key>=v` edits one stage,
    `--set defaults.<key>=v` all of them."""
    raw = read_preset(path)
    if overrides:
        by_stage = {s.get("stage"): s for s in raw.get("stages", []) if isinstance(s, dict)}
        for item in overrides:
            key, _, value = item.partition("=")
            parts = key.split(".")
            if parts[0] == "stages" and len(parts) > 2:
                if parts[1] not in by_stage:
                    raise ConfigError([f"`--set {item}`: no stage `{parts[1]}`; stages: {sorted(by_stage)}"])
                apply_overrides(by_stage[parts[1]], [".".join(parts[2:]) + "=" + value])
            else:
                apply_overrides(raw, [item])
    stage_dicts(raw, str(path))
    return raw
