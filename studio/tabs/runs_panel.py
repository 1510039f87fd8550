"""The Train tab's runs list: a live table, the selected run's details and log, Stop, Edit and
rerun (wired by train.py: it fills the form), Resume, Export model, and the config diff of runs.
Also the browser tab's title, which follows the newest run (`build_title`, `title_js`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.runs.executors import ExecutorError
from studio.context import StudioContext
from studio.logic.export import export_from_studio
from studio.logic.rerun import find_run, resume_hint, resume_run
from studio.logic.rundiff import config_diff
from studio.logic.runs import RUN_COLUMN_WIDTHS, RUN_COLUMNS, resolve_run, run_summary, runs_table, title_text


def title_js(base: str) -> str:
    """Page js (launch's `js=`): the tab's title follows the hidden #studio-title element,
    which `build_title` fills with the newest run's state and step, so a person sees it from
    another browser tab (`▶ tiny-sft 12/50 · Alignment Studio`)."""
    return f"""
() => {{
  const base = {base!r};
  let want = base;
  const apply = () => {{
    const el = document.getElementById("studio-title");
    const text = el ? el.textContent.trim() : "";
    want = text ? text + " · " + base : base;
    if (document.title !== want) document.title = want;
  }};
  setInterval(apply, 1000);
  apply();
}}
"""


def build_title(ctx: StudioContext) -> None:
    """The hidden element the page's title follows, kept current by its own timer. Built
    outside the tabs: a tab's components exist only once the tab was opened."""
    title = gr.HTML(title_text(ctx.runs_dir), visible="hidden", elem_id="studio-title")
    timer = gr.Timer(3.0)
    timer.tick(
        lambda: title_text(ctx.runs_dir), None, title, api_visibility="private", show_progress="hidden"
    )


@dataclass
class RunsPanel:
    table: gr.Dataframe
    run_select: gr.Dropdown
    rerun: gr.Button  # wired by train.py
    hint: gr.Markdown


def build_runs_panel(ctx: StudioContext) -> RunsPanel:
    gr.Markdown("### Runs")
    rows0 = runs_table(ctx.runs_dir)
    # the run ids are long: fixed widths keep every column in the half-page panel (run ids wrap
    # at their hyphens) instead of pushing step, elapsed, ETA and device off to the right
    table = gr.Dataframe(
        headers=RUN_COLUMNS,
        value=rows0,
        interactive=False,
        elem_id="runs-table",
        wrap=True,
        column_widths=RUN_COLUMN_WIDTHS,
    )
    with gr.Row():
        run_select = gr.Dropdown(
            [r[0] for r in rows0], label="Run", scale=4, allow_custom_value=True, elem_id="run-select"
        )
        stop = gr.Button("Stop", variant="stop", scale=1)
    with gr.Row():
        rerun = gr.Button("Edit and rerun", elem_id="train-rerun", size="md")
        resume = gr.Button("Resume", elem_id="train-resume", size="md")
        export = gr.Button("Export model", elem_id="train-export", size="md")
    hint = gr.Markdown(elem_id="train-run-hint")
    export_msg = gr.Markdown(elem_id="train-export-msg")  # its own: the timer rewrites the hint
    summary = gr.Markdown(elem_id="run-summary")
    with gr.Tabs():
        with gr.Tab("Log"):
            log = gr.Code(language="shell", label="stdout.log (tail)", interactive=False, max_lines=30)
        with gr.Tab("Config"):
            run_config = gr.Code(language="yaml", label="config.yaml", interactive=False)
        with gr.Tab("Compare configs"):
            compare = gr.Dropdown(
                [r[0] for r in rows0],
                multiselect=True,
                label="Runs to compare (two or more)",
                elem_id="compare-runs",
            )
            diff_note = gr.Markdown(elem_id="compare-note")
            diff = gr.Dataframe(interactive=False, wrap=True, elem_id="compare-table")
    timer = gr.Timer(2.0)

    # --- handlers ----------------------------------------------------------------------
    def on_tick(selected: str | None) -> tuple[Any, Any, str, str, str]:
        rows = runs_table(ctx.runs_dir)
        ids = gr.Dropdown(choices=[r[0] for r in rows])
        run = resolve_run(ctx.runs_dir, selected)
        if run is None:
            return rows, ids, "", "", ""
        # the Resume hint follows the run's state too (not "is running" once it ended)
        return rows, ids, run_summary(run), run.log_tail(), resume_hint(ctx.runs_dir, selected)

    def on_select(selected: str | None) -> tuple[str, str, str, str]:
        run = resolve_run(ctx.runs_dir, selected)
        if run is None:
            return "", "", "", ""
        config = run.config_path.read_text(encoding="utf-8") if run.config_path.exists() else ""
        return run_summary(run), run.log_tail(), config, resume_hint(ctx.runs_dir, selected)

    def on_table_select(evt: gr.SelectData) -> Any:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        rows = runs_table(ctx.runs_dir)
        return rows[row][0] if 0 <= row < len(rows) else gr.skip()

    def on_stop(selected: str | None) -> None:
        run = resolve_run(ctx.runs_dir, selected)
        if run is None:
            gr.Warning("Select a run to stop.")
            return
        try:
            gr.Info(ctx.executor.stop(run))
        except ExecutorError as e:  # the STOP file is written first; the job stop did not go through
            gr.Warning(f"Run {run.run_id}: {e}")

    def on_resume(selected: str | None) -> tuple[str, Any, Any]:
        new = resume_run(ctx.launcher, find_run(ctx.runs_dir, selected))  # refusals: gr.Error
        try:
            ctx.tick()  # start it now if a slot is free
        except ExecutorError as e:  # the run waits; the scheduler submits it when the cluster answers
            gr.Warning(f"Run {new.run_id} is queued, not submitted yet: {e}")
        rows = runs_table(ctx.runs_dir)
        msg = (
            f"Resumed `{selected}` as `{new.run_id}`, from its last checkpoint. Watch it in the Monitor tab."
        )
        return msg, rows, gr.Dropdown(choices=[r[0] for r in rows], value=new.run_id)

    def on_export(selected: str | None) -> str:
        return export_from_studio(ctx, find_run(ctx.runs_dir, selected))  # refusals: gr.Error

    def on_compare(chosen: list[str]) -> tuple[str, Any]:
        headers, rows, note = config_diff(ctx.runs_dir, chosen or [])
        return note, gr.Dataframe(value=rows, headers=headers) if headers else gr.Dataframe(value=[])

    # --- wiring ------------------------------------------------------------------------
    timer.tick(
        on_tick, run_select, [table, run_select, summary, log, hint], api_name="runs", show_progress="hidden"
    )
    run_select.change(on_select, run_select, [summary, log, run_config, hint], api_name="run_details")
    table.select(on_table_select, None, run_select, api_visibility="private")
    stop.click(on_stop, run_select, None, api_name="stop")
    resume.click(on_resume, run_select, [hint, table, run_select], api_name="resume")
    export.click(on_export, run_select, export_msg, api_name="export")
    compare.focus(
        lambda: gr.Dropdown(choices=[r[0] for r in runs_table(ctx.runs_dir)]),
        None,
        compare,
        api_visibility="private",
    )
    compare.change(on_compare, compare, [diff_note, diff], api_name="run_diff")
    return RunsPanel(table, run_select, rerun, hint)
