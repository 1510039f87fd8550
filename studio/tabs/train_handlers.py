"""What the Train tab's events do: a preset or a run's config fills the form, the form is
previewed (problems, YAML, the headless command), and Launch starts a run or a pipeline through
the studio's policy. train.py lays the tab out and wires these."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backends.core.pipelines.pipeline import create_pipeline, is_pipeline, start_pipeline
from backends.core.pipelines.policy import check_pipeline
from backends.core.runs.executors import ExecutorError
from backends.core.spec.config import ConfigError, config_from_text, read_preset
from studio.context import StudioContext
from studio.logic import forms
from studio.logic.handoff import kept_values
from studio.logic.rerun import find_run, pipeline_text, rerun_form
from studio.logic.resources import resources
from studio.logic.runs import runs_table
from studio.tabs.train_preview import base_config, checked_config, elsewhere, errors_md, preview, read_text


class TrainHandlers:
    def __init__(self, ctx: StudioContext, n_fields: int) -> None:
        self.ctx, self.n_fields = ctx, n_fields  # the form's fields, in `rerun_outputs` order

    def on_preset(self, name: str, request: str) -> list[Any]:
        """A preset chosen by hand: the form starts from it (a rerun's base is dropped), with
        the dataset carried from the Data tab where the preset's method fits it."""
        raw = read_preset(self.ctx.preset_path(name))
        if is_pipeline(raw):
            return ["", "", gr.Column(visible=False), gr.Column(visible=True), read_text(self.ctx, name)] + [
                gr.skip()
            ] * self.n_fields
        try:
            kept, note = kept_values(request, raw, name)
            values = kept or forms.form_values(raw, name)
        except (ConfigError, ValueError) as e:
            gr.Warning(f"Preset {name} is invalid: {e}")
            return [gr.skip()] * (5 + self.n_fields)
        return ["", note, gr.Column(visible=True), gr.Column(visible=False), ""] + values

    def fill_rerun(self, run_id: str | None) -> list[Any]:
        """ "Edit and rerun": the run's resolved config fills the form (or, for a pipeline, the
        editor) under a new name; launching goes through the form's one route as usual."""
        run = find_run(self.ctx.runs_dir, run_id)  # refusals come back as gr.Error (studio/access.py)
        base, values = rerun_form(run)
        note = (
            f"Editing a rerun of `{run.run_id}` (its config.yaml, new name `{base.get('name')}`). "
            "Change what you like and launch; pick a preset to start from it instead."
        )
        if values is None:
            shown = [gr.Column(visible=False), gr.Column(visible=True), pipeline_text(base)]
            return [run.run_id, note, *shown] + [gr.skip()] * self.n_fields
        return [run.run_id, note, gr.Column(visible=True), gr.Column(visible=False), "", *values]

    def on_form(self, name: str, rerun_id: str, *values: Any) -> tuple[str, str, str, str]:
        return preview(self.ctx, name, list(values), rerun_id)

    def launched_message(self, run_id: str, what: str = "Run") -> tuple[str, Any, Any]:
        rows = runs_table(self.ctx.runs_dir)
        msg = f"{what} `{run_id}` started. Watch it in the Monitor tab."
        return msg, rows, gr.Dropdown(choices=[r[0] for r in rows], value=run_id)

    def on_launch(
        self, name: str, pipeline_text: str, rerun_id: str, *values: Any
    ) -> tuple[str, str, Any, Any]:
        raw = base_config(self.ctx, name, rerun_id)
        if is_pipeline(raw):
            return self.launch_pipeline(name, pipeline_text)
        source = f"Train form (rerun of {rerun_id})" if rerun_id else f"Train form (preset {name})"
        try:
            cfg = checked_config(self.ctx, raw, list(values), source)
            needs, too_big = resources(cfg, self.ctx.launcher.gpus, elsewhere(self.ctx))
            if too_big:
                raise ConfigError([needs.split("**Memory:** ", 1)[-1]])
        except ConfigError as e:
            gr.Warning("The run was not started: fix the problems listed under the form.")
            return errors_md(e.problems), gr.skip(), gr.skip(), gr.skip()
        run = self.ctx.launcher.create_run(cfg)
        try:
            self.ctx.tick()  # start it now if a slot is free, instead of at the next scheduler tick
        except ExecutorError as e:  # the run waits; the scheduler submits it when the cluster answers
            gr.Warning(f"Run {run.run_id} is queued, not submitted yet: {e}")
        msg, rows, drop = self.launched_message(run.run_id)
        st = run.read_status()
        if st.get("ray_job_id"):
            msg = msg.replace(
                "started", f"submitted to {self.ctx.executor.where()} as job `{st['ray_job_id']}`"
            )
        elif st["state"] == "pending" and not st.get("pid"):
            msg = msg.replace("started", "queued (it starts when a slot is free)")
        return msg, run.run_id, rows, drop

    def launch_pipeline(self, name: str, text: str) -> tuple[str, str, Any, Any]:
        source = f"pipeline editor (preset {name})"
        try:
            raw = check_pipeline(config_from_text(text, source), self.ctx.policy, source)
        except ConfigError as e:
            gr.Warning("The pipeline was not started: fix the problems listed under the form.")
            return errors_md(e.problems), gr.skip(), gr.skip(), gr.skip()
        pdir = create_pipeline(raw, self.ctx.runs_dir)
        # Its stages are created by the pipeline process; their workers check them against this.
        pdir.update_status(
            policy=self.ctx.policy.as_dict(), stage_executor=self.ctx.executor.config.as_dict()
        )
        start_pipeline(pdir, self.ctx.launcher.python)
        msg, rows, drop = self.launched_message(pdir.run_id, "Pipeline")
        return msg, pdir.run_id, rows, drop
