"""Labeling sources: build a session's items from datasets or runs' samples, and show
answers as written. What one browser shows is in `studio.logic.label_view`. No gradio
import. (Typed paths go through `backends.core.access.paths`, the one path policy.)"""

from __future__ import annotations

import json
import re
from typing import Any

# Code blocks (closed, or open to the end of a truncated answer) and inline code spans.
_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.S)


def shown_as_written(text: str) -> str:
    """Markdown that shows `<` and `&` as typed: the Markdown component drops anything that
    looks like an HTML tag, so `<<Notes on rain>>` would show as `<`, and people would label
    an answer they cannot see. Code is left alone (entities are not decoded there)."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else p.replace("&", "&amp;").replace("<", "&lt;") for i, p in enumerate(parts))


def message_text(message: Any) -> str:
    """A prompt or response as markdown, as written: a conversation turn by turn."""
    if isinstance(message, list):
        return "\n\n".join(
            f"**{m.get('role', '?')}**: {shown_as_written(str(m.get('content', '')))}" for m in message
        )
    return shown_as_written(str(message))


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
