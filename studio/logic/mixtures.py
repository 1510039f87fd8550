"""Dataset mixtures: several datasets of one format, each with a row count or a fraction,
shuffled with a seed and saved as JSON lines with a `source` column naming each row's origin.
Rows are written as training reads them (TRL's columns), so parts of different layouts that
become one format (an Alpaca file and a Dolly file) mix."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from studio.logic.dataview import DataView


@dataclass(frozen=True)
class Part:
    source: str
    amount: float  # >= 1: a row count; < 1: a fraction of the dataset


def parse_spec(text: str) -> list[Part]:
    """Lines of `source: amount`; `#` starts a comment."""
    parts, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        source, sep, amount = line.rpartition(":")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not source.strip() or value <= 0:
            problems.append(f"line {n}: expected `path: rows` or `path: fraction`, got {line!r}")
            continue
        parts.append(Part(source.strip(), value))
    if problems:
        raise ValueError("; ".join(problems))
    if len(parts) < 2:
        raise ValueError("a mixture needs at least two datasets")
    return parts


def mix(views: list[tuple[Part, DataView]], out: Path, seed: int = 0) -> tuple[int, list[str]]:
    """Write the mixture; returns (rows written, notes). All parts must share one format."""
    formats = {(v.fmt.name if v.fmt else None) for _, v in views}
    if len(formats) != 1 or None in formats:
        found = ", ".join(f"{p.source}: {v.fmt.name if v.fmt else 'unknown'}" for p, v in views)
        raise ValueError(f"the datasets of a mixture must share one format; found {found}")
    rng = random.Random(seed)
    rows, notes = [], []
    for part, view in views:
        want = int(part.amount) if part.amount >= 1 else round(part.amount * view.rows_total)
        if want > view.rows_total:
            notes.append(f"{part.source}: asked for {want} rows, it has {view.rows_total}; took all")
            want = view.rows_total
        read = view.read(view.numbered_sample(want, seed=rng.randrange(1 << 30)))
        bad = [r["__error__"] for r in read if "__error__" in r]
        if bad:  # rows are written as training reads them; one that cannot be read is left out, said
            notes.append(f"{part.source}: left out {len(bad)} rows that cannot be read ({bad[0]})")
        rows += [{**row, "source": part.source} for row in read if "__error__" not in row]
    rng.shuffle(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows), notes
