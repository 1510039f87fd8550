"""The one JSON-lines reader: run files (metrics, samples, judgments) and user datasets.

One rule for every caller: a line is a JSON object; blank lines are skipped; a broken line
is named by its number (`line 7 is not valid JSON (...)`), never dropped silently. Files
that a worker is still appending to are read with `complete_only=True` (or a `JsonlTail`):
a last line without its newline is being written and waits for the next read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """Lines of a JSON-lines file that are not JSON objects, each named by number."""

    def __init__(self, path: Path | str, problems: list[str], more: int = 0) -> None:
        self.path, self.problems = Path(path), problems
        tail = f" (and {more} more)" if more else ""
        super().__init__(f"{path}: " + "; ".join(problems) + tail)


def parse_line(raw: bytes | str, line_no: int) -> dict[str, Any]:
    """One line as a dict, or ValueError naming the line and what is wrong with it."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise ValueError(f"line {line_no} is not UTF-8") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"line {line_no} is not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"line {line_no} is not a JSON object (got {type(row).__name__})")
    return row


def iter_lines(
    path: Path, *, complete_only: bool = False, start: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset after the line, raw line) for each line from byte `start`,
    blank ones included; numbers count from that point. With `complete_only` an unterminated
    last line is left out."""
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        for n, raw in enumerate(f, 1):
            if complete_only and not raw.endswith(b"\n"):
                return
            offset += len(raw)
            yield n, offset, raw


def read_jsonl(
    path: str | Path, *, limit: int | None = None, complete_only: bool = False, max_errors: int = 5
) -> list[dict[str, Any]]:
    """Every row (or the first `limit`); raise JsonlError naming the broken lines."""
    rows: list[dict[str, Any]] = []
    check_jsonl(path, limit=limit, complete_only=complete_only, max_errors=max_errors, keep=rows.append)
    return rows


def check_jsonl(
    path: str | Path,
    *,
    limit: int | None = None,
    complete_only: bool = False,
    max_errors: int = 5,
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any] | None:
    """Parse the first `limit` rows without keeping them (unless `keep` is given); return the
    first row, or raise JsonlError naming every broken line seen (up to `max_errors`)."""
    first: dict[str, Any] | None = None
    count = 0
    problems: list[str] = []
    more = 0
    for n, _, raw in iter_lines(Path(path), complete_only=complete_only):
        if not raw.strip():
            continue
        try:
            row = parse_line(raw, n)
        except ValueError as e:
            if len(problems) < max_errors:
                problems.append(str(e))
            else:
                more += 1
            continue
        first = row if first is None else first
        if keep is not None:
            keep(row)
        count += 1
        if limit is not None and count >= limit:
            break
    if problems:
        raise JsonlError(path, problems, more)
    return first


@dataclass
class JsonlTail:
    """New rows of a file that another process appends to, read by byte offset: each `poll`
    reads only what was added. A broken complete line is kept in `errors` (by number) and
    the tail goes on; an unterminated last line waits for its newline."""

    path: Path
    offset: int = 0
    lines: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def poll(self) -> int:
        """Read what was appended since the last call; return the number of new rows."""
        if not self.path.exists():
            return 0
        new = 0
        base = self.lines
        for n, offset, raw in iter_lines(self.path, complete_only=True, start=self.offset):
            self.offset, self.lines = offset, base + n
            if not raw.strip():
                continue
            try:
                self.rows.append(parse_line(raw, base + n))
                new += 1
            except ValueError as e:
                self.errors.append(str(e))
        return new


class JsonlIndex:
    """Random access to the rows of a big JSON-lines file: a newline index built with numpy
    over a memory map (a 500k-row file in about a second), then one seek per row. A broken
    row comes back as {"__error__": "line N ..."} so a page still shows the rest."""

    CHUNK = 32 << 20  # bytes scanned at a time: keeps memory flat on huge files

    def __init__(self, path: Path) -> None:
        import mmap

        import numpy as np

        self.path = path
        size = path.stat().st_size
        if size == 0:
            self.starts = np.zeros(0, dtype=np.int64)
            return
        parts = [np.zeros(1, dtype=np.int64)]
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            buf = np.frombuffer(mm, dtype=np.uint8)
            for off in range(0, size, self.CHUNK):
                parts.append(np.flatnonzero(buf[off : off + self.CHUNK] == 10).astype(np.int64) + off + 1)
            del buf
        starts = np.concatenate(parts)
        self.starts = starts[starts < size]

    def __len__(self) -> int:
        return len(self.starts)

    def read(self, idx: list[int]) -> list[dict[str, Any]]:
        out = []
        with open(self.path, "rb") as f:
            for i in idx:
                f.seek(int(self.starts[i]))
                line = f.readline()
                if not line.strip():
                    continue
                try:
                    out.append(parse_line(line, i + 1))
                except ValueError as e:
                    out.append({"__error__": str(e)})
        return out
