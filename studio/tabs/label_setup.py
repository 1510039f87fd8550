"""The Label tab's side panel: new sessions (pairs or rankings, K people per item, their
guidelines), candidates generated in the background, and the owner's guidelines editor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.access.paths import PathRefused
from backends.core.data.formats import builtin_rows
from backends.core.data.jsonl import read_jsonl
from backends.core.labels.store import MAX_RANKED, MAX_VOTES_PER_ITEM, StoreError
from backends.core.spec.config import EMBEDDED_DATA, ConfigError, read_preset
from studio.context import StudioContext
from studio.logic.forms import build_config
from studio.logic.label_view import LabelState
from studio.logic.labeling import items_from_rows


@dataclass
class LabelSetup:
    source: gr.Textbox
    new_name: gr.Textbox
    kind: gr.Radio
    per_item: gr.Number
    new_guidelines: gr.Textbox
    create: gr.Button
    create_msg: gr.Markdown
    gen: list[Any]  # model A, model B, prompts, prompts to sample, answers per model
    gen_btn: gr.Button
    gen_msg: gr.Markdown
    guide_edit: gr.Textbox
    guide_save: gr.Button
    guide_msg: gr.Markdown


def build_label_setup(ctx: StudioContext) -> LabelSetup:
    with gr.Accordion("New session", open=not ctx.store.sessions()):
        source = gr.Textbox(
            label="From files",
            elem_id="label-source",
            info="A preference .jsonl (chosen / rejected), rows with a `responses` list, or runs' "
            "samples.jsonl (several, comma-separated: responses to the same prompt are grouped); "
            "under the runs or data folder. builtin:tasks: 200 of the embedded tasks' pairs.",
        )
        new_name = gr.Textbox(label="Session name", elem_id="label-new-name")
        kind = gr.Radio(
            [
                ("Pairs: pick the better of two", "pair"),
                (f"Ranking: order 2 to {MAX_RANKED} answers", "ranking"),
            ],
            value="pair",
            label="Kind",
            elem_id="label-kind",
        )
        per_item = gr.Number(
            1,
            label="People per item (K)",
            precision=0,
            minimum=1,
            maximum=MAX_VOTES_PER_ITEM,
            info=f"Each item goes to K different people (1 to {MAX_VOTES_PER_ITEM}), then retires.",
            elem_id="label-k",
        )
        new_guidelines = gr.Textbox(
            "",  # a default, so an API call may leave it out (like kind and K)
            label="Guidelines (markdown)",
            lines=3,
            info="Shown above every item; only you can edit them later.",
        )
        create = gr.Button("Create session", elem_id="label-create")
        create_msg = gr.Markdown()
    with gr.Accordion("Generate candidates", open=False):
        gen = [
            gr.Textbox(
                "builtin:smollm2-135m-instruct",
                label="Model A",
                info="The embedded default, a run's model/ folder, or any local model.",
            ),
            gr.Textbox("", label="Model B (optional)", info="Empty: only model A's answers."),
            gr.Textbox("builtin:tasks", label="Prompts", info="builtin:tasks or a prompt file."),
            gr.Number(20, label="Prompts to sample", precision=0, minimum=1),
            gr.Number(
                2,
                label="Answers per model",
                precision=0,
                minimum=1,
                maximum=MAX_RANKED,
                info=f"A ranking shows every answer of a prompt: at most {MAX_RANKED} in all.",
            ),
        ]
        gen_btn = gr.Button("Generate in the background")
        gen_msg = gr.Markdown()
    with gr.Accordion("Edit guidelines", open=False):
        guide_edit = gr.Textbox(
            label="Guidelines (markdown)", lines=4, interactive=False, elem_id="label-guidelines-edit"
        )
        guide_save = gr.Button("Save guidelines", elem_id="label-guidelines-save")
        guide_msg = gr.Markdown()
    return LabelSetup(
        source,
        new_name,
        kind,
        per_item,
        new_guidelines,
        create,
        create_msg,
        gen,
        gen_btn,
        gen_msg,
        guide_edit,
        guide_save,
        guide_msg,
    )


def wire_label_setup(
    ctx: StudioContext,
    ui: LabelSetup,
    session: gr.Dropdown,
    name_box: gr.Textbox,
    guidelines: gr.Markdown,
    state: gr.State,
    annotator_of: Callable[[gr.Request | None, str], str],
    session_choices: Callable[[], list[tuple[str, int]]],
) -> None:
    def on_create(
        path: str, name: str, kind: str, k: float | None, text: str, typed: str, request: gr.Request
    ) -> tuple[str, Any]:
        try:
            parts = [p.strip() for p in (path or "").split(",") if p.strip()]
            if parts and all(p.startswith(EMBEDDED_DATA) for p in parts):
                # what the Data tab opens as builtin:tasks[:method]; labeling takes its pairs
                rows, source, stem = builtin_rows("dpo", "train", 200, 0), EMBEDDED_DATA, "builtin-tasks"
            else:
                files = [ctx.paths.resolve(p, "label source") for p in parts] or [
                    ctx.paths.resolve("", "label source")
                ]
                rows = [row for f in files for row in read_jsonl(f, limit=5000)]
                source, stem = ", ".join(map(str, files)), files[0].stem
            items = items_from_rows(rows, source)
            sid = ctx.store.create_session(
                (name or "").strip() or stem,
                items,
                source=source,
                kind=kind or "pair",
                votes_per_item=int(k) if k is not None else 0,
                guidelines=text or "",
                owner=annotator_of(request, typed),
            )
        except (PathRefused, ValueError, OSError, OverflowError) as e:  # OverflowError: K = inf
            return f"**Not created:** {e}", gr.skip()
        return f"Session created with {len(items)} items.", gr.Dropdown(choices=session_choices(), value=sid)

    def on_generate(a: str, b: str, prompts: str, n: float, per_model: float) -> tuple[str, Any]:
        """Start one `sample` run per model; their samples.jsonl become the session's source."""
        models = [m.strip() for m in (a, b) if m and m.strip()]
        if not models:
            return "Name at least one model.", gr.skip()
        paths, ids = [], []
        for model in models:
            values = {
                "model.name_or_path": model,
                "data.dataset": prompts.strip() or "builtin:tasks",
                "data.max_samples": int(n or 20),
                "sample.num_samples": int(per_model or 2),
                "name": "label-candidates",
            }
            try:
                cfg, _ = build_config(
                    read_preset(ctx.preset_path("sample.yaml")), values, "Label tab: candidates", ctx.policy
                )
            except ConfigError as e:
                return f"**Not started:** {e}", gr.skip()
            run = ctx.launcher.create_run(cfg)
            paths.append(str(run.samples_path))
            ids.append(run.run_id)
        ctx.tick()
        return (
            f"Started {', '.join(f'`{i}`' for i in ids)} (progress in the Train tab's runs table). When they "
            "have succeeded, press **Create session**: the source box is filled in.",
            ", ".join(paths),
        )

    def on_save(st: LabelState, text: str, typed: str, request: gr.Request) -> tuple[str, Any]:
        if st.session_id is None:
            return "Pick a session first.", gr.skip()
        try:
            ctx.store.set_guidelines(st.session_id, text or "", annotator_of(request, typed))
        except StoreError as e:
            return f"**Not saved:** {e}", gr.skip()
        return "Saved.", gr.Markdown(text or "", visible=bool((text or "").strip()))

    ui.create.click(
        on_create,
        [ui.source, ui.new_name, ui.kind, ui.per_item, ui.new_guidelines, name_box],
        [ui.create_msg, session],
        api_name="label_create",
    )
    ui.gen_btn.click(on_generate, ui.gen, [ui.gen_msg, ui.source], api_name="label_generate")
    ui.guide_save.click(
        on_save, [state, ui.guide_edit, name_box], [ui.guide_msg, guidelines], api_name="label_guidelines"
    )
