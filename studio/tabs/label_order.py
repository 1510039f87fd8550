"""The Label tab's "Order by a reward model" panel: a reward run scores the session's pairs in
a background `uncertainty` run, after which the session serves the most uncertain first."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backends.core.spec.config import ConfigError
from studio.context import StudioContext
from studio.logic.label_order import order_config, reward_runs
from studio.logic.label_view import LabelState


def build_label_order(ctx: StudioContext, state: gr.State) -> None:
    with gr.Accordion("Order by a reward model", open=False) as box:
        gr.Markdown(
            "A reward run scores both answers of every pair in the background; the session then "
            "serves the pairs it is least sure of (smallest |margin|) first, to everyone."
        )
        rm_run = gr.Dropdown(
            reward_runs(ctx.runs_dir),
            value=None,
            label="Reward model run",
            info="Succeeded reward runs, newest first.",
            elem_id="label-order-run",
            allow_custom_value=True,
        )
        start = gr.Button("Score in the background", elem_id="label-order-start")
        msg = gr.Markdown(elem_id="label-order-msg")

    def on_open() -> Any:
        return gr.Dropdown(choices=reward_runs(ctx.runs_dir))

    def on_order(st: LabelState, run_id: str | None) -> str:
        try:
            cfg = order_config(ctx.runs_dir, ctx.store, st.session_id, run_id, ctx.policy)
        except ConfigError as e:
            return "**Not started:** " + "; ".join(e.problems)
        run = ctx.launcher.create_run(cfg)
        ctx.tick()
        return (
            f"Started `{run.run_id}`: reward run `{run_id}` scores the session's pairs. When it has "
            "succeeded, the session serves the most uncertain first (the progress line says so)."
        )

    box.expand(on_open, None, rm_run, api_visibility="private")
    start.click(on_order, [state, rm_run], msg, api_name="label_order")
