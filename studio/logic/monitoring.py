"""What the Monitor keeps per browser: the tails of the shown runs' metrics, their states, and
their samples, each read only when its file changed. No gradio import.

`MonitorState` lives in a gr.State. `poll` reads only the new bytes of each metrics.jsonl and
says whether anything changed, so the (expensive) figure is redrawn only then.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from backends.core.data.jsonl import JsonlTail, read_jsonl
from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec import registry
from studio.logic.runs import early_stop_text, resolve_run

NOT_METRICS = {"step", "time", "split", "epoch", "error"}


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


@dataclass
class MonitorState:
    tails: dict[str, JsonlTail] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    early: dict[str, str] = field(default_factory=dict)  # run id -> "stopped early ..." when it did
    drawn: Any = None  # what the figure on the page shows (a repeat of it draws nothing)
    samples_key: Any = None  # (run id, size, mtime) of the samples shown
    samples: list[dict[str, Any]] = field(default_factory=list)
    csv_written_at: float = 0.0
    colors: dict[str, int] = field(default_factory=dict)  # run id -> palette slot, kept while shown

    def color_of(self, run_id: str, n: int) -> int:
        """A run's palette slot: given when it is first shown and kept while it stays, so adding
        or removing another run never recolours it (the lowest slot no shown run holds)."""
        if run_id not in self.colors:
            used = {self.colors[r] for r in self.tails if r in self.colors}
            self.colors[run_id] = next((i for i in range(n) if i not in used), len(self.colors) % n)
        return self.colors[run_id]

    def select(self, runs_dir: Path, run_ids: list[str]) -> None:
        """Keep tails of runs still selected; start new ones at offset 0. A run id is a name
        under `runs_dir`, never a path: a typed `../x` is left out."""
        runs = {r: resolve_run(runs_dir, r) for r in run_ids}
        self.tails = {r: self.tails.get(r) or run.tail_metrics() for r, run in runs.items() if run}
        self.colors = {r: c for r, c in self.colors.items() if r in self.tails}
        self.states = {r: s for r, s in self.states.items() if r in self.tails}
        self.early = {r: s for r, s in self.early.items() if r in self.tails}

    def poll(self, runs_dir: Path) -> bool:
        """Read what is new; True if any run has new rows or a new state."""
        changed = False
        for run_id, tail in self.tails.items():
            if tail.poll():
                changed = True
            run = RunDir(runs_dir / run_id)
            try:
                st = run.read_status()
                state = st["state"]
            except (OSError, ValueError, KeyError):
                st, state = {}, "missing"
            if self.states.get(run_id) != state:
                self.states[run_id] = state
                changed = True
                if st.get("early_stop"):
                    self.early[run_id] = "stopped early " + early_stop_text(st["early_stop"])
        return changed

    def all_terminal(self) -> bool:
        return all(s == "missing" or RunState(s).is_finalized for s in self.states.values())

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for tail in self.tails.values():
            for row in tail.rows:
                for k, v in row.items():
                    if k not in NOT_METRICS and isinstance(v, int | float):
                        names[k] = None
        return sorted(names)

    def status_line(self, notes: list[str] | None = None) -> str:
        """Markdown: each run's state and row count, how it stopped early, and which lines of
        its metrics.jsonl are broken (the rest are drawn)."""
        if not self.tails:
            return "Select one or more runs."
        parts = []
        for run_id, tail in self.tails.items():
            line = f"`{run_id}`: {self.states.get(run_id, '?')}, {len(tail.rows)} rows"
            if run_id in self.early:
                line += f" — {self.early[run_id]}"
            parts.append(line)
        broken = [
            f"**`{run_id}`: metrics.jsonl has broken lines** ({'; '.join(t.errors[:3])}"
            + (f"; and {len(t.errors) - 3} more" if len(t.errors) > 3 else "")
            + "); the other rows are drawn"
            for run_id, t in self.tails.items()
            if t.errors
        ]
        return "\n\n".join([", ".join(parts), *broken, *(notes or [])])

    def samples_of(self, runs_dir: Path) -> list[dict[str, Any]]:
        """Samples of the first shown run that has any; the file is read again only when it
        changed (RL runs append to it while they train)."""
        for run_id in self.tails:
            run = RunDir(runs_dir / run_id)
            try:
                stat = run.samples_path.stat()
            except OSError:
                continue
            key = (run_id, stat.st_size, stat.st_mtime)
            if key != self.samples_key:
                self.samples_key, self.samples = key, read_samples(run)
            if self.samples:
                return self.samples
        self.samples_key, self.samples = None, []
        return []


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
