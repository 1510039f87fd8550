"""Label tab: people compare two responses side by side (random left/right order), alone
or several at once under their login names; agreement; export; one click to train on it.

Keyboard: 1 = left better, 2 = right better, 3 = tie, 4 = both bad, s = skip, u = undo
(ignored while typing in a text box). Every vote is committed to SQLite before the page
shows the next pair."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.agreement import agreement_report, export_pairs, judge_agreement
from backends.core.config import ConfigError, read_preset
from backends.core.data import text_of
from backends.core.jsonl import read_jsonl
from backends.core.paths import PathRefused
from backends.core.store import StoreError
from backends.core.tasks import score_response
from studio.context import StudioContext
from studio.logic.forms import build_config
from studio.logic.labeling import LabelState, items_from_rows, progress_line, show

KEYBOARD_JS = """
() => {
  const keys = {"1": "label-left", "2": "label-right", "3": "label-tie", "4": "label-bad",
                "s": "label-skip", "u": "label-undo"};
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    const id = keys[e.key];
    const button = id && document.getElementById(id);
    if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
  });
}
"""


@dataclass
class LabelTab:
    sessions: gr.Dropdown
    on_page_load: Any  # refreshes the session list (another annotator may have made one)


def annotator_of(request: gr.Request | None, typed: str) -> str:
    """The login name under --auth; otherwise the name typed in the box."""
    user = getattr(request, "username", None) if request is not None else None
    return user or (typed or "").strip() or "anonymous"


def session_choices(ctx: StudioContext) -> list[tuple[str, int]]:
    return [(f"{s['name']} ({s['items']} items)", s["id"]) for s in ctx.store.sessions()]


def build_label_tab(ctx: StudioContext) -> LabelTab:
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            # Sessions appear after the page was built (another annotator may create one).
            session = gr.Dropdown(
                session_choices(ctx),
                label="Labeling session",
                elem_id="label-session",
                allow_custom_value=True,
            )
            name_box = gr.Textbox(
                label="Your name",
                value="me",
                info="Ignored when the studio runs with --auth: your login name is used.",
                elem_id="label-name",
            )
            with gr.Accordion("New session", open=not ctx.store.sessions()):
                source = gr.Textbox(
                    label="From files",
                    elem_id="label-source",
                    info="A preference .jsonl (chosen / rejected), rows with a `responses` list, or "
                    "runs' samples.jsonl (several, comma-separated: responses to the same prompt are "
                    "compared); under the runs or data folder.",
                )
                new_name = gr.Textbox(label="Session name", elem_id="label-new-name")
                create = gr.Button("Create session", elem_id="label-create")
                create_msg = gr.Markdown()
            with gr.Accordion("Generate candidates", open=False):
                gen_a = gr.Textbox(
                    "builtin:smollm2-135m-instruct",
                    label="Model A",
                    info="The embedded default, a run's model/ folder, or any local model.",
                )
                gen_b = gr.Textbox(
                    "", label="Model B (optional)", info="Empty: two samples of model A per prompt."
                )
                gen_prompts = gr.Textbox(
                    "builtin:tasks", label="Prompts", info="builtin:tasks or a prompt file."
                )
                gen_n = gr.Number(20, label="Prompts to sample", precision=0, minimum=1)
                gen_btn = gr.Button("Generate in the background")
                gen_msg = gr.Markdown()
        with gr.Column(scale=3):
            progress = gr.Markdown("Pick or create a labeling session.", elem_id="label-progress")
            prompt = gr.Markdown(elem_id="label-prompt", container=True)
            with gr.Row(equal_height=True):
                left = gr.Markdown(elem_id="label-left-text", container=True)
                right = gr.Markdown(elem_id="label-right-text", container=True)
            with gr.Row():
                b_left = gr.Button("Left is better [1]", variant="primary", elem_id="label-left")
                b_right = gr.Button("Right is better [2]", variant="primary", elem_id="label-right")
                b_tie = gr.Button("Tie [3]", elem_id="label-tie")
                b_bad = gr.Button("Both bad [4]", elem_id="label-bad")
                b_skip = gr.Button("Skip [s]", elem_id="label-skip")
                b_undo = gr.Button("Undo [u]", elem_id="label-undo")
            note = gr.Textbox(label="Note (optional)", lines=1, elem_id="label-note")
    with gr.Accordion("Agreement", open=False):
        agree_btn = gr.Button("Compute agreement")
        agreement = gr.Markdown(elem_id="label-agreement")
    with gr.Accordion("Past votes", open=False):
        past = gr.Dataframe(
            headers=["when", "annotator", "item", "choice", "shown left", "note"], interactive=False
        )
    with gr.Accordion("Export and train", open=False):
        with gr.Row():
            policy = gr.Radio(
                ["majority", "unanimous"],
                value="majority",
                label="Several votes on a pair",
                info="Ties and both-bad votes count against a decision.",
            )
            base_preset = gr.Dropdown(
                [p for p in ctx.list_presets() if p.split("/")[-1] in ("reward.yaml", "dpo.yaml")],
                value="reward.yaml",
                label="Train with preset",
            )
        with gr.Row():
            export = gr.Button("Export preference dataset", elem_id="label-export")
            train = gr.Button("Train on these labels", variant="primary", elem_id="label-train")
        export_msg = gr.Markdown(elem_id="label-export-msg")
    state = gr.State(LabelState())

    # --- handlers ----------------------------------------------------------------------
    def view(st: LabelState, who: str) -> tuple[Any, ...]:
        item = st.advance(ctx.store, who)
        p, lt, rt = show(item, st)
        return st, progress_line(ctx.store, st, who), p, lt, rt, ""

    def on_session(sid: Any, typed: str, st: LabelState, request: gr.Request) -> tuple[Any, ...]:
        known = {s["id"] for s in ctx.store.sessions()}
        try:
            sid = int(sid) if sid not in (None, "") else None
        except (TypeError, ValueError):
            sid = None
        if sid is not None and sid not in known:
            gr.Warning(f"No labeling session with id {sid}.")
            sid = None
        st = LabelState(session_id=sid)
        return view(st, annotator_of(request, typed))

    def on_create(path: str, name: str) -> tuple[str, Any]:
        try:
            files = [ctx.paths.resolve(p, "label source") for p in (path or "").split(",") if p.strip()] or [
                ctx.paths.resolve("", "label source")
            ]
            rows = [row for f in files for row in read_jsonl(f, limit=5000)]
            items = items_from_rows(rows, ", ".join(map(str, files)))
            sid = ctx.store.create_session(
                name.strip() or files[0].stem, items, source=", ".join(map(str, files))
            )
        except (PathRefused, ValueError, OSError) as e:
            return f"**Not created:** {e}", gr.skip()
        return f"Session created with {len(items)} items.", gr.Dropdown(
            choices=session_choices(ctx), value=sid
        )

    def on_generate(a: str, b: str, prompts: str, n: float) -> tuple[str, str]:
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
                "sample.num_samples": 2,
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

    def vote(choice: str):
        def on_vote(st: LabelState, typed: str, text: str, request: gr.Request) -> tuple[Any, ...]:
            who = annotator_of(request, typed)
            if st.item_id is None:
                gr.Warning("Nothing to vote on: pick a session with unlabeled pairs.")
                return (st, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            try:
                ctx.store.record_vote(st.item_id, who, choice, st.left, st.right, note=text or "")
            except StoreError as e:
                gr.Warning(str(e))
                return (st, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            return view(st, who)

        return on_vote

    def on_skip(st: LabelState, typed: str, request: gr.Request) -> tuple[Any, ...]:
        if st.item_id is not None:
            st.skipped.add(st.item_id)
        return view(st, annotator_of(request, typed))

    def on_undo(st: LabelState, typed: str, request: gr.Request) -> tuple[Any, ...]:
        who = annotator_of(request, typed)
        if st.session_id is None:
            return view(st, who)
        undone = ctx.store.undo_last(st.session_id, who)
        if undone is None:
            gr.Info("No vote of yours to undo in this session.")
            return view(st, who)
        st.skipped.discard(undone.item_id)
        st.item_id, st.left, st.right = undone.item_id, undone.left_index, undone.right_index
        p, lt, rt = show(ctx.store.item(undone.item_id), st)
        return st, progress_line(ctx.store, st, who), p, lt, rt, undone.note

    def on_agreement(st: LabelState) -> str:
        if st.session_id is None:
            return "Pick a session first."
        votes = ctx.store.votes(st.session_id)
        rep = agreement_report(votes)
        lines = [
            f"**{rep['votes']} votes** by {', '.join(rep['annotators']) or 'nobody'}; "
            f"{rep['items_with_several_votes']} pairs have several votes."
        ]
        if rep["mean_item_agreement"] is not None:
            lines.append(f"Mean per-pair agreement: {rep['mean_item_agreement']:.2f}")
        for pair, k in rep["cohen_kappa"].items():
            lines.append(f"Cohen's kappa, {pair}: {k:.2f}")
        if rep["fleiss_kappa"] is not None:
            lines.append(f"Fleiss' kappa: {rep['fleiss_kappa']:.2f}")
        if rep["left_share"] is not None:
            lines.append(
                f"Left side chosen in {100 * rep['left_share']:.0f}% of decisive votes (50% = no position bias)"
            )
        items = ctx.store.items(st.session_id)
        checked = {
            it.id: [score_response(it.meta["constraints"], text_of(r)) for r in it.responses]
            for it in items
            if "constraints" in it.meta
        }
        judged = judge_agreement(votes, checked)
        if judged is not None:
            lines.append(f"Agreement with the embedded checkers: {100 * judged:.0f}% of decisive votes")
        return "\n\n".join(lines)

    def on_past(st: LabelState) -> list[list[Any]]:
        if st.session_id is None:
            return []
        return [
            [
                time.strftime("%H:%M:%S", time.localtime(v.created_at)),
                v.annotator,
                v.item_id,
                v.choice,
                f"response {v.left_index}",
                v.note,
            ]
            for v in reversed(ctx.store.votes(st.session_id))
        ]

    def do_export(st: LabelState, pol: str) -> tuple[str, str | None]:
        if st.session_id is None:
            return "Pick a session first.", None
        rows = export_pairs(ctx.store.items(st.session_id), ctx.store.votes(st.session_id), pol)  # type: ignore[arg-type]
        if not rows:
            return f"No pair has a `{pol}` winner yet; label more first.", None
        name = next(s["name"] for s in ctx.store.sessions() if s["id"] == st.session_id)
        # A session name is typed by a person: it names a file, never a path (`../` stays inside).
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{name}-{pol}")
        out = ctx.data_dir / "labels" / f"{safe}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return f"Exported {len(rows)} pairs to `{out}`.", str(out)

    def on_export(st: LabelState, pol: str) -> str:
        return do_export(st, pol)[0]

    def on_train(st: LabelState, pol: str, preset: str) -> str:
        msg, path = do_export(st, pol)
        if path is None:
            return msg
        try:
            values = {"data.dataset": path, "data.eval_fraction": 0.0, "train.eval_steps": None}
            cfg, _ = build_config(
                read_preset(ctx.preset_path(preset)), values, f"Label tab: train with {preset}", ctx.policy
            )
        except ConfigError as e:
            return f"{msg}\n\n**Not started:** {e}"
        run = ctx.launcher.create_run(cfg)
        ctx.tick()
        return f"{msg}\n\nStarted `{cfg.method}` run `{run.run_id}` on them; watch it in the Monitor tab."

    # --- wiring ------------------------------------------------------------------------
    shown = [state, progress, prompt, left, right, note]
    session.change(on_session, [session, name_box, state], shown, api_name="label_session")
    create.click(on_create, [source, new_name], [create_msg, session], api_name="label_create")
    gen_btn.click(
        on_generate, [gen_a, gen_b, gen_prompts, gen_n], [gen_msg, source], api_name="label_generate"
    )
    for button, choice in ((b_left, "left"), (b_right, "right"), (b_tie, "tie"), (b_bad, "both_bad")):
        button.click(vote(choice), [state, name_box, note], shown, api_name=f"label_vote_{choice}").then(
            on_past, state, past, api_visibility="private"
        )
    b_skip.click(on_skip, [state, name_box], shown, api_name="label_skip")
    b_undo.click(on_undo, [state, name_box], shown, api_name="label_undo")
    agree_btn.click(on_agreement, state, agreement, api_name="label_agreement").then(
        on_past, state, past, api_visibility="private"
    )
    export.click(on_export, [state, policy], export_msg, api_name="label_export")
    train.click(on_train, [state, policy, base_preset], export_msg, api_name="label_train")

    def on_page_load() -> Any:
        return gr.Dropdown(choices=session_choices(ctx))

    return LabelTab(session, on_page_load)
