"""What the Label tab's events do: vote, rank, skip, undo, open a session, tick. Apart from
the layout (label.py), as LLaMA-Factory keeps its handlers apart from its components; each
handler returns plain values for the outputs it changes (see `LabelHandlers` below)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.labels.ranking import OrderError, format_order, parse_order, response_ranks, shown_tiers
from backends.core.labels.store import MAX_RANKED, Item, StoreError
from studio.context import StudioContext
from studio.logic.label_order import ordering_note
from studio.logic.label_view import NOTHING_LEFT, LabelState, answer_texts, progress_text
from studio.logic.labeling import message_text

NO_SESSION = "Pick or create a labeling session."


def annotator_of(request: gr.Request | None, typed: str) -> str:
    """The login name under --auth; otherwise the name typed in the box."""
    user = getattr(request, "username", None) if request is not None else None
    return user or (typed or "").strip() or "anonymous"


def _pad(texts: list[str]) -> list[str]:
    """One text per answer box: the shown answers, then empty boxes."""
    return texts + [""] * (MAX_RANKED - len(texts))


@dataclass
class LabelPage:
    """The components the handlers read or change (label.py builds them)."""

    state: gr.State
    progress: gr.Markdown
    guidelines: gr.Markdown
    prompt: gr.Markdown
    pair_box: gr.Group
    left: gr.Markdown
    right: gr.Markdown
    votes: list[gr.Button]
    rank_box: gr.Group
    answers: list[gr.Markdown]
    order: gr.Textbox
    submit: gr.Button
    b_skip: gr.Button
    b_undo: gr.Button
    note: gr.Textbox
    guide_edit: gr.Textbox

    # What each event updates. Gradio rebuilds a whole component for every output that gets a
    # property update, and `gr.skip()` counts as one (gradio 6.31, Blocks.postprocess_data:
    # about half a millisecond each), while a plain new value is cheap. So a vote updates only
    # the text it changes, with plain values; changing session or undoing updates everything.
    @property
    def pair_out(self) -> list[Any]:
        return [self.state, self.progress, self.prompt, self.left, self.right, self.note]

    @property
    def rank_out(self) -> list[Any]:
        return [self.state, self.progress, self.prompt, *self.answers, self.order, self.note]

    @property
    def skip_out(self) -> list[Any]:
        return [
            self.state,
            self.progress,
            self.prompt,
            self.left,
            self.right,
            *self.answers,
            self.order,
            self.note,
        ]

    @property
    def full_out(self) -> list[Any]:
        buttons = [*self.votes, self.pair_box, self.rank_box, self.submit, self.b_skip, self.b_undo]
        return [*self.skip_out, self.guidelines, *buttons, self.guide_edit]


class LabelHandlers:
    def __init__(self, ctx: StudioContext, page: LabelPage) -> None:
        self.ctx, self.p = ctx, page

    # --- views -------------------------------------------------------------------------
    def progress_md(self, st: LabelState, who: str) -> str:
        if st.session_id is None:
            return NO_SESSION
        store = self.ctx.store
        text = progress_text(store.progress(st.session_id, who), who, st.k)
        ordered = store.ordering(st.session_id, with_scores=False)
        return f"{text}\n\n{ordering_note(ordered, st.kind)}" if ordered else text

    def item_view(
        self, st: LabelState, who: str, item: Item | None, typed_order: str = "", full: bool = False
    ) -> dict[Any, Any]:
        """The item (or 'nothing left') and the progress line, as plain values for every text
        output; `full` adds which buttons work (the page shows nothing of this session yet)."""
        p, has = self.p, item is not None
        out: dict[Any, Any] = {
            p.state: st,
            p.progress: self.progress_md(st, who),
            p.note: "",
            p.order: typed_order,
        }
        out[p.prompt] = message_text(item.prompt) if item else (NOTHING_LEFT if st.session_id else "")
        pair = st.kind == "pair" and has
        out[p.left] = message_text(item.responses[st.left]) if pair else ""
        out[p.right] = message_text(item.responses[st.right]) if pair else ""
        texts = answer_texts(item, st.shown) if item and st.kind == "ranking" else []
        if full or len(texts) != st.answers_on:  # boxes appear or hide
            out.update(
                {
                    box: gr.update(value=t, visible=bool(t))
                    for box, t in zip(p.answers, _pad(texts), strict=True)
                }
            )
            st.answers_on = len(texts)
        else:
            out.update(dict(zip(p.answers, _pad(texts), strict=True)))
        if full:
            out.update({b: gr.update(interactive=has) for b in [*p.votes, p.submit, p.b_skip]})
        return out

    def next_view(self, st: LabelState, who: str) -> dict[Any, Any]:
        return self.item_view(st, who, st.advance(self.ctx.store, who))

    @staticmethod
    def only(outs: list[Any], out: dict[Any, Any]) -> dict[Any, Any]:
        return {k: v for k, v in out.items() if k in outs}

    # --- events ------------------------------------------------------------------------
    def on_session(self, sid: Any, typed: str, st: LabelState, request: gr.Request) -> dict[Any, Any]:
        p, who = self.p, annotator_of(request, typed)
        try:
            found = self.ctx.store.session(int(sid)) if sid not in (None, "") else None
        except (TypeError, ValueError, StoreError):
            gr.Warning(f"No labeling session {sid!r}.")
            found = None
        st = LabelState()
        st.open(found)
        owner = found.owner if found else ""
        out = self.item_view(st, who, st.advance(self.ctx.store, who), full=True)
        guide = found.guidelines if found else ""
        out.update(
            {
                p.guidelines: gr.update(value=guide, visible=bool(found and found.guidelines)),
                p.pair_box: gr.update(visible=st.kind == "pair"),
                p.rank_box: gr.update(visible=st.kind == "ranking"),
                p.b_undo: gr.update(interactive=found is not None),
                p.guide_edit: gr.update(
                    value=guide,
                    interactive=found is not None and owner in ("", who),
                    info=f"Only {owner} can edit them." if owner and owner != who else None,
                ),
            }
        )
        return out

    def vote(self, choice: str):
        def on_vote(st: LabelState, typed: str, text: str, request: gr.Request) -> dict[Any, Any]:
            who = annotator_of(request, typed)
            if st.item_id is None or st.kind != "pair":
                gr.Warning("Nothing to vote on: pick a session with unlabeled pairs.")
                return {self.p.state: st}
            try:
                _, item = self.ctx.store.vote_and_next(
                    st.item_id, who, choice, st.left, st.right, note=text or ""
                )
            except StoreError as e:
                gr.Warning(f"Not counted: {e}")  # the next item shows instead
                return self.only(self.p.pair_out, self.next_view(st, who))
            st.put(item, who)
            return self.only(self.p.pair_out, self.item_view(st, who, item))

        return on_vote

    def on_rank(
        self, st: LabelState, typed: str, typed_order: str, text: str, request: gr.Request
    ) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.item_id is None or st.kind != "ranking":
            gr.Warning("Nothing to rank: pick a ranking session with items left.")
            return {self.p.state: st}
        try:
            ranks = response_ranks(st.shown, parse_order(typed_order, len(st.shown)))
            _, item = self.ctx.store.rank_and_next(st.item_id, who, ranks, st.shown, note=text or "")
        except OrderError as e:
            gr.Warning(str(e))
            return {self.p.state: st}
        except StoreError as e:
            gr.Warning(f"Not counted: {e}")
            return self.only(self.p.rank_out, self.next_view(st, who))
        st.put(item, who)
        return self.only(self.p.rank_out, self.item_view(st, who, item))

    def on_skip(self, st: LabelState, typed: str, request: gr.Request) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.item_id is None:
            return self.only(self.p.skip_out, self.next_view(st, who))
        _, item = self.ctx.store.skip_and_next(st.item_id, who, st.shown)
        st.put(item, who)
        return self.only(self.p.skip_out, self.item_view(st, who, item))

    def on_undo(self, st: LabelState, typed: str, request: gr.Request) -> dict[Any, Any]:
        who = annotator_of(request, typed)
        if st.session_id is None:
            return {self.p.state: st}
        store = self.ctx.store
        undone = store.undo_last(st.session_id, who)
        if undone is None:
            gr.Info("Nothing of yours to undo in this session.")
            return {self.p.state: st}
        if not undone.held:
            gr.Info("Skip undone, but that item has its labels from others by now.")
            return self.item_view(st, who, st.advance(store, who), full=True)
        item = store.item(undone.item_id)
        st.put(item, who, undone.shown or None)
        ranks = getattr(undone.label, "ranks", None)
        typed_order = format_order(shown_tiers(st.shown, ranks)) if ranks else ""
        out = self.item_view(st, who, item, typed_order, full=True)
        out[self.p.note] = undone.note
        return out

    def on_tick(self, st: LabelState, typed: str, request: gr.Request) -> Any:
        return self.progress_md(st, annotator_of(request, typed)) if st.session_id is not None else gr.skip()
