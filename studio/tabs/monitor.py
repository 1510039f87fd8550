"""Monitor tab: live plotly charts of any metric of one or several runs, overlaid.

A 1 s timer reads only new bytes of each selected run's metrics.jsonl (MonitorState in a
gr.State, one per browser); the figure is redrawn only when something changed, and the
timer switches itself off once every shown run has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core import registry
from backends.core.rundir import RunDir, list_runs
from studio.context import StudioContext
from studio.logic.charts import (
    MonitorState,
    default_metrics,
    make_figure,
    read_samples,
    reward_length_figure,
    samples_table,
)
from studio.logic.runs import run_method


@dataclass
class MonitorTab:
    runs: gr.Dropdown
    timer: gr.Timer
    on_page_load: Callable[[], Any]  # wired by app.py to app.load


def default_selection(ctx: StudioContext) -> list[str]:
    """Live runs if any, else the newest run."""
    runs = list_runs(ctx.runs_dir)
    live = [r.run_id for r in runs if r.read_status()["state"] in ("running", "pending")]
    return live or [r.run_id for r in runs[:1]]


def build_monitor_tab(ctx: StudioContext) -> MonitorTab:
    with gr.Row():
        runs = gr.Dropdown(
            [], multiselect=True, label="Runs", scale=4, elem_id="monitor-runs", allow_custom_value=True
        )
        refresh = gr.Button("Refresh list", scale=1)
    with gr.Row():
        metrics = gr.Dropdown(
            list(registry.get("sft").charts),
            value=list(registry.get("sft").charts[:2]),
            multiselect=True,
            allow_custom_value=True,
            label="Metrics",
            scale=4,
            elem_id="monitor-metrics",
        )
        splits = gr.CheckboxGroup(["train", "eval"], value=["train", "eval"], label="Split", scale=1)
        smoothing = gr.Slider(0.0, 0.99, value=0.6, step=0.01, label="Smoothing (EMA)", scale=2)
    status = gr.Markdown(elem_id="monitor-status")
    plot = gr.Plot(elem_id="monitor-plot")
    with gr.Accordion("Samples: completions and their rewards (RL and sample runs)", open=True):
        with gr.Row():
            samples = gr.Dataframe(
                headers=["step", "reward fn", "reward", "words", "completion", "prompt"],
                interactive=False,
                wrap=True,
                max_height=420,
                scale=3,
                elem_id="monitor-samples",
            )
            scatter = gr.Plot(scale=2, elem_id="monitor-scatter")
    state = gr.State(MonitorState())
    timer = gr.Timer(1.0)

    # --- handlers ----------------------------------------------------------------------
    def gallery(st: MonitorState) -> tuple[Any, Any]:
        """Samples of the first selected run that has any."""
        for run_id in st.tails:
            rows = read_samples(RunDir(ctx.runs_dir / run_id))
            if rows:
                return samples_table(rows), reward_length_figure(rows)
        return [], reward_length_figure([])

    def redraw(st: MonitorState, chosen: list[str], smooth: float, split: list[str]) -> tuple[Any, str]:
        counts = ", ".join(f"`{r}`: {st.states.get(r, '?')}, {len(t.rows)} rows" for r, t in st.tails.items())
        return make_figure(st, chosen, smooth, split), counts or "Select one or more runs."

    def on_select(selected: list[str], chosen: list[str], smooth: float, split: list[str], st: MonitorState):
        st.select(ctx.runs_dir, selected or [])
        st.poll(ctx.runs_dir)
        methods = [run_method_of(r) for r in selected or []]
        defaults = default_metrics(methods, st.metric_names())
        choices = sorted(set(st.metric_names()) | set(defaults))
        fig, counts = redraw(st, defaults, smooth, split)
        table, sc = gallery(st)
        return (
            fig,
            counts,
            st,
            gr.Dropdown(choices=choices, value=defaults),
            gr.Timer(active=not st.all_terminal()),
            table,
            sc,
        )

    def on_tick(chosen: list[str], smooth: float, split: list[str], st: MonitorState):
        if not st.poll(ctx.runs_dir):
            return gr.skip(), gr.skip(), st, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        choices = sorted(set(st.metric_names()) | set(chosen or []))
        fig, counts = redraw(st, chosen, smooth, split)
        table, sc = gallery(st)
        return (
            fig,
            counts,
            st,
            gr.Dropdown(choices=choices),
            gr.Timer(active=not st.all_terminal()),
            table,
            sc,
        )

    def on_style(chosen: list[str], smooth: float, split: list[str], st: MonitorState):
        return redraw(st, chosen, smooth, split)

    def on_page_load() -> Any:
        """Each new page gets today's run list, with live runs (or the newest) selected."""
        ids = [r.run_id for r in list_runs(ctx.runs_dir)]
        return gr.Dropdown(choices=ids, value=default_selection(ctx))

    def on_refresh(selected: list[str]) -> Any:
        ids = [r.run_id for r in list_runs(ctx.runs_dir)]
        return gr.Dropdown(choices=ids, value=[s for s in selected or [] if s in ids] or ids[:1])

    def run_method_of(run_id: str) -> str:
        return run_method(RunDir(ctx.runs_dir / run_id))

    # --- wiring ------------------------------------------------------------------------
    sel_inputs = [runs, metrics, smoothing, splits, state]
    sel_outputs = [plot, status, state, metrics, timer, samples, scatter]
    runs.change(on_select, sel_inputs, sel_outputs, api_name="monitor_select")
    timer.tick(
        on_tick,
        [metrics, smoothing, splits, state],
        sel_outputs,
        api_name="monitor_tick",
        show_progress="hidden",
    )
    gr.on(
        [c.change for c in (metrics, smoothing, splits)],
        on_style,
        [metrics, smoothing, splits, state],
        [plot, status],
        api_visibility="private",
        trigger_mode="always_last",
    )
    refresh.click(on_refresh, runs, runs, api_visibility="private")
    return MonitorTab(runs, timer, on_page_load)
