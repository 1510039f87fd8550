"""Data tab actions that run in the background: augment a preference set with synthetic pairs
(the `sda` stage) or select the rows of an SFT set that help a target set most (`select`).
Each starts a run through the one form route (`forms.build_config`); its output dataset
appears among the Data tab's sources when the run has finished."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backends.core.spec import registry
from backends.core.spec.config import EMBEDDED_DATA, EMBEDDED_MODEL, ConfigError, read_preset
from studio.context import StudioContext
from studio.logic.forms import build_config
from studio.logic.handoff import parse_mapping

ACTIONS = ("augment: synthetic preference pairs", "select: the rows most like a target set")


def action_values(
    action: str,
    dataset: str,
    layout: str,
    mapping: dict[str, str],
    model: str,
    judge: str,
    rm: str,
    amount: float,
    target: str,
) -> tuple[str | None, dict[str, Any]]:
    """(preset, dotted values) of the run an action starts. Pure: tested without gradio."""
    values: dict[str, Any] = {
        "data.dataset": dataset,
        "data.layout": layout or "auto",
        "data.columns": mapping,
        "model.name_or_path": model or EMBEDDED_MODEL,
    }
    if dataset != EMBEDDED_DATA:
        values["data.max_samples"] = None
    if action.startswith("augment"):
        spec = {"kind": "checkers"} if judge == "checkers" else {"kind": "reward_model", "path": rm}
        values.update({"name": "augment", "sda.judge": spec, "sda.new_prompts": int(amount or 64)})
        return "sda.yaml", values
    values.update({"method": "select", "name": "select", "select.fraction": float(amount or 0.2)})
    if target.strip() and target.strip() != EMBEDDED_DATA:
        values["select.target_dataset"] = target.strip()
    return None, values


def build_data_actions(
    ctx: StudioContext, source: gr.Dropdown, layout: gr.Dropdown, mapping: gr.Textbox
) -> None:
    with gr.Accordion("Augment or select (a background run)", open=False, elem_id="data-actions"):
        gr.Markdown(
            "**Augment** a preference set: the model writes new prompts in the style of a seed share of its "
            "prompts, near-duplicates are dropped, answers are judged into new pairs, merged with the set "
            "(a `source` column says which rows are new). **Select** from an SFT set the share of rows whose "
            "gradients look most like a target set's (LESS-style). The output lands in the run's `data/` folder."
        )
        with gr.Row():
            action = gr.Radio(list(ACTIONS), value=ACTIONS[0], label="Action", scale=2, elem_id="data-action")
            model = gr.Textbox(
                EMBEDDED_MODEL,
                label="Model",
                info="Writes prompts and answers (augment) or gives the gradients (select): e.g. an SFT run's model/.",
                scale=2,
            )
        with gr.Row():
            judge = gr.Dropdown(
                ["checkers", "reward_model"],
                value="checkers",
                label="Judge (augment)",
                info="checkers: prompts with the embedded tasks' constraints; else a reward model run.",
            )
            rm = gr.Textbox(label="Reward model (augment)", info="A reward run's model/ folder.")
            amount = gr.Number(64, label="New prompts (augment) / keep share (select)", minimum=0)
            target = gr.Textbox(
                EMBEDDED_DATA, label="Target set (select)", info="builtin:tasks: its dev split; or a file."
            )
        start = gr.Button("Start", elem_id="data-action-start")
        message = gr.Markdown(elem_id="data-action-msg")

    def on_action(act: str) -> Any:
        return gr.Number(value=64 if act.startswith("augment") else 0.2)

    def on_start(
        act: str, src: str, lay: str, cols: str, mdl: str, jd: str, rm_path: str, amt: float, tgt: str
    ) -> str:
        src = (src or "").strip()
        if not src:
            return "**Not started:** open a dataset first."
        dataset = EMBEDDED_DATA if src.startswith(EMBEDDED_DATA) else src
        try:
            preset, values = action_values(
                act, dataset, lay, parse_mapping(cols or ""), mdl.strip(), jd, rm_path.strip(), amt, tgt
            )
            base = read_preset(ctx.preset_path(preset)) if preset else {}
            cfg, _ = build_config(base, values, f"Data tab: {act.split(':')[0]}", ctx.policy)
        except (ConfigError, ValueError) as e:
            problems = getattr(e, "problems", [str(e)])
            return "**Not started:**\n" + "\n".join(f"- {p}" for p in problems)
        run = ctx.launcher.create_run(cfg)
        ctx.tick()
        out = ", ".join(f"`{run.data_path(n)}`" for n in registry.get(cfg.method).outputs)
        return f"Started `{cfg.method}` run `{run.run_id}`; when it has finished, open {out} here."

    action.change(on_action, action, amount, api_visibility="private")
    start.click(
        on_start,
        [action, source, layout, mapping, model, judge, rm, amount, target],
        message,
        api_name="data_action",
    )
