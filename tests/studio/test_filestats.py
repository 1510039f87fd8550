"""Full-file statistics find what was planted in a preference file, on every row."""

from __future__ import annotations

import json
from pathlib import Path

from backends.core.tasks.taskgen import pair_rows
from studio.logic.filestats import full_stats


def test_every_row_is_counted_and_planted_problems_are_found_by_line(tmp_path: Path) -> None:
    rows = pair_rows("train", 40, seed=2)
    n = len(rows)
    path = tmp_path / "prefs.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines.append(lines[3])  # line n+1: an exact duplicate (its prompt repeats too)
    lines.append("{broken")  # n+2
    lines.append(json.dumps(dict(rows[5], chosen=rows[5]["rejected"])))  # n+3: chosen == rejected
    lines.append(json.dumps({"prompt": rows[6]["prompt"], "chosen": "", "rejected": "x"}))  # n+4
    lines.append(json.dumps({"prompt": "p", "chosen": "a"}))  # n+5: no `rejected`
    path.write_text("\n".join(lines) + "\n")
    seen: list[tuple[int, int]] = []
    stats = full_stats(path, progress=lambda done, total: seen.append((done, total)))
    d = stats.as_dict()
    assert d["rows"] == n + 4 and not d["partial"]
    assert d["duplicate_rows"] == 1
    assert d["duplicate_prompts"] == 3  # lines n+1, n+3 and n+4 reuse earlier prompts
    assert d["problems"]["not valid JSON"] == {"count": 1, "lines": [n + 2]}
    assert d["problems"]["chosen == rejected"]["lines"] == [n + 3]
    assert d["problems"]["empty `chosen`"]["lines"] == [n + 4]
    assert d["problems"]["missing `rejected`"]["lines"] == [n + 5]
    assert d["lengths"]["chosen"]["min"] == 0 and d["lengths"]["chosen"]["n"] == n + 4
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_a_stop_request_returns_a_partial_result(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    row = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
    path.write_text((row + "\n") * 70_000)
    stats = full_stats(path, should_stop=lambda: True)
    assert stats.partial and stats.rows == 65_535
