"""Checks of a local dataset file before a run exists, for what the column check alone lets
through: a `.json` that is not JSON, text that is not UTF-8, CSV rows with more or fewer
fields than the header, rows of another format mixed into a file, and format columns whose
values are numbers where text or a conversation is needed. Each problem names the file, the
line or row, and what was expected. Used by `backends/core/data/formats.py`'s preflight. No torch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.core.spec.registry import FORMAT_COLUMNS

_FORMAT_KEYS = {c for cols in FORMAT_COLUMNS.values() for c in cols}
MAX_PROBLEMS = 5


class DataCheckError(ValueError):
    """What is wrong with a dataset file, by line or row."""


def value_problem(column: str, value: Any) -> str | None:
    """Why `value` cannot be the `column` of a TRL format row, or None."""
    if column not in _FORMAT_KEYS or value is None:
        return None  # a missing value is reported as a missing column by the format check
    if column == "label":
        return None if isinstance(value, bool) else f"`label` is {type(value).__name__}; expected true/false"
    if isinstance(value, str):
        return None
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return None  # a conversation; its turns' shape is the layout's to check (backends/core/data/turns.py)
    return (
        f"`{column}` is {type(value).__name__} ({str(value)[:40]}); expected text or a conversation "
        "(a list of turns)"
    )


class RowChecker:
    """Fed the rows of a file in order: every row must hold the first row's format columns
    (one file, one format) with values of the right type."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.first: set[str] | None = None
        self.n = 0
        self.problems: list[str] = []

    def __call__(self, row: dict[str, Any]) -> None:
        self.n += 1
        if len(self.problems) >= MAX_PROBLEMS:
            return
        keys = set(row) & _FORMAT_KEYS
        if self.first is None:
            self.first = keys
        elif keys != self.first:
            self.problems.append(
                f"row {self.n} has the columns {sorted(keys)} where row 1 has {sorted(self.first)} "
                "(one file holds one format)"
            )
            return
        for col in sorted(keys):
            why = value_problem(col, row[col])
            if why:
                self.problems.append(f"row {self.n}: {why}")

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataCheckError(f"{self.source}: " + "; ".join(self.problems))


def peek_json(path: Path, max_bytes: int = 50_000_000) -> tuple[list[str], dict[str, Any] | None]:
    """Columns and first row of a `.json` dataset: an array of objects, an object of columns,
    or one object (one row), as `datasets` reads them."""
    if path.stat().st_size > max_bytes:
        return [], None  # too big to parse here; the worker's loader reports what it finds
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DataCheckError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataCheckError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); a .json dataset "
            "is one JSON array of objects; for one object per line name the file .jsonl"
        ) from None
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        rows = [dict(zip(data, vals, strict=False)) for vals in zip(*data.values(), strict=False)]
    elif isinstance(data, dict):
        rows = [data]
    elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
        rows = data
    else:
        raise DataCheckError(f"{path}: expected a JSON array of objects, got {type(data).__name__}")
    if not rows:
        raise DataCheckError(f"{path} has no rows")
    check = RowChecker(str(path))
    for r in rows:
        check(r)
    check.raise_if_any()
    return list(rows[0]), rows[0]


def peek_csv(path: Path, max_rows: int = 200_000) -> tuple[list[str], dict[str, Any] | None]:
    """Header and first row of a CSV file; rows whose field count differs from the header's
    are named by line (the worker's loader would fail on them)."""
    problems: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise DataCheckError(f"{path} has no header row")
            first: dict[str, Any] | None = None
            for n, fields in enumerate(reader, 2):
                if n > max_rows or len(problems) >= MAX_PROBLEMS:
                    break
                if not fields:
                    continue
                if len(fields) != len(header):
                    problems.append(
                        f"line {reader.line_num} has {len(fields)} fields, the header {len(header)}"
                    )
                elif first is None:
                    first = dict(zip(header, fields, strict=True))
    except UnicodeDecodeError as e:
        raise DataCheckError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise DataCheckError(f"{path} is not valid CSV ({e})") from None
    if problems:
        raise DataCheckError(f"{path}: " + "; ".join(problems))
    return header, first


def parquet_columns(path: Path) -> tuple[list[str], Callable[[str], str | None]]:
    """Column names of a parquet file and a check of a column's type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataCheckError(f"{path} is not a readable parquet file ({e})") from None

    def type_problem(column: str) -> str | None:
        if column not in _FORMAT_KEYS or column not in schema.names:
            return None
        t = schema.field(column).type
        ok = (
            pa.types.is_boolean(t)
            if column == "label"
            else (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_list(t))
        )
        return None if ok else f"{path}: column `{column}` has type {t}; expected text or a conversation"

    return list(schema.names), type_problem
