"""Sweeps: a preset with a `sweep:` block tries a recipe over a grid or random draws of its
fields, each trial an ordinary run in its own run directory.

    name: tiny-sweep
    method: sft
    ...                                   # the recipe, as any single-run preset
    sweep:
      parameters:                         # any preset fields: a list of values, or a range
        train.learning_rate: [1.0e-3, 5.0e-3]
        train.warmup_steps: {low: 0, high: 4, type: int}
      strategy: grid                      # grid (every combination of the lists) | random
      trials: 4                           # random: how many draws; grid: all when omitted
      metric: loss                        # a logged metric's last value; eval_<m> for the eval split
      goal: minimize                      # or maximize
      seed: 0                             # random draws

A sweep runs as a pipeline whose stages are its trials (no trial refers to another, and a
failed trial does not stop the others), so it queues, stops, resumes its finished trials and
reports like any pipeline, headless or from the Train tab. Its folder holds sweep.json: every
trial's overrides, run, state and metric, best first. `strategy: optuna` (TPE sampling and
pruning) is not here yet and is refused by name.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
from typing import Any

from backends.core.runs.rundir import RunDir, atomic_write_text
from backends.core.spec.config import ConfigError, apply_overrides

STRATEGIES = ("grid", "random")
SWEEP_KEYS = {"parameters", "strategy", "trials", "metric", "goal", "seed"}
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
    if strategy == "optuna":
        out.append(f"`sweep.strategy: optuna` is not supported yet; use {' or '.join(STRATEGIES)} ({where})")
    elif strategy not in STRATEGIES:
        out.append(f"`sweep.strategy` is {strategy!r}; expected one of {', '.join(STRATEGIES)} ({where})")
    if spec.get("goal", "minimize") not in ("minimize", "maximize"):
        out.append(f"`sweep.goal` is {spec.get('goal')!r}; expected minimize or maximize ({where})")
    if not isinstance(spec.get("metric"), str) or not spec.get("metric"):
        out.append(f"`sweep.metric` names the logged metric that ranks the trials, e.g. loss ({where})")
    trials = spec.get("trials")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        out.append(f"`sweep.trials` is {trials!r}; expected a whole number of trials, 1 or more ({where})")
    if strategy == "random" and trials is None:
        out.append(f"`sweep.strategy: random` needs `sweep.trials` ({where})")
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
    """Each trial's field values, in the order they run."""
    params: dict[str, Any] = spec["parameters"]
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
    stages = []
    for i, values in enumerate(trial_overrides(spec), 1):
        trial = apply_overrides(copy.deepcopy(base), [f"{k}={json.dumps(v)}" for k, v in values.items()])
        stages.append({"stage": f"t{i:02d}", **trial, "name": f"{name}-t{i:02d}"})
    return {"name": name, "stages": stages}


def metric_value(run: RunDir, metric: str) -> float | None:
    """The last logged value of `metric` (`eval_<m>`: of the eval split)."""
    from backends.core.reports.model_card import final_metrics

    split, key = ("eval", metric.removeprefix("eval_")) if metric.startswith("eval_") else ("train", metric)
    value = final_metrics(run).get(split, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def write_sweep(pdir: RunDir, raw: dict[str, Any]) -> dict[str, Any]:
    """sweep.json: every trial with its overrides, run, state and metric, best first."""
    spec = raw["sweep"]
    stages = pdir.read_status().get("stages", [])
    rows = []
    for values, st in zip(trial_overrides(spec), stages, strict=False):
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
    rows.sort(key=lambda r: (r["metric"] is None, sign * (r["metric"] or 0.0)))
    summary = {
        "metric": spec["metric"],
        "goal": spec.get("goal", "minimize"),
        "strategy": spec.get("strategy", "grid"),
        "parameters": list(spec["parameters"]),
        "best": rows[0]["trial"] if rows and rows[0]["metric"] is not None else None,
        "trials": rows,
    }
    atomic_write_text(pdir.path / SWEEP_FILE, json.dumps(summary, indent=2))
    return summary


def sweep_table(summary: dict[str, Any]) -> str:
    """The sweep as a text table, best first (the headless command prints it)."""
    params = summary["parameters"]
    head = ["trial", *params, summary["metric"], "state"]
    lines = ["  ".join(f"{h:>14}" for h in head)]
    for r in summary["trials"]:
        cells = [r["trial"], *(r["overrides"].get(p) for p in params), r["metric"], r["state"]]
        lines.append("  ".join(f"{c:>14.4g}" if isinstance(c, float) else f"{c!s:>14}" for c in cells))
    best = summary["best"]
    goal = "lowest" if summary["goal"] == "minimize" else "highest"
    lines.append(f"best ({goal} {summary['metric']}): {best}" if best else "no trial logged the metric")
    return "\n".join(lines)
