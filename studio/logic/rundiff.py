"""The config diff of two or more runs: only the fields that differ, beside each run's final
metrics. No gradio import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError
from backends.core.spec.rawconfig import load_yaml
from studio.logic.monitoring import default_metrics
from studio.logic.runs import resolve_run, run_method

_MISSING = "—"  # a field one run's config does not have (an older run, another method's section)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """`{"train": {"learning_rate": 1}}` -> `{"train.learning_rate": 1}`; lists stay values."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _config(run: RunDir) -> dict[str, Any]:
    try:
        raw = load_yaml(run.config_path.read_text(encoding="utf-8"), str(run.config_path))
    except (OSError, ConfigError) as e:
        raise ConfigError([f"run {run.run_id}: config.yaml is unreadable ({e})"]) from None
    return flatten(raw if isinstance(raw, dict) else {})


def changed_fields(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every config, in config order."""
    keys: dict[str, None] = {}
    for c in configs:
        keys.update(dict.fromkeys(c))
    return [k for k in keys if len({repr(c.get(k, _MISSING)) for c in configs}) > 1]


def final_metrics(run: RunDir, metrics: list[str]) -> dict[tuple[str, str], float]:
    """The last logged value of each metric, per split."""
    tail = run.tail_metrics()
    tail.poll()  # broken lines are skipped here; the Monitor names them
    out: dict[tuple[str, str], float] = {}
    for row in tail.rows:
        for m in metrics:
            if isinstance(row.get(m), int | float):
                out[(m, str(row.get("split")))] = row[m]
    return out


def _show(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list | dict):
        return str(value)
    return value


def config_diff(
    runs_dir: Path, run_ids: list[str], metrics: list[str] | None = None
) -> tuple[list[str], list[list[Any]], str]:
    """(headers, one row per run, a note): run, state, each field that differs, then the final
    value of each metric (default: the first charts of the runs' methods) per split."""
    runs = [r for r in (resolve_run(runs_dir, i) for i in dict.fromkeys(run_ids or [])) if r is not None]
    if len(runs) < 2:
        return [], [], "Select two or more runs to see how their configs differ."
    configs = [_config(r) for r in runs]
    fields = changed_fields(configs)
    metrics = metrics or default_metrics([run_method(r) for r in runs])[:2]
    finals = [final_metrics(r, metrics) for r in runs]
    metric_cols = [(m, s) for m in metrics for s in ("train", "eval") if any((m, s) in f for f in finals)]
    headers = ["run", "state", *fields, *[f"final {m} ({s})" for m, s in metric_cols]]
    rows = []
    for run, cfg, fin in zip(runs, configs, finals, strict=True):
        state = run.read_status().get("state", "?")
        rows.append(
            [
                run.run_id,
                state,
                *[_show(cfg.get(f, _MISSING)) for f in fields],
                *[_show(fin.get(mc, _MISSING)) for mc in metric_cols],
            ]
        )
    note = f"{len(fields)} field(s) differ" if fields else "The configs are the same."
    return headers, rows, note
