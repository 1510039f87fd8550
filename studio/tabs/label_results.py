"""The Label tab's results: the team's progress per annotator, agreement (kappas for pairs,
Kendall's tau for rankings; complete items only when K >= 2), past labels, export, and one
click to train on them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import gradio as gr

from backends.core.data.formats import text_of
from backends.core.labels.agreement import (
    agreement_report,
    export_pairs,
    export_rankings,
    judge_agreement,
    ranking_pairs,
    ranking_report,
)
from backends.core.labels.ranking import format_order, shown_tiers
from backends.core.spec import registry
from backends.core.spec.config import ConfigError, read_preset
from backends.core.tasks.tasks import score_response
from studio.context import StudioContext
from studio.logic.forms import build_config
from studio.logic.label_order import rm_agreement_lines
from studio.logic.label_view import LabelState


def safe_name(name: str) -> str:
    """A session name as a file name: nothing that could leave the labels folder."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "session"


def _replaced(path: Path) -> str:
    return " (replacing this session's earlier export)" if path.exists() else ""


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
        if st.session_id is None:
            return []
        return [
            [a.annotator, a.labels, a.skips, time.strftime("%H:%M:%S", time.localtime(a.last))]
            for a in ctx.store.annotators(st.session_id)
        ]

    def checker_scores(sid: int) -> dict[int, list[float]]:
        return {
            it.id: [score_response(it.meta["constraints"], text_of(r)) for r in it.responses]
            for it in ctx.store.items(sid)
            if "constraints" in it.meta
        }

    def on_agreement(st: LabelState) -> str:
        if st.session_id is None:
            return "Pick a session first."
        only = st.k >= 2
        scope = f" (the items complete with {st.k} labels)" if only else ""
        if st.kind == "ranking":
            rankings = ctx.store.rankings(st.session_id, complete_only=only)
            rep = ranking_report(rankings, checker_scores(st.session_id))
            lines = [
                f"**{rep['rankings']} rankings**{scope} by {', '.join(rep['annotators']) or 'nobody'}; "
                f"{rep['items_with_several_rankings']} items ranked by several people."
            ]
            if rep["mean_tau"] is not None:
                lines.append(f"Mean Kendall's tau between annotators: {rep['mean_tau']:.2f}")
            lines += [f"Kendall's tau, {pair}: {tau:.2f}" for pair, tau in rep["tau_by_pair"].items()]
            if rep["judge_tau"] is not None:
                lines.append(f"Kendall's tau with the embedded checkers: {rep['judge_tau']:.2f}")
            return "\n\n".join(lines + rm_lines(st, [], rankings))
        votes = ctx.store.votes(st.session_id, complete_only=only)
        rep = agreement_report(votes)
        lines = [
            f"**{rep['votes']} votes**{scope} by {', '.join(rep['annotators']) or 'nobody'}; "
            f"{rep['items_with_several_votes']} pairs have several votes."
        ]
        if rep["mean_item_agreement"] is not None:
            lines.append(f"Mean per-pair agreement: {rep['mean_item_agreement']:.2f}")
        lines += [f"Cohen's kappa, {pair}: {k:.2f}" for pair, k in rep["cohen_kappa"].items()]
        if rep["fleiss_kappa"] is not None:
            lines.append(f"Fleiss' kappa: {rep['fleiss_kappa']:.2f}")
        if rep["left_share"] is not None:
            lines.append(
                f"Left side chosen in {100 * rep['left_share']:.0f}% of decisive votes (50% = no position bias)"
            )
        judged = judge_agreement(votes, checker_scores(st.session_id))
        if judged is not None:
            lines.append(f"Agreement with the embedded checkers: {100 * judged:.0f}% of decisive votes")
        return "\n\n".join(lines + rm_lines(st, votes, []))

    def rm_lines(st: LabelState, votes: list[Any], rankings: list[Any]) -> list[str]:
        """With the session ordered by a reward model: how often people agree with it."""
        ordered = ctx.store.ordering(st.session_id)
        return rm_agreement_lines(ordered, st.kind, votes, rankings) if ordered else []

    def on_past(st: LabelState) -> list[list[Any]]:
        if st.session_id is None:
            return []
        when = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731
        if st.kind == "ranking":
            return [
                [
                    when(r.created_at),
                    r.annotator,
                    r.item_id,
                    format_order(shown_tiers(r.shown, r.ranks)),
                    str(r.shown),
                    r.note,
                ]
                for r in reversed(ctx.store.rankings(st.session_id))
            ]
        return [
            [when(v.created_at), v.annotator, v.item_id, v.choice, f"response {v.left_index} left", v.note]
            for v in reversed(ctx.store.votes(st.session_id))
        ]

    def do_export(st: LabelState, pol: str) -> tuple[str, str | None]:
        """Write the labels under the data folder; returns the message and the pairs' file."""
        if st.session_id is None:
            return "Pick a session first.", None
        sid, only = st.session_id, st.k >= 2
        # the session's id in the name: two sessions whose names read alike (`.olga`, `olga`)
        # never share an export file; a session's own earlier export is replaced, and said so
        name = f"{safe_name(ctx.store.session(sid).name)}-{sid}"
        folder = ctx.data_dir / "labels"
        folder.mkdir(parents=True, exist_ok=True)
        items = ctx.store.items(sid)
        if st.kind == "ranking":
            rankings = ctx.store.rankings(sid, complete_only=only)
            if not rankings:
                return "No ranking to export yet" + (" on a complete item" if only else "") + ".", None
            ranked, pairs = folder / f"{name}-rankings.jsonl", folder / f"{name}-pairs.jsonl"
            again = _replaced(ranked)
            _write(ranked, export_rankings(items, rankings))
            rows = ranking_pairs(items, rankings)
            _write(pairs, rows)
            return (
                f"Exported {len(rankings)} rankings to `{ranked}` and their {len(rows)} pairs to `{pairs}`"
                f"{again}.",
                str(pairs),
            )
        rows = export_pairs(items, ctx.store.votes(sid, complete_only=only), pol)  # type: ignore[arg-type]
        if not rows:
            return f"No pair has a `{pol}` winner yet; label more first.", None
        out = folder / f"{name}-{pol}.jsonl"
        again = _replaced(out)
        _write(out, rows)
        return f"Exported {len(rows)} pairs to `{out}`{again}.", str(out)

    def on_export(st: LabelState, pol: str) -> str:
        return do_export(st, pol)[0]

    def on_train(st: LabelState, pol: str, preset: str) -> str:
        msg, path = do_export(st, pol)
        if path is None:
            return msg
        try:
            base = read_preset(ctx.preset_path(preset))
            values: dict[str, Any] = {
                "data.dataset": path,
                "data.eval_fraction": 0.0,
                "train.eval_steps": None,
            }
            ranked = st.kind == "ranking" and registry.setting(base.get("method", "sft"), "reward.weighting")
            if ranked:
                values["reward.weighting"] = "per_prompt"  # each ranking's pairs count as one prompt
            cfg, _ = build_config(base, values, f"Label tab: train with {preset}", ctx.policy)
        except ConfigError as e:
            return f"{msg}\n\n**Not started:** {e}"
        run = ctx.launcher.create_run(cfg)
        ctx.tick()
        weighted = " (pairs weighted per prompt)" if ranked else ""
        return f"{msg}\n\nStarted `{cfg.method}` run `{run.run_id}` on them{weighted}; watch it in the Monitor tab."

    timer.tick(on_team, state, team, api_visibility="private", show_progress="hidden")
    agree_btn.click(on_agreement, state, agreement, api_name="label_agreement")
    past_box.expand(on_past, state, past, api_visibility="private")
    agree_btn.click(on_past, state, past, api_visibility="private")

    def on_download(st: LabelState, pol: str) -> Any:
        """The file the export just wrote, offered for download (none: the button hides)."""
        if st.session_id is None:
            return gr.DownloadButton(visible=False)
        folder = ctx.data_dir / "labels"
        name = f"{safe_name(ctx.store.session(st.session_id).name)}-{st.session_id}"
        path = folder / (f"{name}-pairs.jsonl" if st.kind == "ranking" else f"{name}-{pol}.jsonl")
        return (
            gr.DownloadButton(value=str(path), visible=True)
            if path.exists()
            else gr.DownloadButton(visible=False)
        )

    export.click(on_export, [state, policy], export_msg, api_name="label_export").then(
        on_download, [state, policy], download, api_visibility="private"
    )
    train.click(on_train, [state, policy, base_preset], export_msg, api_name="label_train")


def _write(path: Any, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
