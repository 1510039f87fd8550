"""Sweeps: a preset with a `sweep:` block tries a recipe over a grid or random draws of its
fields, each trial an ordinary run in its own run directory.

    name: tiny-sweep
    method: sft
    ...                                   # the recipe, as any single-run preset
    sweep:
      parameters:                         # any preset fields: a list of values, or a range
        train.learning_rate: [1.0e-3, 5.0e-3]
        train.warmup_steps: {low: 0, high: 4, type: int}
      strategy: grid                      # grid (every combination of the lists) | random | optuna
      trials: 4                           # random: how many draws; grid: all when omitted
      metric: loss                        # a logged metric's last value; eval_<m> for the eval split
      goal: minimize                      # or maximize
      seed: 0                             # random draws

A sweep runs as a pipeline whose stages are its trials (no trial refers to another, and a
failed trial does not stop the others), so it queues, stops, resumes its finished trials and
reports like any pipeline, headless or from the Train tab. One stage of a pipeline may carry a
`sweep:` block instead (grid or random): its trials `<stage>-t01`, ... run in its place, and
later stages' `@stage` is the best trial's run. Its folder holds sweep.json: every
trial's overrides, run, state and metric, best first. `strategy: optuna` (TPE sampling and
pruning) picks each trial's values from the ones before it: backends/core/pipelines/optuna_sweep.py.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import math
import random
from typing import Any

from backends.core.runs.rundir import RunDir, atomic_write_text
from backends.core.spec.config import ConfigError, apply_overrides, validate_config

STRATEGIES = ("grid", "random", "optuna")
SWEEP_KEYS = {"parameters", "strategy", "trials", "metric", "goal", "seed", "pruning"}
SWEEP_FILE = "sweep.json"


def is_sweep(raw: Any) -> bool:
    return isinstance(raw, dict) and "sweep" in raw


def _problems(spec: Any, where: str) -> list[str]:
    if not isinstance(spec, dict):
        return [f"`sweep` must be a mapping ({where})"]
    out = [
        f"`sweep.{k}` is not a sweep setting; use {', '.join(sorted(SWEEP_KEYS))} ({where})"
        for k in sorted(set(spec) - SWEEP_KEYS)
    ]
    params = spec.get("parameters")
    if not isinstance(params, dict) or not params:
        out.append(
            f"`sweep.parameters` must map preset fields to values, e.g. train.learning_rate: [1.0e-4, 3.0e-4] ({where})"
        )
    strategy = spec.get("strategy", "grid")
    if strategy == "optuna" and importlib.util.find_spec("optuna") is None:
        out.append(f"`sweep.strategy: optuna` needs the package optuna: pip install -e '.[sweep]' ({where})")
    if "pruning" in spec and strategy != "optuna":
        out.append(f"`sweep.pruning` needs `sweep.strategy: optuna` (this sweep is {strategy}) ({where})")
    out += _pruning_problems(spec.get("pruning"), where)
    if strategy not in STRATEGIES:
        out.append(f"`sweep.strategy` is {strategy!r}; expected one of {', '.join(STRATEGIES)} ({where})")
    if spec.get("goal", "minimize") not in ("minimize", "maximize"):
        out.append(f"`sweep.goal` is {spec.get('goal')!r}; expected minimize or maximize ({where})")
    if not isinstance(spec.get("metric"), str) or not spec.get("metric"):
        out.append(f"`sweep.metric` names the logged metric that ranks the trials, e.g. loss ({where})")
    trials = spec.get("trials")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        out.append(f"`sweep.trials` is {trials!r}; expected a whole number of trials, 1 or more ({where})")
    if strategy in ("random", "optuna") and trials is None:
        out.append(f"`sweep.strategy: {strategy}` needs `sweep.trials` ({where})")
    for key, values in (params or {}).items() if isinstance(params, dict) else ():
        if isinstance(values, list):
            if not values:
                out.append(f"`sweep.parameters.{key}` is an empty list ({where})")
        elif isinstance(values, dict):
            if strategy == "grid":
                out.append(f"`sweep.parameters.{key}` is a range; a grid needs a list of values ({where})")
            elif not {"low", "high"} <= set(values) or not values["low"] < values["high"]:
                out.append(f"`sweep.parameters.{key}` needs `low` < `high` ({where})")
        else:
            out.append(f"`sweep.parameters.{key}` must be a list of values or {{low, high}} ({where})")
    return out


PRUNING_KEYS = {"startup_trials", "warmup_steps", "on"}
PRUNE_ON = ("early_stopping", "metric")


def _pruning_problems(pruning: Any, where: str) -> list[str]:
    if pruning is None or isinstance(pruning, bool):
        return []
    if not isinstance(pruning, dict):
        return [
            f"`sweep.pruning` is {pruning!r}; expected true, false or {{{', '.join(sorted(PRUNING_KEYS))}}} ({where})"
        ]
    out = [
        f"`sweep.pruning.{k}` is not a pruning setting; use {', '.join(sorted(PRUNING_KEYS))} ({where})"
        for k in sorted(set(pruning) - PRUNING_KEYS)
    ]
    if pruning.get("on", PRUNE_ON[0]) not in PRUNE_ON:
        out.append(
            f"`sweep.pruning.on` is {pruning['on']!r}; expected one of {', '.join(PRUNE_ON)} ({where})"
        )
    return out


def _prune_on_needs_eval(base: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    """Pruning on the early-stopping metric needs trials that evaluate while they train."""
    pruning = spec.get("pruning")
    if (
        isinstance(pruning, dict)
        and pruning.get("on") == "early_stopping"
        and not (base.get("train") or {}).get("eval_steps")
    ):
        return [
            f"`sweep.pruning.on` is early_stopping, but the trials do not evaluate while training: "
            f"set train.eval_steps (and data.eval_fraction), or prune on the sweep's metric (on: metric) ({where})"
        ]
    return []


def _draw(values: Any, rng: random.Random) -> Any:
    if isinstance(values, list):
        return rng.choice(values)
    lo, hi = values["low"], values["high"]
    if values.get("type") == "int":
        return rng.randint(int(lo), int(hi))
    if values.get("log"):
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def trial_overrides(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each trial's field values, in the order they run (optuna's are asked as they run: none
    here)."""
    params: dict[str, Any] = spec["parameters"]
    if spec.get("strategy") == "optuna":
        return [{} for _ in range(spec["trials"])]
    if spec.get("strategy", "grid") == "grid":
        combos = [dict(zip(params, c, strict=True)) for c in itertools.product(*params.values())]
        n = spec.get("trials")
        if n is not None and n < len(combos):
            raise ConfigError(
                [
                    f"`sweep.trials` is {n} but the grid has {len(combos)} combinations: drop `trials` or values"
                ]
            )
        return combos
    rng = random.Random(spec.get("seed", 0))
    return [{k: _draw(v, rng) for k, v in params.items()} for _ in range(spec["trials"])]


def expand_sweep(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The pipeline a sweep preset runs: one stage per trial (`t01`, `t02`, ...)."""
    spec = raw.get("sweep")
    problems = _problems(spec, where)
    if problems:
        raise ConfigError(problems)
    base = {k: v for k, v in raw.items() if k != "sweep"}
    name = str(base.get("name", "sweep"))
    if spec.get("strategy") == "optuna":
        if problems := _prune_on_needs_eval(base, spec, where):
            raise ConfigError(problems)
        _check_extremes(base, spec["parameters"], where)
    stages = []
    for i, values in enumerate(trial_overrides(spec), 1):
        trial = _with(base, values)
        stages.append({"stage": f"t{i:02d}", **trial, "name": f"{name}-t{i:02d}"})
    return {"name": name, "stages": stages}


def _with(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return apply_overrides(copy.deepcopy(base), [f"{k}={json.dumps(v)}" for k, v in values.items()])


def trial_config(merged: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A stage's merged config with an optuna trial's values put in."""
    return _with(merged, values)


def _check_extremes(base: dict[str, Any], params: dict[str, Any], where: str) -> None:
    """Values optuna will pick from are refused before any trial runs: each listed value and
    each range's two ends, one field at a time."""
    problems: list[str] = []
    for key, values in params.items():
        for v in values if isinstance(values, list) else [values["low"], values["high"]]:
            try:
                validate_config(_with(base, {key: v}), f"{where}: sweep.parameters.{key} = {v!r}")
            except ConfigError as e:
                problems += e.problems
    if problems:
        raise ConfigError(problems)


def swept_stage(raw: dict[str, Any]) -> tuple[str, dict[str, Any], list[str]] | None:
    """(stage, its sweep, its trials' stage names) of a pipeline whose one stage has a `sweep:`
    block; later stages' `@stage` is the best trial's run."""
    for st in raw.get("stages") or []:
        if isinstance(st, dict) and isinstance(st.get("sweep"), dict):
            n = len(trial_overrides(st["sweep"]))
            return st["stage"], st["sweep"], [f"{st['stage']}-t{i:02d}" for i in range(1, n + 1)]
    return None


def stage_trials(
    name: str, merged: dict[str, Any], spec: Any, where: str
) -> list[tuple[str, dict[str, Any]]]:
    """A swept pipeline stage as its trials: (`<stage>-t01`, config), ... (grid or random)."""
    problems = _problems(spec, where)
    if isinstance(spec, dict) and spec.get("strategy") == "optuna":
        problems.append(
            f"a pipeline stage's sweep takes grid or random; optuna sweeps a whole preset ({where})"
        )
    if problems:
        raise ConfigError(problems)
    return [
        (f"{name}-t{i:02d}", {**_with(merged, values), "name": f"{merged['name']}-t{i:02d}"})
        for i, values in enumerate(trial_overrides(spec), 1)
    ]


def metric_value(run: RunDir, metric: str) -> float | None:
    """The last logged value of `metric` (`eval_<m>`: of the eval split)."""
    from backends.core.reports.model_card import final_metrics

    split, key = ("eval", metric.removeprefix("eval_")) if metric.startswith("eval_") else ("train", metric)
    value = final_metrics(run).get(split, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def write_sweep(pdir: RunDir, raw: dict[str, Any]) -> dict[str, Any]:
    """sweep.json: every trial with its overrides, run, state and metric, best first."""
    swept = swept_stage(raw)
    spec, names = (raw["sweep"], None) if swept is None else (swept[1], swept[2])
    stages = [s for s in pdir.read_status().get("stages", []) if names is None or s["stage"] in names]
    rows = []
    for planned, st in zip(trial_overrides(spec), stages, strict=False):
        values = st.get("overrides", planned)  # optuna's, recorded as each trial starts
        run = RunDir(pdir.path.parent / st["run_id"]) if st.get("run_id") else None
        value = metric_value(run, spec["metric"]) if run is not None and run.exists() else None
        rows.append(
            {
                "trial": st["stage"],
                "overrides": values,
                "run_id": st.get("run_id"),
                "state": st["state"],
                "metric": value,
            }
        )
    sign = 1 if spec.get("goal", "minimize") == "minimize" else -1
    # finished trials by their metric, then pruned ones (stopped early: not comparable), then the rest
    rows.sort(key=lambda r: (r["metric"] is None, r["state"] == "pruned", sign * (r["metric"] or 0.0)))
    summary = {
        **({"stage": swept[0]} if swept else {}),
        "metric": spec["metric"],
        "goal": spec.get("goal", "minimize"),
        "strategy": spec.get("strategy", "grid"),
        "parameters": list(spec["parameters"]),
        "best": next(
            (r["trial"] for r in rows if r["state"] == "succeeded" and r["metric"] is not None), None
        ),
        "trials": rows,
    }
    atomic_write_text(pdir.path / SWEEP_FILE, json.dumps(summary, indent=2))
    return summary


def sweep_table(summary: dict[str, Any]) -> str:
    """The sweep as a text table, best first (the headless command prints it)."""
    params = summary["parameters"]
    head = ["trial", *params, summary["metric"], "state"]
    body = [
        [
            f"{c:.4g}" if isinstance(c, float) else str(c)
            for c in [r["trial"], *(r["overrides"].get(p) for p in params), r["metric"], r["state"]]
        ]
        for r in summary["trials"]
    ]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)) for row in [head, *body]]
    best = summary["best"]
    goal = "lowest" if summary["goal"] == "minimize" else "highest"
    lines.append(f"best ({goal} {summary['metric']}): {best}" if best else "no trial logged the metric")
    return "\n".join(lines)
