"""Statistics over every row of a JSON-lines dataset file, fast enough to run in the background
after the Data tab shows its first page (500k preference rows in a few seconds; see
bench/filestats.py). No gradio, no torch.

One pass, line by line with orjson: per text column the length distribution (characters),
exact duplicate rows (by a hash of the raw line), duplicate prompts, and problems (a broken
line, a missing or empty column, chosen == rejected), each with the first line numbers.
`progress(done_bytes, total_bytes)` is called every ~64k lines; `should_stop()` ends early
(the result says it is partial).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

EXAMPLES = 5  # line numbers kept per problem
TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion", "text", "messages")


@dataclass
class Lengths:
    values: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        if not self.values:
            return {}
        v = sorted(self.values)
        n = len(v)
        return {
            "n": n,
            "mean": round(sum(v) / n, 1),
            "p50": v[n // 2],
            "p95": v[min(n - 1, int(n * 0.95))],
            "max": v[-1],
            "min": v[0],
        }


@dataclass
class FileStats:
    path: str
    rows: int = 0
    bytes_read: int = 0
    partial: bool = False
    columns: dict[str, int] = field(default_factory=dict)  # column -> rows that have it
    lengths: dict[str, Lengths] = field(default_factory=dict)
    duplicate_rows: int = 0
    duplicate_prompts: int = 0
    problems: dict[str, list[int]] = field(default_factory=dict)  # kind -> first line numbers
    problem_counts: dict[str, int] = field(default_factory=dict)

    def problem(self, kind: str, line: int) -> None:
        self.problem_counts[kind] = self.problem_counts.get(kind, 0) + 1
        seen = self.problems.setdefault(kind, [])
        if len(seen) < EXAMPLES:
            seen.append(line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "partial": self.partial,
            "columns": self.columns,
            "lengths": {k: v.summary() for k, v in self.lengths.items()},
            "duplicate_rows": self.duplicate_rows,
            "duplicate_prompts": self.duplicate_prompts,
            "problems": {k: {"count": self.problem_counts[k], "lines": v} for k, v in self.problems.items()},
        }


def text_length(value: Any) -> int:
    """Characters of a text column: a string, or the contents of a list of chat messages."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(m.get("content") or "") if isinstance(m, dict) else len(str(m)) for m in value)
    return len(str(value))


def full_stats(
    path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FileStats:
    """Statistics over every row of a JSON-lines file (see the module docstring)."""
    stats = FileStats(str(path))
    total = os.path.getsize(path)
    seen_rows: set[int] = set()
    seen_prompts: set[int] = set()
    expected: tuple[str, ...] | None = None
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            stats.bytes_read += len(line)
            if number % 65536 == 0:
                if progress:
                    progress(stats.bytes_read, total)
                if should_stop and should_stop():
                    stats.partial = True
                    break
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.problem("not valid JSON", number)
                continue
            if not isinstance(row, dict):
                stats.problem("not a JSON object", number)
                continue
            stats.rows += 1
            key = hash(line.strip())
            if key in seen_rows:
                stats.duplicate_rows += 1
            else:
                seen_rows.add(key)
            if expected is None:  # the first row's text columns are the file's schema
                expected = tuple(c for c in TEXT_COLUMNS if c in row)
            for col in expected:
                if col not in row:
                    stats.problem(f"missing `{col}`", number)
            for col, value in row.items():
                stats.columns[col] = stats.columns.get(col, 0) + 1
                if col in TEXT_COLUMNS:
                    n = text_length(value) if value is not None else 0
                    stats.lengths.setdefault(col, Lengths()).values.append(n)
                    if n == 0:
                        stats.problem(f"empty `{col}`", number)
            if "prompt" in row:
                pk = hash(orjson.dumps(row["prompt"]))
                if pk in seen_prompts:
                    stats.duplicate_prompts += 1
                else:
                    seen_prompts.add(pk)
            if "chosen" in row and row.get("chosen") == row.get("rejected"):
                stats.problem("chosen == rejected", number)
    if progress:
        progress(stats.bytes_read, total)
    return stats
