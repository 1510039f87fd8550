"""Look inside a dataset before training on it, without loading it into memory.

JSON-lines files get a newline index (numpy over a memory map), so the first page and the
detected format of a 500k-row file take about a second and any page is one seek away;
statistics come from a seeded random sample of rows. Other files (csv, parquet, json, a
folder saved by `datasets`) go through `datasets`, which memory-maps Arrow. No torch.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.core.config import EMBEDDED_DATA
from backends.core.data import FORMAT_COLUMNS, DetectedFormat, detect_format
from backends.core.jsonl import JsonlIndex
from studio.logic.templates import ChatTemplate

TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion", "text", "messages")


@dataclass
class DataView:
    source: str
    rows_total: int
    columns: list[str]
    fmt: DetectedFormat | None
    _page: Any  # callable(start, n) -> list[dict]
    _sample: Any  # callable(n, seed) -> list[dict]
    notes: list[str] = field(default_factory=list)

    def page(self, start: int, n: int) -> list[dict[str, Any]]:
        return self._page(max(0, start), n)

    def sample(self, n: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
        return self._sample(n, seed)


def open_jsonl(path: Path) -> DataView:
    index = JsonlIndex(path)
    n = len(index.starts)

    def page(start: int, k: int) -> list[dict[str, Any]]:
        return index.read(list(range(start, min(n, start + k))))

    def sample(k: int, seed: int) -> list[dict[str, Any]]:
        idx = sorted(random.Random(seed).sample(range(n), min(k, n)))
        return index.read(idx)

    first = next((r for r in page(0, 20) if "__error__" not in r), {})
    return DataView(str(path), n, list(first), detect_format(list(first), first), page, sample)


def open_arrow(ds: Any, source: str) -> DataView:
    n = len(ds)

    def page(start: int, k: int) -> list[dict[str, Any]]:
        return ds.select(range(start, min(n, start + k))).to_list() if start < n else []

    def sample(k: int, seed: int) -> list[dict[str, Any]]:
        idx = sorted(random.Random(seed).sample(range(n), min(k, n)))
        return ds.select(idx).to_list()

    first = ds[0] if n else {}
    return DataView(
        source, n, list(ds.column_names), detect_format(list(ds.column_names), first), page, sample
    )


def open_dataset(source: str, path: Path | None, method: str = "sft") -> DataView:
    """`path` is the resolved local path (already checked against the served folders), or
    None for `builtin:tasks[:method]` and hub ids."""
    import datasets

    if source.startswith(EMBEDDED_DATA):
        from backends.core.data import builtin_rows

        method = source.split(":", 2)[2] if source.count(":") == 2 else method
        view = open_arrow(datasets.Dataset.from_list(builtin_rows(method, "train", 500, 0)), source)
        view.notes.append(
            f"500 generated rows shaped for `{method}` (builtin:tasks:<method> picks another shape)"
        )
        return view
    if path is None:
        try:
            ds = datasets.load_dataset(source, split="train", streaming=True)
            rows = list(ds.take(1000))
        except (OSError, ValueError) as e:
            raise ValueError(
                f"{source!r} is not a local file here and the hub did not provide it "
                f"({type(e).__name__}); without network, open a local file"
            ) from e
        view = open_arrow(datasets.Dataset.from_list(rows), source)
        view.notes.append("the first 1000 rows, streamed from the hub")
        return view
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
        return open_arrow(ds, str(path))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return open_jsonl(path)
    builders = {".json": "json", ".csv": "csv", ".parquet": "parquet"}
    if suffix not in builders:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet")
    return open_arrow(datasets.load_dataset(builders[suffix], data_files=str(path), split="train"), str(path))


def as_text(value: Any, template: ChatTemplate | None = None) -> str:
    """A cell as text: conversations through the chat template when one is given."""
    if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
        if template is not None:
            return template.render(value)
        return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in value)
    return "" if value is None else str(value)


def load_tokenizer(tokenizer_dir: Path | None) -> Any:
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


def compute_stats(view: DataView, tokenizer: Any, template: Any, max_length: int, n: int = 2000) -> Stats:
    rows = view.sample(n)
    cols = [c for c in TEXT_COLUMNS if c in view.columns]
    lengths: dict[str, list[int]] = {c: [] for c in cols}
    empty = dict.fromkeys(view.columns, 0)
    seen: set[str] = set()
    dup = over = 0
    broken: list[str] = []
    for i, row in enumerate(rows):
        for p in row_problems(row, view.fmt):
            if len(broken) < 20:
                broken.append(f"sampled row {i}: {p}")
        if "__error__" in row:
            continue  # unreadable: reported above, not counted as empty
        for c in view.columns:
            if row.get(c) in (None, "", []):
                empty[c] += 1
        for c in cols:
            text = as_text(row.get(c), template)
            lengths[c].append(len(tokenizer.encode(text).ids) if tokenizer else len(text.split()))
        last = {c: lengths[c][-1] for c in cols}
        # the longest sequence a trainer sees: prompt + the longest answer (or the whole text)
        total = last.get("prompt", 0) + max([last.get(c, 0) for c in ("chosen", "rejected", "completion")])
        total += last.get("text", 0) + last.get("messages", 0)
        over += total > max_length
        if "prompt" in row:
            key = hashlib.sha1(json.dumps(row["prompt"], sort_keys=True).encode()).hexdigest()
            dup += key in seen
            seen.add(key)
    return Stats(
        len(rows),
        lengths,
        "tokens" if tokenizer else "words",
        over,
        {k: v for k, v in empty.items() if v},
        dup,
        broken,
    )


def column_types(view: DataView) -> dict[str, str]:
    """A readable type per column, from the first rows: text, conversation, bool, number, list, ..."""
    out: dict[str, str] = {}
    for row in view.page(0, 20):
        for col in view.columns:
            if col in out or row.get(col) is None:
                continue
            v = row[col]
            if isinstance(v, list) and v and isinstance(v[0], dict) and "content" in v[0]:
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
    """Sampled rows with problems, over max_length, or with a duplicate prompt."""
    rows = view.sample(n)
    seen: set[str] = set()
    out = []
    for row in rows:
        if kind == "problems":
            keep = bool(row_problems(row, view.fmt))
        elif kind == "over max length":
            lens = {
                c: (
                    len(tokenizer.encode(as_text(row.get(c), template)).ids)
                    if tokenizer
                    else len(as_text(row.get(c), template).split())
                )
                for c in TEXT_COLUMNS
                if c in row
            }
            keep = (
                lens.get("prompt", 0)
                + max([lens.get(c, 0) for c in ("chosen", "rejected", "completion")])
                + lens.get("text", 0)
                + lens.get("messages", 0)
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
    """Rows whose text contains `query` (case-insensitive), among the first `scan` rows."""
    q = query.lower()
    out: list[dict[str, Any]] = []
    for start in range(0, min(view.rows_total, scan), 1000):
        for row in view.page(start, 1000):
            if q in json.dumps(row, ensure_ascii=False).lower():
                out.append(row)
                if len(out) >= limit:
                    return out
    return out
