"""Monitor logic: tail several runs' metrics cheaply and draw them with plotly.

`MonitorState` lives in a gr.State per browser session. `poll` reads only new bytes of each
metrics.jsonl and says whether anything changed, so the (expensive) figure is redrawn only
then. No gradio import.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from backends.core import registry
from backends.core.jsonl import JsonlTail, read_jsonl
from backends.core.rundir import RunDir, RunState
from studio.logic.runs import resolve_run


def default_metrics(methods: list[str], available: list[str] | None = None) -> list[str]:
    """The first charts for runs of these methods: each method's registered charts, a few of
    each, in order. A chart like `win_rate/*` is a pattern matched against `available`."""
    out: list[str] = []
    for m in methods:
        try:
            charts = registry.get(m).charts
        except KeyError:
            charts = ("loss",)
        for chart in charts[:4]:
            names = fnmatch.filter(available or [], chart) if any(c in chart for c in "*?[") else [chart]
            for name in names:
                if name not in out:
                    out.append(name)
    return out or ["loss"]


def read_samples(run: RunDir, last: int = 200) -> list[dict[str, Any]]:
    """The last `last` rows of a run's samples.jsonl (RL completions with their rewards)."""
    if not run.samples_path.exists():
        return []
    return read_jsonl(run.samples_path, complete_only=True)[-last:]


def samples_table(rows: list[dict[str, Any]], limit: int = 50) -> list[list[Any]]:
    """Newest first: step, reward function, reward, length, completion, prompt."""
    out = []
    for r in reversed(rows[-limit:]):
        prompt = r.get("prompt")
        prompt = prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)
        out.append(
            [
                r.get("step"),
                r.get("reward_fn", "judge"),
                round(float(r.get("reward", 0)), 3),
                r.get("length"),
                str(r.get("completion"))[:400],
                prompt[:200],
            ]
        )
    return out


def reward_length_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Reward against response length, coloured by step: a judge rewarding length, or a
    policy collapsing to short or long answers, shows up here."""
    fig = go.Figure()
    if rows:
        fig.add_trace(
            go.Scatter(
                x=[r.get("length", 0) for r in rows],
                y=[r.get("reward", 0) for r in rows],
                mode="markers",
                marker=dict(
                    color=[r.get("step", 0) for r in rows],
                    colorscale="Viridis",
                    showscale=True,
                    colorbar=dict(title="step"),
                    size=7,
                    opacity=0.7,
                ),
                text=[str(r.get("completion", ""))[:120] for r in rows],
                hoverinfo="text+x+y",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=40, r=20, t=40, b=40),
        template="plotly_white",
        title="reward vs response length (words)",
        xaxis_title="words",
        yaxis_title="reward",
    )
    return fig


_NOT_METRICS = {"step", "time", "split", "epoch", "error"}


@dataclass
class MonitorState:
    tails: dict[str, JsonlTail] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)

    def select(self, runs_dir: Path, run_ids: list[str]) -> None:
        """Keep tails of runs still selected; start new ones at offset 0. A run id is a name
        under `runs_dir`, never a path: a typed `../x` is left out."""
        run_ids = [r for r in run_ids if resolve_run(runs_dir, r) is not None]
        self.tails = {r: self.tails.get(r) or RunDir(runs_dir / r).tail_metrics() for r in run_ids}
        self.states = {r: s for r, s in self.states.items() if r in run_ids}

    def poll(self, runs_dir: Path) -> bool:
        """Read what is new; True if any run has new rows or a new state."""
        changed = False
        for run_id, tail in self.tails.items():
            if tail.poll():
                changed = True
            run = RunDir(runs_dir / run_id)
            try:
                state = run.read_status()["state"]
            except (OSError, ValueError):
                state = "missing"
            if self.states.get(run_id) != state:
                self.states[run_id] = state
                changed = True
        return changed

    def all_terminal(self) -> bool:
        return all(s == "missing" or RunState(s).is_finalized for s in self.states.values())

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for tail in self.tails.values():
            for row in tail.rows:
                for k, v in row.items():
                    if k not in _NOT_METRICS and isinstance(v, int | float):
                        names[k] = None
        return sorted(names)


def ema(values: list[float | None], weight: float) -> list[float | None]:
    """TensorBoard-style debiased exponential moving average; gaps (None) stay gaps."""
    if weight <= 0:
        return list(values)
    out: list[float | None] = []
    avg, norm = 0.0, 0.0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
            continue
        avg = avg * weight + (1 - weight) * v
        norm = norm * weight + (1 - weight)
        out.append(avg / norm)
    return out


def series(rows: list[dict[str, Any]], metric: str, split: str) -> tuple[list[int], list[float | None]]:
    pts = [
        (r["step"], r.get(metric)) for r in rows if r.get("split") == split and metric in r and "step" in r
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def make_figure(state: MonitorState, metrics: list[str], smoothing: float, splits: list[str]) -> go.Figure:
    metrics = metrics or ["loss"]
    cols = 1 if len(metrics) == 1 else 2
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=metrics,
        horizontal_spacing=0.08,
        vertical_spacing=0.12 if rows > 1 else 0.0,
    )
    palette = qualitative.Plotly
    for i, (run_id, tail) in enumerate(state.tails.items()):
        color = palette[i % len(palette)]
        label = run_id if len(run_id) < 40 else run_id[:37] + "..."
        for j, metric in enumerate(metrics):
            r, c = j // cols + 1, j % cols + 1
            for split in splits:
                steps, values = series(tail.rows, metric, split)
                if not steps:
                    continue
                if split == "train":
                    if smoothing > 0 and len(values) > 1:
                        fig.add_trace(
                            go.Scatter(
                                x=steps,
                                y=values,
                                mode="lines",
                                line=dict(color=color, width=1),
                                opacity=0.25,
                                showlegend=False,
                                hoverinfo="skip",
                            ),
                            row=r,
                            col=c,
                        )
                    fig.add_trace(
                        go.Scatter(
                            x=steps,
                            y=ema(values, smoothing),
                            mode="lines",
                            name=f"{label} · train",
                            line=dict(color=color, width=2),
                            legendgroup=f"{run_id}-train",
                            showlegend=j == 0,
                        ),
                        row=r,
                        col=c,
                    )
                else:
                    fig.add_trace(
                        go.Scatter(
                            x=steps,
                            y=values,
                            mode="lines+markers",
                            name=f"{label} · {split}",
                            line=dict(color=color, width=2, dash="dash"),
                            marker=dict(size=7),
                            legendgroup=f"{run_id}-{split}",
                            showlegend=j == 0,
                        ),
                        row=r,
                        col=c,
                    )
    fig.update_xaxes(title_text="step")
    broken = [f"{run_id}: metrics.jsonl {e}" for run_id, t in state.tails.items() for e in t.errors[:2]]
    if broken:  # the other rows are drawn; say which lines were not
        fig.add_annotation(
            text="Skipped: " + "; ".join(broken[:3]),
            xref="paper",
            yref="paper",
            x=0,
            y=1.0,
            yshift=40,
            showarrow=False,
            xanchor="left",
            font=dict(color="#b91c1c", size=12),
        )
    fig.update_layout(
        height=max(320, 300 * rows),
        margin=dict(l=40, r=20, t=70 if broken else 40, b=40),
        legend=dict(orientation="h", y=-0.15),
        template="plotly_white",
    )
    return fig
