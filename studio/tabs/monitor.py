"""Monitor tab: live plotly charts of any metric of one or several runs, overlaid; against
steps, wall time or tokens seen, each chart on a linear or log y axis; its points as CSV and
the figure as PNG (plotly's mode bar, drawn by the browser); Edit and rerun, Resume, and the
config diff of the shown runs.

A 1 s timer reads only new bytes of each selected run's metrics.jsonl (MonitorState in a
gr.State, one per browser); the figure is redrawn only when something changed, and the
timer switches itself off once every shown run has finished. Only the person's own changes
(`.input`) redraw: a value the page sets itself, or a component mounting when the tab first
opens, does not draw the same figure again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from backends.core.runs.rundir import list_runs
from backends.core.spec import registry
from studio.context import StudioContext
from studio.logic.charts import X_CHOICES, figure_json, make_figure, missing_x_notes, write_csv
from studio.logic.monitoring import MonitorState, default_metrics, reward_length_figure, samples_table
from studio.logic.rerun import find_run, resume_hint, resume_run
from studio.logic.rundiff import config_diff
from studio.logic.runs import default_runs, resolve_run, run_method, run_name
from studio.logic.sweeps import selected_sweeps, sweep_figure, sweep_line, sweep_rows

CSV_EVERY_S = 15.0  # while runs are live, the CSV behind the button is rewritten at most this often


@dataclass
class MonitorTab:
    runs: gr.Dropdown
    timer: gr.Timer
    on_page_load: Callable[[], Any]  # wired by app.py to app.load
    act_run: gr.Dropdown  # the run that "Edit and rerun" and "Resume" act on
    rerun: gr.Button  # wired by app.py: it fills the Train form


def chart_exports_dir(ctx: StudioContext) -> Path:
    """Where the chart CSVs are written (app.py lets the browser download from here)."""
    return ctx.data_dir / "exports" / "charts"


def preload_plotly_js() -> str:
    """Page js: fetch and run Gradio's plotly bundle (4.6 MB) in the background once the page
    has loaded. Gradio (6.31) loads it only when a Plot first mounts, and that alone took 3-4 s
    of the Monitor's first chart here; preloaded, opening the tab draws at once. The bundle's
    hashed name is read from Gradio's assets; without it, nothing is preloaded."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    bundle = next(iter(sorted(assets.glob("PlotlyPlot-*.js"))), None)
    if bundle is None:
        return "() => {}"
    return f"""
() => {{
  const main = [...document.scripts].find((s) => /\/assets\/index-[^/]*\.js/.test(s.src));
  if (!main) return;
  const url = main.src.replace(/index-[^/]*\.js.*$/, {bundle.name!r});
  setTimeout(() => import(url).catch((e) => console.warn("plotly preload:", e)), 300);
}}
"""


def default_selection(ctx: StudioContext) -> list[str]:
    """Live training runs if any, else the newest training run (never a label-candidates
    sample run while a training run exists)."""
    return default_runs(ctx.runs_dir)


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
    with gr.Row(equal_height=True):
        x_axis = gr.Radio(X_CHOICES, value="step", label="X axis", scale=2, elem_id="monitor-x")
        log_y = gr.CheckboxGroup([], label="Log scale y (per chart)", scale=3, elem_id="monitor-log")
        csv = gr.DownloadButton("Chart data (CSV)", scale=1, elem_id="monitor-csv", size="md")
    status = gr.Markdown(elem_id="monitor-status")
    plot = gr.Plot(elem_id="monitor-plot", show_label=False)
    with gr.Accordion("Rerun, resume, compare configs", open=False, elem_id="monitor-actions"):
        with gr.Row():
            act_run = gr.Dropdown(
                [], label="Run", scale=3, elem_id="monitor-act-run", allow_custom_value=True
            )
            rerun = gr.Button("Edit and rerun", scale=1, elem_id="monitor-rerun")
            resume = gr.Button("Resume", scale=1, elem_id="monitor-resume")
        hint = gr.Markdown(elem_id="monitor-resume-hint")
        diff_note = gr.Markdown(elem_id="monitor-diff-note")
        diff = gr.Dataframe(interactive=False, wrap=True, elem_id="monitor-diff")
    with gr.Column(visible=False, elem_id="monitor-samples-box") as samples_box:
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
    with gr.Column(visible=False, elem_id="monitor-sweep-box") as sweep_box:
        with gr.Accordion("Sweep: every trial, best first", open=True):
            sweep_note = gr.Markdown(elem_id="monitor-sweep-note")
            sweep_table = gr.Dataframe(interactive=False, wrap=True, max_height=360, elem_id="monitor-sweep")
            sweep_plot = gr.Plot(show_label=False, elem_id="monitor-sweep-plot")
    state = gr.State(MonitorState())
    sweep_seen = gr.State(None)  # what the sweep panel shows: (run id, sweep.json mtime) pairs
    timer = gr.Timer(1.0)

    # --- handlers ----------------------------------------------------------------------
    def figure(st: MonitorState, chosen: list[str], smooth: float, split: list[str], x: str, logs: list[str]):
        fig = make_figure(st, chosen, smooth, split, x, logs)  # type: ignore[arg-type]
        name = run_name(next(iter(st.tails), "monitor"))
        return PlotData(type="plotly", plot=figure_json(fig, f"{name}-{x}"))

    def csv_file(st: MonitorState, chosen: list[str], split: list[str]) -> str | None:
        st.csv_written_at = time.time()
        if not st.tails:
            return None
        return str(write_csv(chart_exports_dir(ctx), st, chosen or ["loss"], split))

    def gallery(st: MonitorState) -> tuple[Any, Any, Any]:
        """Samples of the first selected run that has any; the panel hides when none has."""
        rows = st.samples_of(ctx.runs_dir)
        if not rows:
            return gr.skip(), gr.skip(), gr.Column(visible=False)
        return samples_table(rows), reward_length_figure(rows), gr.Column(visible=True)

    def draw(st, chosen, smooth, split, x, logs, *, csv_now: bool = True) -> list[Any]:
        """[plot, status, state, timer, samples, scatter, samples box, csv]."""
        logs = [m for m in logs or [] if m in (chosen or [])]
        st.drawn = (tuple(st.tails), tuple(chosen or []), smooth, tuple(split or []), x, tuple(logs))
        fig = figure(st, chosen, smooth, split, x, logs)
        line = st.status_line(missing_x_notes(st, x))  # type: ignore[arg-type]
        table, sc, box = gallery(st)
        if csv_now or time.time() - st.csv_written_at > CSV_EVERY_S or st.all_terminal():
            out_csv = gr.DownloadButton(value=csv_file(st, chosen, split))
        else:
            out_csv = gr.skip()
        return [fig, line, st, gr.Timer(active=not st.all_terminal()), table, sc, box, out_csv]

    def on_select(selected, chosen, smooth, split, st: MonitorState, x, logs):
        selected = [s for s in selected or [] if isinstance(s, str)]
        key_runs = tuple(r for r in selected if resolve_run(ctx.runs_dir, r))
        st.select(ctx.runs_dir, selected)
        changed = st.poll(ctx.runs_dir)
        if not changed and st.drawn is not None and st.drawn[0] == key_runs:
            return [gr.skip()] * 11  # the same figure is on the page (the tab mounting fires this)
        methods = [run_method(r) for r in (resolve_run(ctx.runs_dir, i) for i in st.tails) if r]
        defaults = default_metrics(methods, st.metric_names()) if st.drawn is None or changed else chosen
        choices = sorted(set(st.metric_names()) | set(defaults))
        logs = [m for m in logs or [] if m in defaults]
        out = draw(st, defaults, smooth, split, x, logs)
        acts = gr.Dropdown(choices=list(st.tails), value=next(iter(st.tails), None))
        log_box = gr.CheckboxGroup(choices=defaults, value=logs)
        return [*out[:3], gr.Dropdown(choices=choices, value=defaults), *out[3:], log_box, acts]

    def on_tick(chosen, smooth, split, st: MonitorState, x, logs):
        if not st.poll(ctx.runs_dir):
            # Nothing live on the chart (no run, or all ended): the timer rests until a selection
            # or the tab's next visit. Each tick costs the page a walk of every component (Gradio's
            # loading status), which kept a core busy once the Train tab's form was on the page.
            rest = gr.Timer(active=False) if st.all_terminal() else gr.skip()
            return [gr.skip()] * 4 + [rest] + [gr.skip()] * 5
        out = draw(st, chosen, smooth, split, x, logs, csv_now=False)
        choices = sorted(set(st.metric_names()) | set(chosen or []))
        return [*out[:3], gr.Dropdown(choices=choices), *out[3:], gr.skip()]

    def on_style(chosen, smooth, split, st: MonitorState, x, logs):
        out = draw(st, chosen, smooth, split, x, logs)
        logs = [m for m in logs or [] if m in (chosen or [])]
        return [out[0], out[1], out[7], gr.CheckboxGroup(choices=chosen or [], value=logs)]

    def on_page_load() -> Any:
        """Each new page gets today's run list, with live runs (or the newest) selected."""
        ids = [r.run_id for r in list_runs(ctx.runs_dir)]
        return gr.Dropdown(choices=ids, value=default_selection(ctx))

    def on_refresh(selected: list[str]) -> Any:
        ids = [r.run_id for r in list_runs(ctx.runs_dir)]
        return gr.Dropdown(choices=ids, value=[s for s in selected or [] if s in ids] or ids[:1])

    def on_diff(selected: list[str], chosen: list[str]) -> tuple[str, Any]:
        headers, rows, note = config_diff(ctx.runs_dir, selected or [], None)
        return note, gr.Dataframe(value=rows, headers=headers) if headers else gr.Dataframe(value=[])

    def on_resume(run_id: str | None, selected: list[str]) -> tuple[str, Any]:
        new = resume_run(ctx.launcher, find_run(ctx.runs_dir, run_id))  # refusals come back as gr.Error
        ctx.tick()
        ids = [r.run_id for r in list_runs(ctx.runs_dir)]
        value = [new.run_id, *[s for s in selected or [] if s in ids]]
        return f"Resumed `{run_id}` as `{new.run_id}`.", gr.Dropdown(choices=ids, value=value)

    def on_sweep(selected: list[str], seen: Any) -> list[Any]:
        """The first selected sweep's table and chart; redrawn only when its sweep.json changed."""
        sweeps = selected_sweeps(ctx.runs_dir, [s for s in selected or [] if isinstance(s, str)])
        if not sweeps:
            return [gr.Column(visible=False), gr.skip(), gr.skip(), gr.skip(), None]
        run_id, summary = sweeps[0]
        run = resolve_run(ctx.runs_dir, run_id)
        key = (run_id, (run.path / "sweep.json").stat().st_mtime_ns if run else 0)
        if key == seen:
            return [gr.skip()] * 4 + [seen]
        note = sweep_line(run_id, summary)
        if "error" in summary:
            return [gr.Column(visible=True), note, gr.Dataframe(value=[]), None, key]
        headers, rows = sweep_rows(summary)
        fig = PlotData(type="plotly", plot=figure_json(sweep_figure(summary), f"{run_name(run_id)}-sweep"))
        return [gr.Column(visible=True), note, gr.Dataframe(value=rows, headers=headers), fig, key]

    # --- wiring ------------------------------------------------------------------------
    view = [metrics, smoothing, splits, state, x_axis, log_y]
    drawn = [plot, status, state, metrics, timer, samples, scatter, samples_box, csv]
    sweep_out = [sweep_box, sweep_note, sweep_table, sweep_plot, sweep_seen]

    def on_select_all(selected, chosen, smooth, split, st: MonitorState, x, logs, seen) -> list[Any]:
        """A new selection redraws the chart, the config diff, the resume hint and the sweep
        panel in one event: as four events the page walked every component four times, ~3 s a
        selection on 2 cores (docs/BENCHMARKS.md)."""
        out = on_select(selected, chosen, smooth, split, st, x, logs)
        changed = isinstance(out[-1], gr.Dropdown)  # the act-on run's dropdown, not a skip
        hint_now = resume_hint(ctx.runs_dir, next(iter(st.tails), None)) if changed else gr.skip()
        return [*out, hint_now, *on_diff(selected, chosen), *on_sweep(selected, seen)]

    runs.change(
        on_select_all,
        [runs, *view, sweep_seen],
        [*drawn, log_y, act_run, hint, diff_note, diff, *sweep_out],
        api_name="monitor_select",
        show_progress="hidden",
    )

    def on_tick_all(chosen, smooth, split, st: MonitorState, x, logs, selected, seen) -> list[Any]:
        """The chart and the sweep panel in one event a second: each event makes the page walk
        every component (Gradio's loading status), and two a second kept its core busy."""
        return [*on_tick(chosen, smooth, split, st, x, logs), *on_sweep(selected, seen)]

    timer.tick(
        on_tick_all,
        [*view, runs, sweep_seen],
        [*drawn, log_y, *sweep_out],
        api_name="monitor_tick",
        show_progress="hidden",
    )
    gr.on(
        [metrics.input, smoothing.release, splits.input, x_axis.input, log_y.input],
        on_style,
        view,
        [plot, status, csv, log_y],
        api_name="monitor_view",
        trigger_mode="always_last",
        show_progress="hidden",
    )
    refresh.click(on_refresh, runs, runs, api_visibility="private")
    act_run.input(lambda r: resume_hint(ctx.runs_dir, r), act_run, hint, api_visibility="private")
    resume.click(on_resume, [act_run, runs], [hint, runs], api_name="monitor_resume")
    return MonitorTab(runs, timer, on_page_load, act_run, rerun)
