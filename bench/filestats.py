"""Full-file statistics of a 500k-row preference file (studio/logic/filestats.py); prints JSON.

    python bench/filestats.py [--rows 500000] [--rounds 3]

Writes the file once (the embedded tasks' pairs, repeated with a row number so most rows are
distinct, plus planted duplicates, empty answers and broken lines), then times `full_stats`
over it. Target (issue 12): <= 10 s, in the background after the Data tab's first page.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402


def write_file(path: Path, rows: int) -> dict[str, int]:
    from backends.core.tasks.taskgen import pair_rows

    base = pair_rows("train", 2000, seed=5)
    planted = {"duplicates": 0, "empty_chosen": 0, "broken": 0}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            r = dict(base[i % len(base)])
            if i % 1000 == 7:
                planted["duplicates"] += 1  # the same line as row 0's pair again
                r = dict(base[0], id=0)
            elif i % 5000 == 11:
                planted["empty_chosen"] += 1
                r = dict(r, id=i, chosen=[{"role": "assistant", "content": ""}])
            else:
                r["id"] = i
            if i % 100_000 == 13:
                planted["broken"] += 1
                f.write('{"prompt": [broken\n')
                continue
            f.write(json.dumps(r) + "\n")
    return planted


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from studio.logic.filestats import full_stats

    path = Path(tempfile.mkdtemp(prefix="bench-filestats-")) / "prefs.jsonl"
    planted = write_file(path, args.rows)
    load_before = load_avg()
    times, cpu, stats = [], [], None
    for _ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        stats = full_stats(path)
        times.append(round(time.perf_counter() - t0, 2))
        cpu.append(round(time.process_time() - c0, 2))
    assert stats is not None
    result = stats.as_dict()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "wall_s": times,
                "cpu_s": cpu,  # this process's CPU time: what a quiet core would take
                "best_wall_s": min(times),
                "target_s": 10,
                "planted": planted,
                "found": {
                    "rows": result["rows"],
                    "duplicate_rows": result["duplicate_rows"],
                    "problems": {k: v["count"] for k, v in result["problems"].items()},
                },
                "lengths": result["lengths"],
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_avg(),
            },
            indent=1,
        )
    )
    path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
