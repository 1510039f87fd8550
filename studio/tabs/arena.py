"""Arena tab: pit two or more models against each other on a prompt set, judged by the
checkers, a reward-model run, an LLM judge, or people (through the Label tab), with live
win-rate tallies, confidence intervals, length effects and the prompts where judges disagree."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.access.paths import PathRefused
from backends.core.data.jsonl import read_jsonl
from backends.core.runs.rundir import list_runs
from backends.core.spec.config import EMBEDDED_MODEL, ConfigError
from studio.context import StudioContext
from studio.logic.arena import (
    PAIRED_HEADERS,
    SCORE_HEADERS,
    TALLY_HEADERS,
    disagreements,
    paired_rows,
    people_rows,
    per_prompt_rows,
    ranking_rows,
    score_rows,
    tally_rows,
    typed_rows,
    verdict_markdown,
)
from studio.logic.forms import build_config
from studio.logic.runs import resolve_run, run_method


@dataclass
class ArenaTab:
    models: gr.Dropdown
    comparison: gr.Dropdown
    on_page_load: Any
    handoff: Any  # the "Judge by people" event: the app opens the Label tab on its session after it


def model_choices(ctx: StudioContext) -> list[str]:
    """The embedded model and every finished run's model folder."""
    out = [EMBEDDED_MODEL]
    for run in list_runs(ctx.runs_dir):
        if run.model_dir.exists() and run.read_status()["state"] == "succeeded":
            out.append(str(run.model_dir))
    return out


def eval_runs(ctx: StudioContext) -> list[str]:
    return [r.run_id for r in list_runs(ctx.runs_dir) if run_method(r) == "eval"]


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

    # --- handlers ----------------------------------------------------------------------
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
    ) -> tuple[str, Any]:
        dataset, split = (src or "builtin:tasks").strip(), "heldout"
        if typed_text and typed_text.strip():
            lines = [x.strip() for x in typed_text.splitlines() if x.strip()]
            rows, problem = typed_rows(lines, "checkers" in js)
            if problem:  # said before the run, never a judge swapped behind the person's back
                return f"**Not started:** {problem}", gr.skip()
            out = ctx.data_dir / "arena" / f"prompts-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(json.dumps(r) + "\n" for r in rows))
            dataset, split = str(out), "train"
        elif dataset != "builtin:tasks":
            try:
                dataset, split = str(ctx.paths.resolve(dataset, "prompt file")), "train"
            except PathRefused as e:
                return f"**Not started:** {e}", gr.skip()
        judge_specs = [
            {"kind": "checkers"}
            if j == "checkers"
            else {"kind": "reward_model", "path": rm.strip()}
            if j == "reward_model"
            else {"kind": "llm", "path": llm.strip() or EMBEDDED_MODEL}
            for j in js
        ]
        values = {
            "name": "arena",
            "method": "eval",
            "model.name_or_path": (ms or [EMBEDDED_MODEL])[0],
            "data.dataset": dataset,
            "data.split": split,
            "data.max_samples": int(k or 24),
            "eval.models": ms or [],
            "eval.judges": judge_specs,
            "eval.max_new_tokens": int(mx or 96),
            "eval.temperature": float(t or 0.0),
            "eval.samples_per_prompt": int(spp or 1),
        }
        try:
            cfg, _ = build_config({}, values, "Arena form", ctx.policy)
        except ConfigError as e:
            return "**Not started:**\n" + "\n".join(f"- {p}" for p in e.problems), gr.skip()
        run = ctx.launcher.create_run(cfg)
        ctx.tick()
        return (
            f"Comparison `{run.run_id}` started; tallies update below as judgments arrive.",
            gr.Dropdown(choices=eval_runs(ctx), value=run.run_id),
        )

    empty_table = {"headers": ["#"], "data": []}

    def on_show(run_id: str | None, dis: bool) -> tuple[Any, ...]:
        run = resolve_run(ctx.runs_dir, run_id)  # an id is a name, never a path (no `..`)
        nothing = (gr.DownloadButton(visible=False), "", [], [], [], [], "", empty_table)
        if run is None or not run.exists():
            return ("Pick a comparison.", *nothing)
        st = run.read_status()
        state = st["state"] + (f" ({st['phase']})" if st["state"] == "running" and st.get("phase") else "")
        if not run.winrate_path.exists():
            reason = f"\n\n**Reason:** {st['error']}" if st.get("error") else ""
            return (f"`{run.run_id}`: {state}; no judgments yet{reason}", *nothing)
        wr = json.loads(run.winrate_path.read_text())
        engine = wr["sampling"]["engine"]
        head = (
            f"`{run.run_id}`: **{state}** · {wr['prompts_done']} of {wr['prompt_set']['n']} prompts, "
            f"{wr['sampling'].get('samples_per_prompt', 1)} answer(s) each · generation: {engine}"
            + (" (vLLM not available here)" if engine == "transformers" else "")
            + f"\n\n_{wr['ci_method']}_"
        )
        if st.get("error"):
            head += f"\n\n**Reason:** {st['error']}"
        agree = "; ".join(f"{k}: {100 * v:.0f}% agree" for k, v in wr["judge_agreement"].items())
        table = per_prompt_rows(run)
        if dis:
            table = disagreements(table)
        k = len(table["headers"])
        widths = ["4%", "26%"] + [f"{70 / max(k - 2, 1):.0f}%"] * (k - 2)
        frame = gr.Dataframe(
            value={"headers": table["headers"], "data": table["data"]},
            headers=table["headers"],
            column_widths=widths,
        )
        people = people_rows(ctx.store, f"arena-{run.run_id}", wr["models"])
        has_report = run.report_html_path.exists()
        button = gr.DownloadButton(
            value=str(run.report_html_path) if has_report else None, visible=has_report
        )
        return (
            head,
            button,
            verdict_markdown(wr),
            score_rows(wr),
            paired_rows(wr),
            tally_rows(wr) + people,
            ranking_rows(wr),
            f"Judges: {agree}" if agree else "",
            frame,
        )

    def on_tick(run_id: str | None, dis: bool, seen: tuple[Any, ...] | None) -> tuple[Any, ...]:
        """Cheap check first: redraw only when the comparison's files or state changed."""
        run = resolve_run(ctx.runs_dir, run_id)  # an id is a name, never a path (no `..`)
        stamp: tuple[Any, ...] = (run_id, dis)
        if run is not None and run.exists():
            files = [
                run.status_path,
                run.winrate_path,
                *ctx.store.path.parent.glob("labels.sqlite*"),
            ]
            stamp += tuple(f.stat().st_mtime_ns for f in files if f.exists())
        if stamp == seen:
            return (*[gr.skip()] * len(outs), seen)
        return (*on_show(run_id, dis), stamp)

    def on_label(run_id: str | None) -> str:
        run = resolve_run(ctx.runs_dir, run_id)  # an id is a name, never a path (no `..`)
        if run is None or not run.samples_path.exists():
            return "Pick a comparison with answers first."
        rows = [r for r in read_jsonl(run.samples_path, complete_only=True) if r.get("sample", 0) == 0]
        items: dict[int, dict[str, Any]] = {}
        for r in rows:
            it = items.setdefault(
                r["prompt_id"], {"prompt": r["prompt"], "responses": [], "meta": {"models": []}}
            )
            it["responses"].append(r["response"])
            it["meta"]["models"].append(r["model"])
        name = f"arena-{run.run_id}"
        try:
            ctx.store.create_session(name, list(items.values()), source=str(run.samples_path))
        except ValueError as e:
            return f"**Not created:** {e}"
        return f"Labeling session `{name}` created: open the Label tab and pick it."

    def on_page_load() -> tuple[Any, Any]:
        return gr.Dropdown(choices=model_choices(ctx)), gr.Dropdown(choices=eval_runs(ctx))

    # --- wiring ------------------------------------------------------------------------
    start.click(
        on_start,
        [models, prompts, typed, n, max_new, temp, judges, rm_path, llm_path, per_prompt_k],
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
