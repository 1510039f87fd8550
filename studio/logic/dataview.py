"""Look inside a dataset before training on it, without loading it into memory.

JSON-lines files get a newline index (numpy over a memory map), so the first page and the
detected format of a 500k-row file take about a second and any page is one seek away;
statistics come from a seeded random sample of rows. Other files (csv, parquet, json, a
folder saved by `datasets`) go through `datasets`, which memory-maps Arrow. No torch.

Rows are read through the same plan as the worker's (`backends/core/data/dataplan.py`): the view
knows the layout it found (or why none fits), and `read` gives each row as training sees it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.core.data.dataplan import DataFormatError, Plan, kinds, mixed_kinds, resolve_plan
from backends.core.data.formats import DetectedFormat, detect_format
from backends.core.data.jsonl import JsonlIndex
from backends.core.data.turns import RowError
from backends.core.spec.config import EMBEDDED_DATA

Numbered = list[tuple[int, dict[str, Any]]]  # (row number from 1, row as stored)


@dataclass
class DataView:
    source: str
    rows_total: int
    columns: list[str]  # as stored
    _page: Callable[[int, int], list[dict[str, Any]]]
    _sample: Callable[[int, int], Numbered]
    plan: Plan | None = None
    plan_error: str = ""  # why no layout fits, naming the nearest
    fmt: DetectedFormat | None = None  # TRL format of the rows as read
    read_columns: list[str] = field(default_factory=list)  # columns of the rows as read
    notes: list[str] = field(default_factory=list)

    def page(self, start: int, n: int) -> list[dict[str, Any]]:
        return self._page(max(0, start), n)

    def numbered_page(self, start: int, n: int) -> Numbered:
        start = max(0, start)
        return list(enumerate(self._page(start, n), start + 1))

    def sample(self, n: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
        return [row for _, row in self._sample(n, seed)]

    def numbered_sample(self, n: int = 2000, seed: int = 0) -> Numbered:
        return self._sample(n, seed)

    def read(self, numbered: Numbered) -> list[dict[str, Any]]:
        """Each row as training reads it, or `{"__error__": why}` naming the row and column."""
        out: list[dict[str, Any]] = []
        for no, row in numbered:
            if "__error__" in row or self.plan is None:
                out.append(row)
                continue
            try:
                out.append(self.plan.convert(row, no))
            except RowError as e:
                out.append({"__error__": str(e)})
        return out

    def mixed_kinds(self, read: list[dict[str, Any]], numbered: Numbered) -> list[str]:
        """Rows with conversations where the first row has text, or the reverse (the worker
        refuses them)."""
        first: tuple[int, dict[str, str]] | None = None
        problems = []
        for (no, _), row in zip(numbered, read, strict=True):
            if "__error__" in row or self.plan is None:
                continue
            row_kinds = kinds(row)
            if first is None:
                first = (no, row_kinds)
            elif any(first[1].get(c, k) != k for c, k in row_kinds.items()):
                problems.append(mixed_kinds(no, row_kinds, first[0], first[1], self.plan.layout.name))
        return problems


def with_plan(view: DataView, layout: str = "auto", mapping: dict[str, str] | None = None) -> DataView:
    """Resolve how the view's rows are read (its first 50), and the TRL format they become."""
    head = [r for r in view.page(0, 50) if "__error__" not in r]
    try:
        view.plan = resolve_plan(view.columns, head, layout, mapping, source=view.source)
    except DataFormatError as e:
        view.plan, view.plan_error = None, str(e)
        view.fmt = detect_format(view.columns, head[0] if head else None)
        view.read_columns = list(view.columns)
        return view
    first = next((r for r in view.read(view.numbered_page(0, 50)) if "__error__" not in r), None)
    view.read_columns = list(first) if first else []
    view.fmt = detect_format(view.read_columns, first) if first else None
    return view


def open_jsonl(path: Path) -> DataView:
    index = JsonlIndex(path)
    n = len(index.starts)

    def page(start: int, k: int) -> list[dict[str, Any]]:
        return index.read(list(range(start, min(n, start + k))))

    def sample(k: int, seed: int) -> Numbered:
        idx = sorted(random.Random(seed).sample(range(n), min(k, n)))
        return list(zip([i + 1 for i in idx], index.read(idx), strict=True))

    first = next((r for r in page(0, 20) if "__error__" not in r), {})
    return DataView(str(path), n, list(first), page, sample)


def open_arrow(ds: Any, source: str) -> DataView:
    n = len(ds)

    def page(start: int, k: int) -> list[dict[str, Any]]:
        return ds.select(range(start, min(n, start + k))).to_list() if start < n else []

    def sample(k: int, seed: int) -> Numbered:
        idx = sorted(random.Random(seed).sample(range(n), min(k, n)))
        return list(zip([i + 1 for i in idx], ds.select(idx).to_list(), strict=True))

    return DataView(source, n, list(ds.column_names), page, sample)


def open_dataset(
    source: str,
    path: Path | None,
    method: str = "sft",
    layout: str = "auto",
    mapping: dict[str, str] | None = None,
) -> DataView:
    """`path` is the resolved local path (already checked against the served folders), or
    None for `builtin:tasks[:method]` and hub ids. `layout` and `mapping` are `data.layout`
    and `data.columns`."""
    return with_plan(_open(source, path, method), layout, mapping)


def _open(source: str, path: Path | None, method: str) -> DataView:
    import datasets

    if source.startswith(EMBEDDED_DATA):
        from backends.core.data.formats import builtin_rows

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
