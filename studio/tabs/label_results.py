"""The Label tab's results: the team's progress per annotator, agreement, past labels, export,
and one click to train on them. Layout and wiring only; what each button does is
studio/logic/label_results.py."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.context import StudioContext
from studio.logic import label_results as results
from studio.logic.label_view import LabelState


def build_label_results(ctx: StudioContext, state: gr.State) -> None:
    with gr.Accordion("Team", open=False):
        team = gr.Dataframe(
            headers=["annotator", "labels", "skips", "last label"], interactive=False, elem_id="label-team"
        )
        timer = gr.Timer(10.0)
    with gr.Accordion("Agreement", open=False):
        agree_btn = gr.Button("Compute agreement")
        agreement = gr.Markdown(elem_id="label-agreement")
    with gr.Accordion("Past labels", open=False) as past_box:
        past = gr.Dataframe(
            headers=["when", "annotator", "item", "label", "shown", "note"], interactive=False
        )
    with gr.Accordion("Export and train", open=False):
        with gr.Row():
            policy = gr.Radio(
                ["majority", "unanimous"],
                value="majority",
                label="Several votes on a pair",
                info="Ties and both-bad votes count against a decision. Rankings export every pair.",
            )
            base_preset = gr.Dropdown(
                [p for p in ctx.list_presets() if p.split("/")[-1] in ("reward.yaml", "dpo.yaml")],
                value="reward.yaml",
                label="Train with preset",
            )
        with gr.Row():
            export = gr.Button("Export", elem_id="label-export")
            train = gr.Button("Train on these labels", variant="primary", elem_id="label-train")
        export_msg = gr.Markdown(elem_id="label-export-msg")
        download = gr.DownloadButton("Download the export", visible=False, elem_id="label-download")

    def on_team(st: LabelState) -> list[list[Any]]:
        return results.team_rows(ctx.store, st)

    def on_agreement(st: LabelState) -> str:
        return results.agreement_markdown(ctx.store, st)

    def on_past(st: LabelState) -> list[list[Any]]:
        return results.past_rows(ctx.store, st)

    def on_export(st: LabelState, pol: str) -> str:
        return results.export_labels(ctx.store, ctx.data_dir, st, pol).message

    def on_train(st: LabelState, pol: str, preset: str) -> str:
        return results.train_on_labels(ctx, st, pol, preset)

    def on_download(st: LabelState, pol: str) -> Any:
        """The file the export just wrote, offered for download (none: the button hides)."""
        path = None if st.session_id is None else results.export_path(ctx.store, ctx.data_dir, st, pol)
        if path is None or not path.exists():
            return gr.DownloadButton(visible=False)
        return gr.DownloadButton(value=str(path), visible=True)

    timer.tick(on_team, state, team, api_visibility="private", show_progress="hidden")
    agree_btn.click(on_agreement, state, agreement, api_name="label_agreement")
    past_box.expand(on_past, state, past, api_visibility="private")
    agree_btn.click(on_past, state, past, api_visibility="private")
    export.click(on_export, [state, policy], export_msg, api_name="label_export").then(
        on_download, [state, policy], download, api_visibility="private"
    )
    train.click(on_train, [state, policy, base_preset], export_msg, api_name="label_train")
