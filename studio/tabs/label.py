"""Label tab: people compare two responses side by side (random left/right order) or rank
2 to 9 answers to a prompt, alone or as a team under their login names. Each item goes to
the session's K people, held for whoever it is served to, then retires. Progress and an
ETA update live; the session's guidelines sit above the item.

Every label is committed to SQLite before the page shows the next item. The side panel
is `label_setup`, the results below are `label_results`, the keyboard is `label_keys`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.labels.ranking import OrderError, format_order, parse_order, response_ranks, shown_tiers
from backends.core.labels.store import MAX_RANKED, Item, StoreError
from studio.context import StudioContext
from studio.logic.label_order import ordering_note
from studio.logic.label_view import (
    NOTHING_LEFT,
    LabelState,
    answer_texts,
    default_session,
    progress_text,
    session_label,
)
from studio.logic.labeling import message_text
from studio.tabs.label_keys import KEYBOARD_JS
from studio.tabs.label_order import build_label_order
from studio.tabs.label_results import build_label_results
from studio.tabs.label_setup import build_label_setup, wire_label_setup

__all__ = ["KEYBOARD_JS", "LabelTab", "build_label_tab"]
NO_SESSION = "Pick or create a labeling session."


@dataclass
class LabelTab:
    sessions: gr.Dropdown
    on_page_load: Any  # refreshes the session list and opens this login's session
    on_show: Any  # refreshes the session list (a session made elsewhere appears); with a value, opens it


def annotator_of(request: gr.Request | None, typed: str) -> str:
    """The login name under --auth; otherwise the name typed in the box."""
    user = getattr(request, "username", None) if request is not None else None
    return user or (typed or "").strip() or "anonymous"


def _pad(texts: list[str]) -> list[str]:
    """One text per answer box: the shown answers, then empty boxes."""
    return texts + [""] * (MAX_RANKED - len(texts))


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

    # What each event updates. Gradio rebuilds a whole component for every output that gets a
    # property update, and `gr.skip()` counts as one (gradio 6.31, Blocks.postprocess_data:
    # about half a millisecond each), while a plain new value is cheap. So a vote updates only
    # the text it changes, with plain values; changing session or undoing updates everything.
    pair_out = [state, progress, prompt, left, right, note]
    rank_out = [state, progress, prompt, *answers, order, note]
    skip_out = [state, progress, prompt, left, right, *answers, order, note]
    full_out = [*skip_out, guidelines, *votes, pair_box, rank_box, submit, b_skip, b_undo, setup.guide_edit]

    # --- views -------------------------------------------------------------------------
    def progress_md(st: LabelState, who: str) -> str:
        if st.session_id is None:
            return NO_SESSION
        text = progress_text(ctx.store.progress(st.session_id, who), who, st.k)
        ordered = ctx.store.ordering(st.session_id, with_scores=False)
        return f"{text}\n\n{ordering_note(ordered, st.kind)}" if ordered else text

    def item_view(
        st: LabelState, who: str, item: Item | None, typed_order: str = "", full: bool = False
    ) -> dict[Any, Any]:
        """The item (or 'nothing left') and the progress line, as plain values for every text
        output; `full` adds which buttons work (the page shows nothing of this session yet)."""
        has = item is not None
        out: dict[Any, Any] = {state: st, progress: progress_md(st, who), note: "", order: typed_order}
        out[prompt] = message_text(item.prompt) if item else (NOTHING_LEFT if st.session_id else "")
        pair = st.kind == "pair" and has
        out[left] = message_text(item.responses[st.left]) if pair else ""
        out[right] = message_text(item.responses[st.right]) if pair else ""
        texts = answer_texts(item, st.shown) if item and st.kind == "ranking" else []
        if full or len(texts) != st.answers_on:  # boxes appear or hide
            out.update(
                {
                    box: gr.update(value=t, visible=bool(t))
                    for box, t in zip(answers, _pad(texts), strict=True)
                }
            )
            st.answers_on = len(texts)
        else:
            out.update(dict(zip(answers, _pad(texts), strict=True)))
        if full:
            out.update({b: gr.update(interactive=has) for b in [*votes, submit, b_skip]})
        return out

    def only(outs: list[Any], out: dict[Any, Any]) -> dict[Any, Any]:
        return {k: v for k, v in out.items() if k in outs}

    def next_view(st: LabelState, who: str) -> dict[Any, Any]:
        return item_view(st, who, st.advance(ctx.store, who))

    # --- handlers ----------------------------------------------------------------------
    def on_session(sid: Any, typed: str, st: LabelState, request: gr.Request) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        try:
            found = ctx.store.session(int(sid)) if sid not in (None, "") else None
        except (TypeError, ValueError, StoreError):
            gr.Warning(f"No labeling session {sid!r}.")
            found = None
        st = LabelState()
        st.open(found)
        owner = found.owner if found else ""
        out = item_view(st, who, st.advance(ctx.store, who), full=True)
        out.update(
            {
                guidelines: gr.update(
                    value=found.guidelines if found else "", visible=bool(found and found.guidelines)
                ),
                pair_box: gr.update(visible=st.kind == "pair"),
                rank_box: gr.update(visible=st.kind == "ranking"),
                b_undo: gr.update(interactive=found is not None),
                setup.guide_edit: gr.update(
                    value=found.guidelines if found else "",
                    interactive=found is not None and owner in ("", who),
                    info=f"Only {owner} can edit them." if owner and owner != who else None,
                ),
            }
        )
        return out

    def vote(choice: str):
        def on_vote(st: LabelState, typed: str, text: str, request: gr.Request) -> dict[Any, Any]:
            who = annotator_of(request, typed)
            if st.item_id is None or st.kind != "pair":
                gr.Warning("Nothing to vote on: pick a session with unlabeled pairs.")
                return {state: st}
            try:
                _, item = ctx.store.vote_and_next(st.item_id, who, choice, st.left, st.right, note=text or "")
            except StoreError as e:
                gr.Warning(f"Not counted: {e}")  # the next item shows instead
                return only(pair_out, next_view(st, who))
            st.put(item, who)
            return only(pair_out, item_view(st, who, item))

        return on_vote

    def on_rank(
        st: LabelState, typed: str, typed_order: str, text: str, request: gr.Request
    ) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.item_id is None or st.kind != "ranking":
            gr.Warning("Nothing to rank: pick a ranking session with items left.")
            return {state: st}
        try:
            ranks = response_ranks(st.shown, parse_order(typed_order, len(st.shown)))
            _, item = ctx.store.rank_and_next(st.item_id, who, ranks, st.shown, note=text or "")
        except OrderError as e:
            gr.Warning(str(e))
            return {state: st}
        except StoreError as e:
            gr.Warning(f"Not counted: {e}")
            return only(rank_out, next_view(st, who))
        st.put(item, who)
        return only(rank_out, item_view(st, who, item))

    def on_skip(st: LabelState, typed: str, request: gr.Request) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.item_id is None:
            return only(skip_out, next_view(st, who))
        _, item = ctx.store.skip_and_next(st.item_id, who, st.shown)
        st.put(item, who)
        return only(skip_out, item_view(st, who, item))

    def on_undo(st: LabelState, typed: str, request: gr.Request) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.session_id is None:
            return {state: st}
        undone = ctx.store.undo_last(st.session_id, who)
        if undone is None:
            gr.Info("Nothing of yours to undo in this session.")
            return {state: st}
        if not undone.held:
            gr.Info("Skip undone, but that item has its labels from others by now.")
            return item_view(st, who, st.advance(ctx.store, who), full=True)
        item = ctx.store.item(undone.item_id)
        st.put(item, who, undone.shown or None)
        ranks = getattr(undone.label, "ranks", None)
        out = item_view(st, who, item, format_order(shown_tiers(st.shown, ranks)) if ranks else "", full=True)
        out[note] = undone.note
        return out

    def on_tick(st: LabelState, typed: str, request: gr.Request) -> Any:
        return progress_md(st, annotator_of(request, typed)) if st.session_id is not None else gr.skip()

    def on_page_load(request: gr.Request) -> Any:
        """A reload opens where this login labeled last (or the newest session)."""
        who = getattr(request, "username", None)
        return gr.Dropdown(choices=session_choices(), value=default_session(ctx.store, who))

    # --- wiring ------------------------------------------------------------------------
    session.change(on_session, [session, name_box, state], full_out, api_name="label_session")
    for button, choice in zip(votes, ("left", "right", "tie", "both_bad"), strict=True):
        # Plain strings need no postprocessing, which gradio runs on a worker thread per output.
        button.click(
            vote(choice),
            [state, name_box, note],
            pair_out,
            api_name=f"label_vote_{choice}",
            postprocess=False,
        )
    submit.click(on_rank, [state, name_box, order, note], rank_out, api_name="label_rank")
    order.submit(on_rank, [state, name_box, order, note], rank_out, api_visibility="private")
    b_skip.click(on_skip, [state, name_box], skip_out, api_name="label_skip")
    b_undo.click(on_undo, [state, name_box], full_out, api_name="label_undo")
    timer.tick(on_tick, [state, name_box], progress, api_visibility="private", show_progress="hidden")
    wire_label_setup(ctx, setup, session, name_box, guidelines, state, annotator_of, session_choices)

    def on_show(value: int | None = None) -> Any:
        return gr.Dropdown(choices=session_choices(), **({} if value is None else {"value": value}))

    return LabelTab(session, on_page_load, on_show)
