"""Train tab: pick a preset, edit it in a form, see the YAML and the exact commands, launch;
a live runs table with details, log tail and Stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core import registry
from backends.core.config import PIPELINE_HELP, ConfigError, config_from_text, config_to_yaml, read_preset
from backends.core.executors import ExecutorError
from backends.core.launcher import REPO_ROOT
from backends.core.pipeline import create_pipeline, is_pipeline, start_pipeline
from backends.core.policy import check_pipeline
from studio.context import StudioContext
from studio.logic import forms
from studio.logic.resources import placement, resources
from studio.logic.runs import RUN_COLUMNS, resolve_run, run_summary, runs_table
from studio.tabs.form import build_form


@dataclass
class TrainTab:
    runs_table: gr.Dataframe
    run_select: gr.Dropdown
    launched: gr.Textbox  # id of the run last launched from this browser
    fields: dict[str, gr.components.Component]  # the form, by config key
    preset: gr.Dropdown
    form_box: gr.Column  # the form (visible for a single-run preset)
    pipeline_box: gr.Column  # the pipeline editor (visible for a pipeline preset)


def _read_text(ctx: StudioContext, name: str | None) -> str:
    return ctx.preset_path(name).read_text(encoding="utf-8") if name else ""


def _errors_md(problems: list[str]) -> str:
    return "**Fix before launching:**\n" + "\n".join(f"- {p}" for p in problems)


def _method_help(method: str) -> str:
    try:
        return registry.get(method).help
    except KeyError:
        return ""


def _preset_arg(ctx: StudioContext, name: str) -> str:
    """The preset as the headless command names it: relative to the repository when inside it."""
    path = ctx.preset_path(name)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def checked_config(ctx: StudioContext, raw: dict[str, Any], values: list[Any], source: str) -> Any:
    """The form's run config through the one route (studio policy, then the data preflight);
    ConfigError otherwise."""
    return forms.form_to_config(raw, values, source, ctx.policy)[0]


def _command(ctx: StudioContext, name: str | None, raw: dict[str, Any], values: list[Any]) -> str:
    """The headless command for the form as it is; shown even when the studio refuses the
    run (a preset with trust_remote_code runs only from the command line)."""
    if not name:
        return ""
    try:
        sets = [] if is_pipeline(raw) else forms.overrides(raw, values)
    except ConfigError:
        sets = []
    where = ctx.runner.config.cli_args()
    return forms.headless_command(_preset_arg(ctx, name), sets, str(ctx.runs_dir), where)


def _elsewhere(ctx: StudioContext) -> str | None:
    """Where runs go when not on this machine (a cluster), for the resources line."""
    return None if ctx.runner.config.kind == "local" else ctx.runner.where()


def _placement(ctx: StudioContext, values: list[Any]) -> str:
    return placement(ctx.runner, dict(zip(forms.keys(), values, strict=False)))


def _preview(ctx: StudioContext, name: str | None, values: list[Any]) -> tuple[str, str, str, str]:
    """(errors, config YAML, headless command, method help) for the form's current values."""
    raw = read_preset(ctx.preset_path(name)) if name else {}
    cmd = _command(ctx, name, raw, values)
    if is_pipeline(raw):
        return "", "", cmd, PIPELINE_HELP
    help_line = _method_help(values[0])
    try:
        cfg = checked_config(ctx, raw, values, f"Train form (preset {name})")
    except ConfigError as e:
        return _errors_md(e.problems), "", cmd, help_line
    needs, too_big = resources(cfg, ctx.launcher.gpus, _elsewhere(ctx))
    errors = _errors_md([needs.split("**Memory:** ", 1)[-1]]) if too_big else ""
    return errors, config_to_yaml(cfg), cmd, f"{help_line}\n\n{needs}"


def build_train_tab(ctx: StudioContext, initial_preset: str | None = None) -> TrainTab:
    presets = ctx.list_presets()
    preset0 = (
        initial_preset
        if initial_preset in presets
        else ("sft.yaml" if "sft.yaml" in presets else (presets or [None])[0])
    )
    raw0 = read_preset(ctx.preset_path(preset0)) if preset0 else {}
    values0 = forms.form_values({} if is_pipeline(raw0) else raw0, preset0 or "defaults")
    errors0, yaml0, cmd0, help0 = _preview(ctx, preset0, values0)

    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### New run")
            preset = gr.Dropdown(
                presets, value=preset0, label="Preset", info=f"YAML files in {ctx.presets_dir}"
            )
            method_help = gr.Markdown(help0)
            pipeline0 = is_pipeline(raw0)
            with gr.Column(visible=not pipeline0) as form_box:
                form = build_form(values0)
            with gr.Column(visible=pipeline0) as pipeline_box:
                gr.Markdown(
                    "A pipeline: each stage runs in its own run directory; `@stage` refers to an "
                    "earlier stage's model, `@stage.pairs` to a dataset it wrote (a sample stage's pairs)."
                )
                pipeline_yaml = gr.Code(
                    _read_text(ctx, preset0) if pipeline0 else "",
                    language="yaml",
                    label="Pipeline",
                    interactive=True,
                    elem_id="pipeline-yaml",
                )
            fields = form.fields
            errors = gr.Markdown(errors0, elem_id="train-errors")
            launch = gr.Button("Launch", variant="primary", elem_id="launch-button")
            where = gr.Markdown(_placement(ctx, values0), elem_id="run-placement")
            launch_msg = gr.Markdown(elem_id="launch-message")
            with gr.Accordion("Resolved config and commands", open=False):
                # The command first: the config below it runs to ~90 lines.
                headless_view = gr.Code(
                    cmd0,
                    language="shell",
                    label="The same run without the UI (run it in the repository folder)",
                    interactive=False,
                    wrap_lines=True,  # a long command stays readable in a narrow column
                    lines=2,
                    buttons=["copy"],
                    elem_id="headless-command",
                )
                yaml_view = gr.Code(yaml0, language="yaml", label="config.yaml", interactive=False)
        with gr.Column(scale=3):
            gr.Markdown("### Runs")
            table = gr.Dataframe(
                headers=RUN_COLUMNS,
                value=runs_table(ctx.runs_dir),
                interactive=False,
                elem_id="runs-table",
                wrap=True,
            )
            with gr.Row():
                run_select = gr.Dropdown(
                    [r[0] for r in runs_table(ctx.runs_dir)],
                    label="Run",
                    scale=4,
                    allow_custom_value=True,
                    elem_id="run-select",
                )
                stop = gr.Button("Stop", variant="stop", scale=1)
            summary = gr.Markdown()
            with gr.Tabs():
                with gr.Tab("Log"):
                    log = gr.Code(
                        language="shell", label="stdout.log (tail)", interactive=False, max_lines=30
                    )
                with gr.Tab("Config"):
                    run_config = gr.Code(language="yaml", label="config.yaml", interactive=False)
    launched = gr.Textbox(visible=False)
    timer = gr.Timer(2.0)

    # --- handlers ----------------------------------------------------------------------
    def on_preset(name: str) -> list[Any]:
        raw = read_preset(ctx.preset_path(name))
        if is_pipeline(raw):
            return [gr.Column(visible=False), gr.Column(visible=True), _read_text(ctx, name)] + [
                gr.skip()
            ] * len(fields)
        try:
            values = forms.form_values(raw, name)
        except (ConfigError, ValueError) as e:
            gr.Warning(f"Preset {name} is invalid: {e}")
            return [gr.skip()] * (3 + len(fields))
        return [gr.Column(visible=True), gr.Column(visible=False), ""] + values

    def on_method(method: str) -> list[Any]:
        return form.on_method(method)

    def on_form(name: str, *values: Any) -> tuple[str, str, str, str]:
        return _preview(ctx, name, list(values))

    def launched_message(run_id: str, what: str = "Run") -> tuple[str, Any, Any]:
        rows = runs_table(ctx.runs_dir)
        msg = f"{what} `{run_id}` started. Watch it in the Monitor tab."
        return msg, rows, gr.Dropdown(choices=[r[0] for r in rows], value=run_id)

    def on_launch(name: str, pipeline_text: str, *values: Any) -> tuple[str, str, Any, Any]:
        raw = read_preset(ctx.preset_path(name)) if name else {}
        if is_pipeline(raw):
            return launch_pipeline(name, pipeline_text)
        try:
            cfg = checked_config(ctx, raw, list(values), f"Train form (preset {name})")
            needs, too_big = resources(cfg, ctx.launcher.gpus, _elsewhere(ctx))
            if too_big:
                raise ConfigError([needs.split("**Memory:** ", 1)[-1]])
        except ConfigError as e:
            gr.Warning("The run was not started: fix the problems listed under the form.")
            return _errors_md(e.problems), gr.skip(), gr.skip(), gr.skip()
        run = ctx.launcher.create_run(cfg)
        try:
            ctx.tick()  # start it now if a slot is free, instead of at the next scheduler tick
        except ExecutorError as e:  # the run waits; the scheduler submits it when the cluster answers
            gr.Warning(f"Run {run.run_id} is queued, not submitted yet: {e}")
        msg, rows, drop = launched_message(run.run_id)
        st = run.read_status()
        if st.get("ray_job_id"):
            msg = msg.replace("started", f"submitted to {ctx.runner.where()} as job `{st['ray_job_id']}`")
        elif st["state"] == "pending" and not st.get("pid"):
            msg = msg.replace("started", "queued (it starts when a slot is free)")
        return msg, run.run_id, rows, drop

    def launch_pipeline(name: str, text: str) -> tuple[str, str, Any, Any]:
        source = f"pipeline editor (preset {name})"
        try:
            raw = check_pipeline(config_from_text(text, source), ctx.policy, source)
        except ConfigError as e:
            gr.Warning("The pipeline was not started: fix the problems listed under the form.")
            return _errors_md(e.problems), gr.skip(), gr.skip(), gr.skip()
        pdir = create_pipeline(raw, ctx.runs_dir)
        # Its stages are created by the pipeline process; their workers check them against this.
        pdir.update_status(policy=ctx.policy.as_dict(), stage_executor=ctx.runner.config.as_dict())
        start_pipeline(pdir, ctx.launcher.python)
        msg, rows, drop = launched_message(pdir.run_id, "Pipeline")
        return msg, pdir.run_id, rows, drop

    def on_tick(selected: str | None) -> tuple[Any, Any, str, str]:
        rows = runs_table(ctx.runs_dir)
        run = resolve_run(ctx.runs_dir, selected)
        if run is None:
            return rows, gr.Dropdown(choices=[r[0] for r in rows]), "", ""
        return rows, gr.Dropdown(choices=[r[0] for r in rows]), run_summary(run), run.log_tail()

    def on_select(selected: str | None) -> tuple[str, str, str]:
        run = resolve_run(ctx.runs_dir, selected)
        if run is None:
            return "", "", ""
        return run_summary(run), run.log_tail(), run.config_path.read_text(encoding="utf-8")

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
            gr.Info(ctx.runner.stop(run))
        except ExecutorError as e:  # the STOP file is written first; the job stop did not go through
            gr.Warning(f"Run {run.run_id}: {e}")

    # --- wiring ------------------------------------------------------------------------
    # `.input`, not `.change`: "Train on this" sets the preset and the form together, and the
    # form must keep the dataset and mapping it brought rather than reload the preset's.
    preset.input(
        on_preset, preset, [form_box, pipeline_box, pipeline_yaml, *fields], api_visibility="private"
    )
    fields[0].change(on_method, fields[0], [*fields, *form.containers], api_visibility="private")
    gr.on(
        [c.change for c in fields],
        on_form,
        [preset, *fields],
        [errors, yaml_view, headless_view, method_help],
        api_name="preview",
        trigger_mode="always_last",
    )
    gr.on(
        [c.change for c in fields],
        lambda *values: _placement(ctx, list(values)),
        fields,
        where,
        api_visibility="private",
        trigger_mode="always_last",
    )
    launch.click(
        on_launch,
        [preset, pipeline_yaml, *fields],
        [launch_msg, launched, table, run_select],
        api_name="launch",
    )
    timer.tick(
        on_tick, run_select, [table, run_select, summary, log], api_name="runs", show_progress="hidden"
    )
    run_select.change(on_select, run_select, [summary, log, run_config], api_name="run_details")
    table.select(on_table_select, None, run_select, api_visibility="private")
    stop.click(on_stop, run_select, None, api_name="stop")
    return TrainTab(table, run_select, launched, form.by_key, preset, form_box, pipeline_box)
