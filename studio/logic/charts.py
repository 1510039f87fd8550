"""Monitor charts: several runs' metrics drawn with plotly, against steps, wall time or tokens
seen, each chart on a linear or log y axis; the same points as CSV. No gradio import.

The browser draws every point it is sent, so long runs are thinned for display (`MAX_POINTS`
per curve, the smoothing computed on every point first); the CSV has every point.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any, Literal

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from backends.core.runs.rundir import atomic_write_text
from studio.logic.monitoring import MonitorState, default_metrics  # noqa: F401 (tests import them here)

XAxis = Literal["step", "time", "tokens"]
X_TITLES: dict[str, str] = {"step": "step", "time": "wall time (minutes)", "tokens": "tokens seen"}
X_CHOICES = [("step", "step"), ("wall time", "time"), ("tokens seen", "tokens")]
MAX_POINTS = 600  # per curve on the page; a 20k-step run still draws in a blink
ROW_PX, GAP_PX = 300, 90  # a chart's height, and the room between rows for its x axis and the next title

# Plotly's own mode bar: "Download plot as a png" is drawn by the browser (no kaleido here).
PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "displayModeBar": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    "toImageButtonOptions": {"format": "png", "filename": "monitor", "scale": 2},
}


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
        # 12 significant digits: a constant (a learning rate) stays one line, not float noise
        out.append(float(f"{avg / norm:.12g}"))
    return out


class XValues:
    """A run's x for a metrics row: its step, minutes since the run's first row, or the
    tokens seen by then (`num_tokens` of the last train row at or before its step)."""

    def __init__(self, rows: list[dict[str, Any]], x: XAxis) -> None:
        self.x = x
        times = [r["time"] for r in rows if isinstance(r.get("time"), int | float)]
        self.t0 = min(times) if times else 0.0
        tokens = sorted(
            (r["step"], r["num_tokens"])
            for r in rows
            if isinstance(r.get("num_tokens"), int | float) and isinstance(r.get("step"), int)
        )
        self.token_steps = [s for s, _ in tokens]
        self.token_counts = [n for _, n in tokens]

    @property
    def available(self) -> bool:
        return self.x != "tokens" or bool(self.token_steps)

    def of(self, row: dict[str, Any]) -> float | None:
        if self.x == "step":
            return row.get("step")
        if self.x == "time":
            t = row.get("time")
            return round((t - self.t0) / 60, 4) if isinstance(t, int | float) else None
        i = bisect.bisect_right(self.token_steps, row.get("step", -1)) - 1
        return self.token_counts[i] if i >= 0 else None


def series(
    rows: list[dict[str, Any]], metric: str, split: str, xs: XValues | None = None
) -> tuple[list[Any], list[float | None]]:
    """(x, y) of one metric of one split; x is the step unless `xs` says otherwise."""
    pts = []
    for r in rows:
        if r.get("split") != split or metric not in r or "step" not in r:
            continue
        x = xs.of(r) if xs is not None else r["step"]
        if x is not None:
            pts.append((x, r.get(metric)))
    return [p[0] for p in pts], [p[1] for p in pts]


def thin(xs: list[Any], ys: list[Any], limit: int = MAX_POINTS) -> tuple[list[Any], list[Any]]:
    """Every k-th point and the last one, so at most ~`limit` points reach the browser."""
    if len(xs) <= limit:
        return xs, ys
    k = math.ceil(len(xs) / limit)
    idx = list(range(0, len(xs), k))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def _grid(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2
    return math.ceil(n / cols), cols


def make_figure(
    state: MonitorState,
    metrics: list[str],
    smoothing: float,
    splits: list[str],
    x: XAxis = "step",
    log_y: list[str] | tuple[str, ...] = (),
) -> go.Figure:
    metrics = metrics or ["loss"]
    rows, cols = _grid(len(metrics))
    height = rows * ROW_PX + (rows - 1) * GAP_PX
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=metrics,
        horizontal_spacing=0.08,
        vertical_spacing=GAP_PX / height if rows > 1 else 0.0,
    )
    palette = qualitative.Plotly
    for run_id, tail in state.tails.items():
        color = palette[state.color_of(run_id, len(palette))]
        label = run_id if len(run_id) < 40 else run_id[:37] + "..."
        xs = XValues(tail.rows, x)
        if not xs.available:
            continue
        for j, metric in enumerate(metrics):
            r, c = j // cols + 1, j % cols + 1
            for split in splits:
                steps, values = series(tail.rows, metric, split, xs)
                if not steps:
                    continue
                if split == "train":
                    if smoothing > 0 and len(values) > 1:
                        raw_x, raw_y = thin(steps, values)
                        fig.add_trace(
                            go.Scatter(
                                x=raw_x,
                                y=raw_y,
                                mode="lines",
                                line=dict(color=color, width=1),
                                opacity=0.25,
                                showlegend=False,
                                hoverinfo="skip",
                            ),
                            row=r,
                            col=c,
                        )
                    sx, sy = thin(steps, ema(values, smoothing))
                    fig.add_trace(
                        go.Scatter(
                            x=sx,
                            y=sy,
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
                    ex, ey = thin(steps, values)
                    fig.add_trace(
                        go.Scatter(
                            x=ex,
                            y=ey,
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
    for j, metric in enumerate(metrics):
        r, c = j // cols + 1, j % cols + 1
        # The x title only under the lowest chart of each column: between rows it would sit
        # on the title of the chart below.
        lowest = j + cols >= len(metrics)
        fig.update_xaxes(title_text=X_TITLES[x] if lowest else None, row=r, col=c)
        if metric in log_y:
            fig.update_yaxes(type="log", row=r, col=c)
    if not fig.data and state.tails:
        fig.add_annotation(
            text="No points to draw yet for these runs and charts",
            xref="paper",
            yref="paper",
            x=0.5,
            y=1.0,
            yshift=-60,
            showarrow=False,
            font=dict(color="#6b7280", size=14),
        )
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
    top, bottom = (70 if broken else 40), 120  # below: the x axis title, then the legend
    fig.update_layout(
        height=height + top + bottom,
        margin=dict(l=50, r=20, t=top, b=bottom),
        legend=dict(orientation="h", x=0, y=-70 / height, yanchor="top"),
        template="plotly_white",
        uirevision="monitor",  # zoom and hidden curves survive a live redraw
    )
    return fig


def figure_json(fig: go.Figure, filename: str = "monitor") -> str:
    """The figure as the browser's plotly gets it, with the mode bar's PNG download on."""
    data = json.loads(fig.to_json())
    options = {**PLOT_CONFIG["toImageButtonOptions"], "filename": filename}
    data["config"] = {**PLOT_CONFIG, "toImageButtonOptions": options}
    return json.dumps(data)


def missing_x_notes(state: MonitorState, x: XAxis) -> list[str]:
    """Runs left off a chart by the x axis chosen (no token counts logged)."""
    if x != "tokens":
        return []
    return [
        f"`{run_id}` logs no token counts (`num_tokens`): it is not drawn against tokens seen"
        for run_id, tail in state.tails.items()
        if not XValues(tail.rows, x).available
    ]


CSV_HEADER = ["run", "split", "metric", "step", "wall_time_s", "tokens", "value"]


def chart_rows(state: MonitorState, metrics: list[str], splits: list[str]) -> list[list[Any]]:
    """Every point of the shown charts (not thinned, not smoothed), one row each."""
    out: list[list[Any]] = []
    for run_id, tail in state.tails.items():
        tokens = XValues(tail.rows, "tokens")
        times = XValues(tail.rows, "time")
        for metric in metrics:
            for r in tail.rows:
                if r.get("split") in splits and metric in r and "step" in r:
                    t = times.of(r)
                    wall = round(t * 60, 3) if t is not None else None
                    out.append([run_id, r["split"], metric, r["step"], wall, tokens.of(r), r[metric]])
    return out


def csv_name(state: MonitorState, metrics: list[str], splits: list[str]) -> str:
    """One file per view (runs, charts, splits), shared by every browser showing it."""
    key = json.dumps([list(state.tails), metrics, splits])
    first = next(iter(state.tails), "monitor")
    return f"{first.split('-', 2)[-1][:40]}-charts-{hashlib.sha1(key.encode()).hexdigest()[:8]}.csv"


def write_csv(folder: Path, state: MonitorState, metrics: list[str], splits: list[str]) -> Path:
    """The shown charts' points as CSV in `folder` (written whole, then moved into place, so
    a download never gets half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    w.writerows(chart_rows(state, metrics, splits))
    path = folder / csv_name(state, metrics, splits)
    atomic_write_text(path, buf.getvalue())
    return path
