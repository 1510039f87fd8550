"""The embedded tasks' sampled reference answers, shipped beside this module.

`references.jsonl` is made once by `python -m backends.worker.references` (rejection sampling
from the embedded instruct model; its summary, `references.json`, says how). Each row holds a
train task's id and prompt, a sampled answer that meets every constraint (`reference`) and a
sampled answer of the same prompt that meets fewer (`rejected`). A row is used only when its
prompt equals the prompt the generator makes for that id today, so a changed generator falls
back to the filler templates instead of pairing an answer with another request.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from backends.core.tasks.tasks import Task

PATH = Path(__file__).with_name("references.jsonl")
SEED = 0  # the generator seed the shipped answers were sampled for (train split only)


@lru_cache(maxsize=1)
def _rows() -> dict[str, dict[str, Any]]:
    if not PATH.exists():
        return {}
    rows: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(PATH.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"task_id", "prompt", "reference", "rejected", "rejected_score"} - set(row)
        if missing:
            raise ValueError(f"{PATH} line {n}: missing {sorted(missing)}")
        rows[row["task_id"]] = row
    return rows


def sampled(task: Task) -> dict[str, Any] | None:
    """The sampled reference row for `task`, or None when there is none for it (or the shipped
    one was made for another prompt)."""
    row = _rows().get(task.task_id)
    if row is None or row["prompt"] != task.prompt:
        return None
    return row


def covered() -> int:
    """How many train task indices (seed 0) the shipped file was sampled over: indices below
    this without a row had no sampled answer that met every constraint."""
    summary = PATH.with_suffix(".json")
    if not summary.exists():
        return 0
    return int(json.loads(summary.read_text(encoding="utf-8"))["tasks"])
