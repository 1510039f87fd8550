"""Labeling logic: build sessions from datasets or a run's samples, per-browser state, what
to show next. No gradio import. (Typed paths go through `backends.core.paths`, the one
path policy.)"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from backends.core.store import Item, LabelStore


def _text(message: Any) -> str:
    if isinstance(message, list):
        return "\n\n".join(f"**{m.get('role', '?')}**: {m.get('content', '')}" for m in message)
    return str(message)


def items_from_rows(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Preference rows (chosen / rejected), rows with a `responses` list, or a run's samples
    (one row per completion, grouped by prompt) -> labeling items."""
    if not rows:
        raise ValueError(f"{source} has no rows")
    first = rows[0]
    if {"chosen", "rejected"} <= set(first):
        return [
            {
                "prompt": r.get("prompt", ""),
                "responses": [r["chosen"], r["rejected"]],
                "meta": {k: r[k] for k in ("constraints",) if k in r},
            }
            for r in rows
        ]
    if "responses" in first:
        return [{"prompt": r["prompt"], "responses": r["responses"], "meta": {}} for r in rows]
    if {"prompt", "completion"} <= set(first):
        groups: dict[str, dict[str, Any]] = {}
        for r in rows:
            key = json.dumps(r["prompt"], sort_keys=True)
            meta = {k: r[k] for k in ("constraints",) if k in r}
            g = groups.setdefault(key, {"prompt": r["prompt"], "responses": [], "meta": meta})
            g["responses"].append(r["completion"])
        items = [g for g in groups.values() if len(g["responses"]) >= 2]
        if not items:
            raise ValueError(f"{source}: no prompt has two or more completions to compare")
        return items
    raise ValueError(
        f"{source}: columns {sorted(first)} fit no labeling source; need chosen + rejected, "
        "a responses list, or prompt + completion rows (a run's samples.jsonl)"
    )


@dataclass
class LabelState:
    """What one browser is labeling right now."""

    session_id: int | None = None
    item_id: int | None = None
    left: int = 0
    right: int = 1
    skipped: set[int] = field(default_factory=set)
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))

    def advance(self, store: LabelStore, annotator: str) -> Item | None:
        """Pick the next item and a random left/right order (recorded with the vote)."""
        if self.session_id is None:
            return None
        item = store.next_item(self.session_id, annotator, self.skipped)
        if item is None:
            self.item_id = None
            return None
        rng = random.Random(f"{self.seed}:{item.id}:{annotator}")
        self.item_id = item.id
        self.left, self.right = store.pair_order(item, rng)
        return item


def show(item: Item | None, state: LabelState) -> tuple[str, str, str]:
    if item is None:
        return "**Nothing left to label in this session.** Export below, or pick another session.", "", ""
    return _text(item.prompt), _text(item.responses[state.left]), _text(item.responses[state.right])


def progress_line(store: LabelStore, state: LabelState, annotator: str) -> str:
    if state.session_id is None:
        return "Pick or create a labeling session."
    total = len(store.items(state.session_id))
    mine = len({v.item_id for v in store.votes(state.session_id, annotator)})
    return f"**{annotator}**: {mine} of {total} labeled" + (
        f", {len(state.skipped)} skipped" if state.skipped else ""
    )
