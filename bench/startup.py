"""What start-up costs: the cold import of the training stack, one tiny run end to end, and
the tiny 5-stage InstructGPT pipeline, each as a user starts it; prints JSON.

    python bench/startup.py                # ~2 minutes on a quiet 2-core machine
    python bench/startup.py --rounds 3

`import_s` is `python -c "import torch, transformers, trl, peft"` in a fresh process (what
every stage's worker pays before its first step); `tiny_sft_s` and `tiny_pipeline_s` are
the wall times of `launch.py --headless` from the command's start to its exit, so
`per_stage_s` (the pipeline's time over its stages) against `import_s` says how much of a
stage is start-up. Rounds interleave the three; the JSON carries the machine and the load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import load_avg, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "presets/tiny/instructgpt.yaml"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def headless(preset: str) -> float:
    with tempfile.TemporaryDirectory() as runs:
        return timed([sys.executable, "launch.py", "--headless", "--runs-dir", runs, "--preset", preset])


def stages(preset: str) -> int:
    import yaml

    return len(yaml.safe_load((ROOT / preset).read_text())["stages"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    headless("presets/tiny/sft.yaml")  # builds the tiny model once, outside the timings
    before = load_avg()
    rows: dict[str, list[float]] = {"import_s": [], "tiny_sft_s": [], "tiny_pipeline_s": []}
    for _ in range(a.rounds):
        rows["import_s"].append(timed([sys.executable, "-c", "import torch, transformers, trl, peft"]))
        rows["tiny_sft_s"].append(headless("presets/tiny/sft.yaml"))
        rows["tiny_pipeline_s"].append(headless(PIPELINE))
    med = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    n = stages(PIPELINE)
    out = {
        "bench": "startup",
        "machine": machine(),
        "load_before": before,
        "load_after": load_avg(),
        "rounds": {k: [round(x, 2) for x in v] for k, v in rows.items()},
        "median": med,
        "pipeline_stages": n,
        "per_stage_s": round(med["tiny_pipeline_s"] / n, 2),
        "pipeline_in_tiny_runs": round(med["tiny_pipeline_s"] / med["tiny_sft_s"], 2),
        "per_stage_over_import": round(med["tiny_pipeline_s"] / n / med["import_s"], 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
