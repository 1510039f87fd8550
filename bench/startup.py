"""What start-up costs: the cold import of the training stack, one tiny run end to end, and
the tiny 5-stage InstructGPT pipeline cold (each stage imports again) and warm (its stages
fork from the fork server the headless command starts), each as a user starts it; prints JSON.

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
import os
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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def headless(preset: str, cold: bool = False) -> float:
    """`cold`: every stage imports again ($ALIGNMENT_STUDIO_COLD: no fork server), as before
    the warm worker; else a pipeline's stages fork from the server the headless command runs."""
    env = {k: v for k, v in os.environ.items() if k != "ALIGNMENT_STUDIO_FORKSERVER"}
    if cold:
        env["ALIGNMENT_STUDIO_COLD"] = "1"
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", runs, "--preset", preset]
        return timed(cmd, env)


def stages(preset: str) -> int:
    import yaml

    return len(yaml.safe_load((ROOT / preset).read_text())["stages"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    headless("presets/tiny/sft.yaml")  # builds the tiny model once, outside the timings
    before = load_avg()
    rows: dict[str, list[float]] = {
        "import_s": [],
        "tiny_sft_s": [],
        "tiny_pipeline_cold_s": [],
        "tiny_pipeline_s": [],
    }
    for _ in range(a.rounds):
        rows["import_s"].append(timed([sys.executable, "-c", "import torch, transformers, trl, peft"]))
        rows["tiny_sft_s"].append(headless("presets/tiny/sft.yaml"))
        rows["tiny_pipeline_cold_s"].append(headless(PIPELINE, cold=True))
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
        "per_stage_cold_s": round(med["tiny_pipeline_cold_s"] / n, 2),
        # what a stage after the first adds to the pipeline beyond one tiny run, warm and cold,
        # over a cold import (the target: at most 0.5)
        "further_stage_s": round((med["tiny_pipeline_s"] - med["tiny_sft_s"]) / (n - 1), 2),
        "further_stage_cold_s": round((med["tiny_pipeline_cold_s"] - med["tiny_sft_s"]) / (n - 1), 2),
        "further_stage_over_import": round(
            (med["tiny_pipeline_s"] - med["tiny_sft_s"]) / (n - 1) / med["import_s"], 2
        ),
        # what each stage after the first saves by forking: the target is at least half
        # a cold import
        "saved_per_stage_s": round((med["tiny_pipeline_cold_s"] - med["tiny_pipeline_s"]) / (n - 1), 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
