"""A sweep in the Monitor: its trials as a table, best first, and a parallel-coordinates chart
(one axis per swept field, the last the metric; each line a trial, coloured by the metric).
Read from the sweep's sweep.json (backends/core/pipelines/sweep.py writes it after every
trial). No gradio import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from backends.core.pipelines.sweep import SWEEP_FILE
from studio.logic.runs import resolve_run


def selected_sweeps(runs_dir: Path, run_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(run id, sweep.json) of each selected run that is a sweep; an unreadable file is said
    in its summary's `error` rather than dropped."""
    out = []
    for run_id in run_ids:
        run = resolve_run(runs_dir, run_id)
        if run is None or not (run.path / SWEEP_FILE).exists():
            continue
        try:
            out.append((run_id, json.loads((run.path / SWEEP_FILE).read_text())))
        except (OSError, ValueError) as e:
            out.append((run_id, {"error": f"{SWEEP_FILE} is not readable: {e}"}))
    return out


def _cell(v: Any) -> Any:
    return float(f"{v:.4g}") if isinstance(v, float) else v


def sweep_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows: trial, each swept field, the metric, state, run; best first."""
    params = summary["parameters"]
    headers = ["trial", *params, summary["metric"], "state", "run"]
    rows = [
        [
            t["trial"],
            *(_cell(t["overrides"].get(p)) for p in params),
            _cell(t["metric"]),
            t["state"],
            t["run_id"],
        ]
        for t in summary["trials"]
    ]
    return headers, rows


def sweep_line(run_id: str, summary: dict[str, Any]) -> str:
    if "error" in summary:
        return f"**`{run_id}`: {summary['error']}**"
    done = sum(t["state"] == "succeeded" for t in summary["trials"])
    goal = "lowest" if summary["goal"] == "minimize" else "highest"
    best = next((t for t in summary["trials"] if t["trial"] == summary.get("best")), None)
    head = f"Sweep `{run_id}` ({summary['strategy']}): {done} of {len(summary['trials'])} trials done"
    if best is None:
        return head + f"; no trial has logged `{summary['metric']}` yet."
    values = ", ".join(f"{k} = {_cell(v)}" for k, v in best["overrides"].items())
    return (
        head
        + f"; best ({goal} `{summary['metric']}`): **{best['trial']}** ({values}): {_cell(best['metric'])}"
    )


def _axis(label: str, values: list[Any]) -> dict[str, Any]:
    """A numeric axis, or a categorical one (values as ticks) when any value is not a number."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return {"label": label, "values": values}
    names = sorted({str(v) for v in values})
    return {
        "label": label,
        "values": [names.index(str(v)) for v in values],
        "tickvals": list(range(len(names))),
        "ticktext": names,
    }


def sweep_figure(summary: dict[str, Any]) -> go.Figure:
    """Parallel coordinates of the trials that logged the metric."""
    trials = [t for t in summary.get("trials", []) if t.get("metric") is not None]
    fig = go.Figure()
    if not trials:
        fig.add_annotation(text="no trial has logged the metric yet", showarrow=False)
        fig.update_layout(height=160, xaxis_visible=False, yaxis_visible=False)
        return fig
    metric = [t["metric"] for t in trials]
    dims = [_axis(p, [t["overrides"].get(p) for t in trials]) for p in summary["parameters"]]
    dims.append({"label": summary["metric"], "values": metric})
    # the best trials in the brightest colour (yellow) whichever way the goal points
    scale = "Viridis" if summary.get("goal") == "maximize" else "Viridis_r"
    fig.add_trace(
        go.Parcoords(
            line={
                "color": metric,
                "colorscale": scale,
                "showscale": True,
                "colorbar": {"title": summary["metric"]},
            },
            dimensions=dims,
        )
    )
    fig.update_layout(height=360, margin={"l": 60, "r": 40, "t": 50, "b": 30})
    return fig
