"""Label tab: people compare two responses side by side (random left/right order) or rank
2 to 9 answers to a prompt, alone or as a team under their login names. Each item goes to
the session's K people, held for whoever it is served to, then retires. Progress and an
ETA update live; the session's guidelines sit above the item.

Every label is committed to SQLite before the page shows the next item. The side panel
is `label_setup`, the results below are `label_results`, the keyboard is `label_keys`; this
file lays the tab out and wires it, what its events do is `label_handlers`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.labels.store import MAX_RANKED
from studio.context import StudioContext
from studio.logic.label_view import LabelState, default_session, session_label
from studio.tabs.label_handlers import NO_SESSION, LabelHandlers, LabelPage, annotator_of
from studio.tabs.label_keys import KEYBOARD_JS
from studio.tabs.label_order import build_label_order
from studio.tabs.label_results import build_label_results
from studio.tabs.label_setup import build_label_setup, wire_label_setup

__all__ = ["KEYBOARD_JS", "LabelTab", "build_label_tab"]


@dataclass
class LabelTab:
    sessions: gr.Dropdown
    on_page_load: Any  # refreshes the session list and opens this login's session
    on_show: Any  # refreshes the session list (a session made elsewhere appears); with a value, opens it


def build_label_tab(ctx: StudioContext) -> LabelTab:
    def session_choices() -> list[tuple[str, int]]:
        return [(session_label(s), s.id) for s in ctx.store.sessions()]

    state = gr.State(LabelState())
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            # Filled when the page loads (another annotator may have made a session since).
            session = gr.Dropdown(
                session_choices(),
                value=None,
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
            setup = build_label_setup(ctx)
            build_label_order(ctx, state)
        with gr.Column(scale=3):
            progress = gr.Markdown(NO_SESSION, elem_id="label-progress")
            guidelines = gr.Markdown(elem_id="label-guidelines", container=True, visible=False)
            # line_breaks: a single newline shows as one (answers are judged on their layout too).
            prompt = gr.Markdown(elem_id="label-prompt", container=True, line_breaks=True)
            with gr.Group(elem_id="label-pair") as pair_box:
                with gr.Row(equal_height=True):
                    left = gr.Markdown(elem_id="label-left-text", container=True, line_breaks=True)
                    right = gr.Markdown(elem_id="label-right-text", container=True, line_breaks=True)
                with gr.Row():
                    votes = [
                        gr.Button(text, variant=v, elem_id=f"label-{i}", interactive=False)
                        for text, v, i in (
                            ("Left is better [1]", "primary", "left"),
                            ("Right is better [2]", "primary", "right"),
                            ("Tie [3]", "secondary", "tie"),
                            ("Both bad [4]", "secondary", "bad"),
                        )
                    ]
            with gr.Group(elem_id="label-rank", visible=False) as rank_box:
                with gr.Row(equal_height=True):
                    answers = [
                        gr.Markdown(
                            elem_id=f"label-answer-{i}", container=True, visible=False, line_breaks=True
                        )
                        for i in range(MAX_RANKED)
                    ]
                with gr.Row():
                    order = gr.Textbox(
                        label="Order, best first",
                        info="Press the letters best first (= ties the next one, Backspace takes one back, "
                        "Enter submits), or type e.g. B A C here.",
                        max_lines=1,
                        scale=4,
                        elem_id="label-rank-order",
                    )
                    submit = gr.Button(
                        "Submit ranking [Enter]",
                        variant="primary",
                        scale=1,
                        elem_id="label-rank-submit",
                        interactive=False,
                    )
            with gr.Row():
                b_skip = gr.Button("Skip [s]", elem_id="label-skip", interactive=False)
                b_undo = gr.Button("Undo [u]", elem_id="label-undo", interactive=False)
            note = gr.Textbox(label="Note (optional)", lines=1, elem_id="label-note")
            timer = gr.Timer(5.0)
    build_label_results(ctx, state)
    page = LabelPage(
        state=state,
        progress=progress,
        guidelines=guidelines,
        prompt=prompt,
        pair_box=pair_box,
        left=left,
        right=right,
        votes=votes,
        rank_box=rank_box,
        answers=answers,
        order=order,
        submit=submit,
        b_skip=b_skip,
        b_undo=b_undo,
        note=note,
        guide_edit=setup.guide_edit,
    )
    h = LabelHandlers(ctx, page)

    def on_page_load(request: gr.Request) -> Any:
        """A reload opens where this login labeled last (or the newest session)."""
        who = getattr(request, "username", None)
        return gr.Dropdown(choices=session_choices(), value=default_session(ctx.store, who))

    # --- wiring ------------------------------------------------------------------------
    session.change(h.on_session, [session, name_box, state], page.full_out, api_name="label_session")
    for button, choice in zip(votes, ("left", "right", "tie", "both_bad"), strict=True):
        # Plain strings need no postprocessing, which gradio runs on a worker thread per output.
        button.click(
            h.vote(choice),
            [state, name_box, note],
            page.pair_out,
            api_name=f"label_vote_{choice}",
            postprocess=False,
        )
    submit.click(h.on_rank, [state, name_box, order, note], page.rank_out, api_name="label_rank")
    order.submit(h.on_rank, [state, name_box, order, note], page.rank_out, api_visibility="private")
    b_skip.click(h.on_skip, [state, name_box], page.skip_out, api_name="label_skip")
    b_undo.click(h.on_undo, [state, name_box], page.full_out, api_name="label_undo")
    timer.tick(h.on_tick, [state, name_box], progress, api_visibility="private", show_progress="hidden")
    wire_label_setup(ctx, setup, session, name_box, guidelines, state, annotator_of, session_choices)

    def on_show(value: int | None = None) -> Any:
        return gr.Dropdown(choices=session_choices(), **({} if value is None else {"value": value}))

    return LabelTab(session, on_page_load, on_show)
