"""Opening a large preference file in the Data tab's logic: time to the first page and the
detected format, and to statistics from a 2,000-row sample; prints JSON.

    python bench/data_open.py [--rows 500000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_file(path: Path, rows: int) -> None:
    from backends.core.tasks.taskgen import pair_rows

    base = pair_rows("train", 400, seed=0)
    with open(path, "w") as f:
        for i in range(rows):
            r = base[i % len(base)]
            f.write(
                json.dumps(
                    {
                        "prompt": r["prompt"][0]["content"] + f" (#{i})",
                        "chosen": r["chosen"][0]["content"],
                        "rejected": r["rejected"][0]["content"],
                    }
                )
                + "\n"
            )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    args = ap.parse_args()
    from studio.logic.dataview import compute_stats, open_dataset

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.jsonl"
        t = time.time()
        write_file(path, args.rows)
        written = time.time() - t
        t0 = time.time()
        view = open_dataset(str(path), path)
        first = view.page(0, 20)
        t_first = time.time() - t0
        t1 = time.time()
        stats = compute_stats(view, None, None, 256)
        t_stats = time.time() - t1
        t2 = time.time()
        deep = view.page(args.rows - 20, 20)
        t_deep = time.time() - t2
        print(
            json.dumps(
                {
                    "rows": view.rows_total,
                    "file_mb": round(path.stat().st_size / 1e6, 1),
                    "format": view.fmt.name if view.fmt else None,
                    "first_page_and_format_s": round(t_first, 3),
                    "stats_from_2000_row_sample_s": round(t_stats, 3),
                    "last_page_s": round(t_deep, 4),
                    "first_rows": len(first),
                    "last_rows": len(deep),
                    "sampled": stats.sampled,
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
                    "write_s": round(written, 1),
                    "cores": os.cpu_count(),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
