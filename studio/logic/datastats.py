"""What the Data tab says about a dataset's rows: lengths, empties, duplicates, broken rows,
filters and search. Rows are measured as training reads them (`DataView.read`); problems
name the row of the file. No torch, no gradio."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from backends.core.data.formats import FORMAT_COLUMNS, DetectedFormat, methods_for
from backends.core.data.turns import is_conversation
from studio.logic.dataview import DataView
from studio.logic.templates import ChatTemplate

TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion", "text", "messages")
ANSWERS = ("chosen", "rejected", "completion")


def as_text(value: Any, template: ChatTemplate | None = None) -> str:
    """A cell as text: conversations through the chat template when one is given."""
    if is_conversation(value) and all("content" in m for m in value):
        if template is not None:
            return template.render(value)
        return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in value)
    return "" if value is None else str(value)


def load_tokenizer(tokenizer_dir: Any) -> Any:
    if tokenizer_dir is None or not (tokenizer_dir / "tokenizer.json").exists():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


@dataclass
class Stats:
    sampled: int
    lengths: dict[str, list[int]]
    unit: str
    over_max: int
    empty: dict[str, int]
    duplicate_prompts: int
    broken: list[str]


def row_problems(row: dict[str, Any], fmt: DetectedFormat | None) -> list[str]:
    """Problems of a row as read: the reason it could not be read, or an empty TRL column."""
    if "__error__" in row:
        return [row["__error__"]]
    if fmt is None:
        return []
    problems = []
    for col in FORMAT_COLUMNS[fmt.name]:
        value = row.get(col)
        if col == "label":
            if not isinstance(value, bool):
                problems.append(f"`label` is {value!r}, expected true or false")
        elif value is None or value == "" or value == []:
            problems.append(f"`{col}` is empty")
        elif not isinstance(value, str | list):
            problems.append(f"`{col}` is a {type(value).__name__}, expected text or a conversation")
    return problems


def _lengths(row: dict[str, Any], cols: list[str], tokenizer: Any, template: Any) -> dict[str, int]:
    out = {}
    for c in cols:
        text = as_text(row.get(c), template)
        out[c] = len(tokenizer.encode(text).ids) if tokenizer else len(text.split())
    return out


def _longest(lens: dict[str, int]) -> int:
    """The longest sequence a trainer sees: prompt + the longest answer (or the whole text)."""
    answer = max([lens.get(c, 0) for c in ANSWERS])
    return lens.get("prompt", 0) + answer + lens.get("text", 0) + lens.get("messages", 0)


def compute_stats(view: DataView, tokenizer: Any, template: Any, max_length: int, n: int = 2000) -> Stats:
    numbered = view.numbered_sample(n)
    read = view.read(numbered)
    cols = [c for c in TEXT_COLUMNS if c in view.read_columns]
    lengths: dict[str, list[int]] = {c: [] for c in cols}
    empty = dict.fromkeys(view.columns, 0)
    seen: set[str] = set()
    dup = over = 0
    broken: list[str] = []
    for (no, raw), row in zip(numbered, read, strict=True):
        for p in row_problems(row, view.fmt):
            broken.append(p if "__error__" in row else f"row {no}: {p}")
        if "__error__" in raw:
            continue  # unreadable: reported above, not counted as empty
        for c in view.columns:
            if raw.get(c) in (None, "", []):
                empty[c] += 1
        if "__error__" in row:
            continue
        lens = _lengths(row, cols, tokenizer, template)
        for c, v in lens.items():
            lengths[c].append(v)
        over += _longest(lens) > max_length
        if "prompt" in row:
            key = hashlib.sha1(json.dumps(row["prompt"], sort_keys=True).encode()).hexdigest()
            dup += key in seen
            seen.add(key)
    broken += view.mixed_kinds(read, numbered)
    return Stats(
        len(numbered),
        lengths,
        "tokens" if tokenizer else "words",
        over,
        {k: v for k, v in empty.items() if v},
        dup,
        broken[:20],
    )


def column_types(view: DataView) -> dict[str, str]:
    """A readable type per stored column, from the first rows: text, conversation, bool, number, ..."""
    out: dict[str, str] = {}
    for row in view.page(0, 20):
        for col in view.columns:
            if col in out or row.get(col) is None:
                continue
            v = row[col]
            if is_conversation(v):
                out[col] = "conversation"
            else:
                out[col] = {
                    str: "text",
                    bool: "bool",
                    int: "number",
                    float: "number",
                    list: "list",
                    dict: "object",
                }.get(type(v), type(v).__name__)
    return {c: out.get(c, "empty") for c in view.columns}


def filter_sample(
    view: DataView, kind: str, tokenizer: Any, template: Any, max_length: int, n: int = 2000, limit: int = 50
) -> list[dict[str, Any]]:
    """Sampled rows (as read) with problems, over max_length, or with a duplicate prompt."""
    seen: set[str] = set()
    out = []
    for row in view.read(view.numbered_sample(n)):
        if kind == "problems":
            keep = bool(row_problems(row, view.fmt))
        elif kind == "over max length":
            keep = "__error__" not in row and (
                _longest(_lengths(row, [c for c in TEXT_COLUMNS if c in row], tokenizer, template))
                > max_length
            )
        elif kind == "duplicate prompts":
            key = json.dumps(row.get("prompt"), sort_keys=True)
            keep = "prompt" in row and key in seen
            seen.add(key)
        else:
            keep = True
        if keep:
            out.append(row)
            if len(out) >= limit:
                break
    return out


def search(view: DataView, query: str, limit: int = 50, scan: int = 200_000) -> list[dict[str, Any]]:
    """Rows (as read) whose stored text contains `query` (case-insensitive), among the first `scan`."""
    q = query.lower()
    out: list[tuple[int, dict[str, Any]]] = []
    for start in range(0, min(view.rows_total, scan), 1000):
        for no, row in view.numbered_page(start, 1000):
            if q in json.dumps(row, ensure_ascii=False).lower():
                out.append((no, row))
                if len(out) >= limit:
                    return view.read(out)
    return view.read(out)


def describe(view: DataView, opened: float) -> list[str]:
    """The summary: rows, the layout and how each column is read, the format, what fits."""
    lines = [f"**{view.rows_total:,} rows** · opened in {opened:.1f} s"]
    if view.plan is not None:
        lay = view.plan.layout
        lines.append(f"**Read as** {view.plan.describe()}")
        fields = ", ".join(f"{f}{' (required)' if f in lay.required else ''}" for f in lay.fields)
        lines.append(
            f"_{lay.title} fields: {fields}. Read another column with the mapping, "
            f"e.g. `{{{lay.fields[0]}: your_column}}`._"
        )
    else:
        lines.append(f"**No layout fits:** {view.plan_error}")
    fmt = view.fmt.describe() if view.fmt else "**no known format**"
    lines.append(f"Trains as: {fmt} · Fits: {', '.join(methods_for(view.fmt)) or 'no method'}")
    types = ", ".join(f"`{c}` {t}" for c, t in column_types(view).items())
    lines.append(f"Columns as stored: {types}")
    return lines + [f"_{n}_" for n in view.notes]


def row_json(row: dict[str, Any] | None) -> str:
    return json.dumps(row, indent=2, ensure_ascii=False, default=str) if row is not None else ""


def histogram(lengths: dict[str, list[int]], unit: str, max_length: int) -> go.Figure:
    fig = go.Figure()
    for col, values in lengths.items():
        if values:
            fig.add_trace(go.Histogram(x=values, name=col, opacity=0.6, nbinsx=40))
    longest = max((max(v) for v in lengths.values() if v), default=0)
    if longest == 0:
        pass  # nothing measured (no layout fits yet): no line, no note
    elif longest * 2 >= max_length:
        fig.add_vline(x=max_length, line_dash="dash", annotation_text=f"max_length {max_length}")
    else:  # a line far to the right would squash the bars into a sliver: say it instead
        note = f"max_length {max_length} is far above the longest ({longest} {unit})"
        fig.add_annotation(text=note, xref="paper", yref="paper", x=1, y=1, showarrow=False, xanchor="right")
    fig.update_layout(
        barmode="overlay",
        height=320,
        template="plotly_white",
        margin=dict(l=40, r=20, t=40, b=40),
        title=f"length per column ({unit}, sampled rows)",
        xaxis_title=unit,
        yaxis_title="rows",
    )
    return fig
