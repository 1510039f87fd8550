"""What the Label tab's results show and do, as plain functions over the label store: the team
table, agreement (Cohen's / Fleiss' kappa for pairs, Kendall's tau for rankings; complete
items only when K >= 2), past labels, the export to JSONL and the run that trains on it.
No gradio import: studio/tabs/label_results.py lays them out and wires them."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from backends.core.labels.store import LabelStore
from backends.core.spec import registry
from backends.core.spec.config import ConfigError, read_preset
from backends.core.tasks.tasks import score_response
from studio.context import StudioContext
from studio.logic.forms import build_config
from studio.logic.label_order import rm_agreement_lines
from studio.logic.label_view import LabelState

PICK_FIRST = "Pick a session first."


def safe_name(name: str) -> str:
    """A session name as a file name: nothing that could leave the labels folder."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "session"


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def team_rows(store: LabelStore, st: LabelState) -> list[list[Any]]:
    if st.session_id is None:
        return []
    return [[a.annotator, a.labels, a.skips, _clock(a.last)] for a in store.annotators(st.session_id)]


def checker_scores(store: LabelStore, sid: int) -> dict[int, list[float]]:
    """The embedded checkers' score of every response of the items that carry constraints."""
    return {
        it.id: [score_response(it.meta["constraints"], text_of(r)) for r in it.responses]
        for it in store.items(sid)
        if "constraints" in it.meta
    }


def ranking_agreement_lines(rep: dict[str, Any], scope: str) -> list[str]:
    lines = [
        f"**{rep['rankings']} rankings**{scope} by {', '.join(rep['annotators']) or 'nobody'}; "
        f"{rep['items_with_several_rankings']} items ranked by several people."
    ]
    if rep["mean_tau"] is not None:
        lines.append(f"Mean Kendall's tau between annotators: {rep['mean_tau']:.2f}")
    lines += [f"Kendall's tau, {pair}: {tau:.2f}" for pair, tau in rep["tau_by_pair"].items()]
    if rep["judge_tau"] is not None:
        lines.append(f"Kendall's tau with the embedded checkers: {rep['judge_tau']:.2f}")
    return lines


def pair_agreement_lines(rep: dict[str, Any], scope: str, judged: float | None) -> list[str]:
    """Votes, per-pair agreement, the kappas, position bias and agreement with the checkers."""
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
    if judged is not None:
        lines.append(f"Agreement with the embedded checkers: {100 * judged:.0f}% of decisive votes")
    return lines


def agreement_markdown(store: LabelStore, st: LabelState) -> str:
    if st.session_id is None:
        return PICK_FIRST
    sid, only = st.session_id, st.k >= 2
    scope = f" (the items complete with {st.k} labels)" if only else ""
    ordered = store.ordering(sid)  # the session ordered by a reward model: agreement with it too
    if st.kind == "ranking":
        rankings = store.rankings(sid, complete_only=only)
        lines = ranking_agreement_lines(ranking_report(rankings, checker_scores(store, sid)), scope)
        rm = rm_agreement_lines(ordered, st.kind, [], rankings) if ordered else []
        return "\n\n".join(lines + rm)
    votes = store.votes(sid, complete_only=only)
    judged = judge_agreement(votes, checker_scores(store, sid))
    lines = pair_agreement_lines(agreement_report(votes), scope, judged)
    rm = rm_agreement_lines(ordered, st.kind, votes, []) if ordered else []
    return "\n\n".join(lines + rm)


def past_rows(store: LabelStore, st: LabelState) -> list[list[Any]]:
    if st.session_id is None:
        return []
    if st.kind == "ranking":
        return [
            [
                _clock(r.created_at),
                r.annotator,
                r.item_id,
                format_order(shown_tiers(r.shown, r.ranks)),
                str(r.shown),
                r.note,
            ]
            for r in reversed(store.rankings(st.session_id))
        ]
    return [
        [_clock(v.created_at), v.annotator, v.item_id, v.choice, f"response {v.left_index} left", v.note]
        for v in reversed(store.votes(st.session_id))
    ]


@dataclass(frozen=True)
class Export:
    message: str
    pairs: Path | None  # the file a training run reads (None: nothing was written)


def export_path(store: LabelStore, data_dir: Path, st: LabelState, policy: str) -> Path:
    """Where a session's export goes: its id in the name, so two sessions whose names read
    alike (`.olga`, `olga`) never share a file; a session's own earlier export is replaced."""
    assert st.session_id is not None
    name = f"{safe_name(store.session(st.session_id).name)}-{st.session_id}"
    return data_dir / "labels" / (f"{name}-pairs.jsonl" if st.kind == "ranking" else f"{name}-{policy}.jsonl")


def export_labels(store: LabelStore, data_dir: Path, st: LabelState, policy: str) -> Export:
    """Write the session's labels under the data folder as preference pairs (and, for a
    ranking session, the rankings themselves)."""
    if st.session_id is None:
        return Export(PICK_FIRST, None)
    sid, only = st.session_id, st.k >= 2
    out = export_path(store, data_dir, st, policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    again = " (replacing this session's earlier export)" if out.exists() else ""
    items = store.items(sid)
    if st.kind == "ranking":
        rankings = store.rankings(sid, complete_only=only)
        if not rankings:
            return Export("No ranking to export yet" + (" on a complete item" if only else "") + ".", None)
        ranked = out.with_name(out.name.replace("-pairs.jsonl", "-rankings.jsonl"))
        _write(ranked, export_rankings(items, rankings))
        rows = ranking_pairs(items, rankings)
        _write(out, rows)
        return Export(
            f"Exported {len(rankings)} rankings to `{ranked}` and their {len(rows)} pairs to `{out}`{again}.",
            out,
        )
    rows = export_pairs(items, store.votes(sid, complete_only=only), policy)  # type: ignore[arg-type]
    if not rows:
        return Export(f"No pair has a `{policy}` winner yet; label more first.", None)
    _write(out, rows)
    return Export(f"Exported {len(rows)} pairs to `{out}`{again}.", out)


def train_on_labels(ctx: StudioContext, st: LabelState, policy: str, preset: str) -> str:
    """Export, then start a run of `preset` on the export (checked by the studio's policy)."""
    done = export_labels(ctx.store, ctx.data_dir, st, policy)
    if done.pairs is None:
        return done.message
    try:
        base = read_preset(ctx.preset_path(preset))
        values: dict[str, Any] = {
            "data.dataset": str(done.pairs),
            "data.eval_fraction": 0.0,
            "train.eval_steps": None,
        }
        ranked = st.kind == "ranking" and registry.setting(base.get("method", "sft"), "reward.weighting")
        if ranked:
            values["reward.weighting"] = "per_prompt"  # each ranking's pairs count as one prompt
        cfg, _ = build_config(base, values, f"Label tab: train with {preset}", ctx.policy)
    except ConfigError as e:
        return f"{done.message}\n\n**Not started:** {e}"
    run = ctx.launcher.create_run(cfg)
    ctx.tick()
    weighted = " (pairs weighted per prompt)" if ranked else ""
    return f"{done.message}\n\nStarted `{cfg.method}` run `{run.run_id}` on them{weighted}; watch it in the Monitor tab."


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
