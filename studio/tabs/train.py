"""Train tab: pick a preset (or a run to rerun), edit it in a form, see the YAML and the exact
commands, launch; the runs list beside it (runs_panel.py: details, log, Stop, Resume, config
diff). "Edit and rerun" fills the form from a run's resolved config.yaml under a new name.
Layout and wiring here; what the events do is train_handlers.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.pipelines.pipeline import is_pipeline
from backends.core.spec.config import read_preset
from studio.context import StudioContext
from studio.logic import forms
from studio.tabs.form import build_form
from studio.tabs.runs_panel import build_runs_panel
from studio.tabs.train_handlers import TrainHandlers
from studio.tabs.train_preview import (
    MARK_FIELDS_JS,
    placement_line,
    preview,
    read_text,
)


@dataclass
class TrainTab:
    runs_table: gr.Dataframe
    run_select: gr.Dropdown
    launched: gr.Textbox  # id of the run last launched from this browser
    fields: dict[str, gr.components.Component]  # the form, by config key
    preset: gr.Dropdown
    form_box: gr.Column  # the form (visible for a single-run preset)
    pipeline_box: gr.Column  # the pipeline editor (visible for a pipeline preset)
    rerun_of: gr.State  # id of the run whose config is the form's base ("": the preset)
    carried: gr.State  # the Data tab's TrainRequest as JSON, kept across presets ("": none)
    fill_rerun: Any  # run id -> updates of `rerun_outputs` (the Monitor's "Edit and rerun" too)
    rerun_outputs: list[gr.components.Component]
    refresh: Any  # event -> the event followed by the preview and placement (after a fill of the form)


def build_train_tab(ctx: StudioContext, initial_preset: str | None = None) -> TrainTab:
    presets = ctx.list_presets()
    preset0 = (
        initial_preset
        if initial_preset in presets
        else ("sft.yaml" if "sft.yaml" in presets else (presets or [None])[0])
    )
    raw0 = read_preset(ctx.preset_path(preset0)) if preset0 else {}
    values0 = forms.form_values({} if is_pipeline(raw0) else raw0, preset0 or "defaults")
    errors0, yaml0, cmd0, help0 = preview(ctx, preset0, values0)

    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### New run")
            preset = gr.Dropdown(
                presets, value=preset0, label="Preset", info=f"YAML files in {ctx.presets_dir}"
            )
            rerun_note = gr.Markdown(elem_id="rerun-note")  # says when the form holds a rerun
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
                    read_text(ctx, preset0) if pipeline0 else "",
                    language="yaml",
                    label="Pipeline",
                    interactive=True,
                    elem_id="pipeline-yaml",
                )
            fields = form.fields
            errors = gr.Markdown(errors0, elem_id="train-errors")
            launch = gr.Button("Launch", variant="primary", elem_id="launch-button")
            where = gr.Markdown(placement_line(ctx, values0), elem_id="run-placement")
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
            panel = build_runs_panel(ctx)
    table, run_select = panel.table, panel.run_select
    launched = gr.Textbox(visible=False)
    rerun_of = gr.State("")
    carried = gr.State("")

    h = TrainHandlers(ctx, len(fields))

    # --- wiring ------------------------------------------------------------------------
    # `.input`, not `.change`: "Train on this" sets the preset and the form together, and the
    # form must keep the dataset and mapping it brought rather than reload the preset's.
    rerun_outputs = [rerun_of, rerun_note, form_box, pipeline_box, pipeline_yaml, *fields]

    # The preview and the placement line follow the person's edits (`.input`) and run once after
    # each fill of the whole form (`refresh`). On `.change` a fill of 128 fields triggered both
    # per field (36 events reached the studio), each sending every field and walking every
    # component in the page: ~20 s of a core per fill. Each has one queue of one (a preview takes
    # ~50 ms): a fill's preview (with the fill's values) never lands after an edit's made just after.
    to_preview = (h.on_form, [preset, rerun_of, *fields], [errors, yaml_view, headless_view, method_help])
    to_placement = (lambda *values: placement_line(ctx, list(values)), fields, where)
    in_preview = {"concurrency_id": "train-preview", "concurrency_limit": 1}
    in_placement = {"concurrency_id": "train-placement", "concurrency_limit": 1}

    def refresh(event: Any) -> Any:
        return event.then(*to_preview, api_visibility="private", show_progress="hidden", **in_preview).then(
            *to_placement, api_visibility="private", **in_placement
        )

    refresh(preset.input(h.on_preset, [preset, carried], rerun_outputs, api_visibility="private"))
    # the carried dataset is dropped once the user types another one, or edits a rerun
    form.by_key["data.dataset"].input(lambda: "", None, carried, api_visibility="private")
    rerun_of.change(lambda r: "" if r else gr.skip(), rerun_of, carried, api_visibility="private")
    refresh(panel.rerun.click(h.fill_rerun, run_select, rerun_outputs, api_name="rerun"))
    fields[0].change(form.on_method, fields[0], [*fields, *form.containers], api_visibility="private")
    edits = [c.input for c in fields]
    gr.on(edits, *to_preview, api_name="preview", trigger_mode="always_last", **in_preview)
    gr.on(edits, *to_placement, api_visibility="private", trigger_mode="always_last", **in_placement)
    # the fields the problems name get a red frame (the problems name each by its key)
    errors.change(None, errors, None, js=MARK_FIELDS_JS, api_visibility="private")
    launch.click(
        h.on_launch,
        [preset, pipeline_yaml, rerun_of, *fields],
        [launch_msg, launched, table, run_select],
        api_name="launch",
    )
    return TrainTab(
        table,
        run_select,
        launched,
        form.by_key,
        preset,
        form_box,
        pipeline_box,
        rerun_of,
        carried,
        h.fill_rerun,
        rerun_outputs,
        refresh,
    )
