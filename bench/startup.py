"""What start-up costs: the cold import of the training stack, one tiny run end to end, and
the tiny 5-stage InstructGPT pipeline cold (each stage imports again) and warm (its stages
fork from the fork server the headless command starts), each as a user starts it; prints JSON.

    python bench/startup.py                # ~2 minutes on a quiet 2-core machine
    python bench/startup.py --rounds 3
    python bench/startup.py --per-method   # each method's tiny preset, cold and forked (~4 min)

`import_s` is `python -c "import torch, transformers, trl, peft"` in a fresh process (what
every stage's worker pays before its first step); `tiny_sft_s` and `tiny_pipeline_s` are
the wall times of `launch.py --headless` from the command's start to its exit, so
`per_stage_s` (the pipeline's time over its stages) against `import_s` says how much of a
stage is start-up. Rounds interleave the three; the JSON carries the machine and the load.

`--per-method` runs every method's tiny preset headless twice per round: cold (the worker
imports the training stack) and forked (a fork server is up for the runs folder, as while the
studio runs), and gives the wall time of each and what forking saved.
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


METHODS = ("sft", "reward", "dpo", "simpo", "orpo", "kto", "grpo", "rloo", "ppo", "sample", "eval")


def per_method(rounds: int) -> dict:
    """Each tiny preset cold and forked, interleaved; the forked runs share one fork server."""
    sys.path.insert(0, str(ROOT))
    from backends.core.runs import forkserver

    runs = Path(tempfile.mkdtemp(prefix="startup-forked-"))
    env = {k: v for k, v in os.environ.items() if k != "ALIGNMENT_STUDIO_FORKSERVER"}
    server = forkserver.start_server(runs, sys.executable, runs / "forkserver.log")
    try:
        if not forkserver.wait_until_up(runs, timeout=120):
            raise SystemExit(f"the fork server did not start: {runs / 'forkserver.log'}")
        out: dict[str, dict[str, list[float]]] = {m: {"cold_s": [], "forked_s": []} for m in METHODS}
        for _ in range(rounds):
            for m in METHODS:
                preset = f"presets/tiny/{m}.yaml"
                out[m]["cold_s"].append(headless(preset, cold=True))
                cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs), "--preset", preset]
                out[m]["forked_s"].append(timed(cmd, env))
    finally:
        forkserver.stop_server(server)
    logs = [p.read_text() for p in runs.glob("*/stdout.log")]
    table = {
        m: {
            "cold_s": round(statistics.median(v["cold_s"]), 2),
            "forked_s": round(statistics.median(v["forked_s"]), 2),
            "saved_s": round(statistics.median(v["cold_s"]) - statistics.median(v["forked_s"]), 2),
        }
        for m, v in out.items()
    }
    forked = sum("forked from the warm fork server" in t for t in logs)
    return {"rounds": out, "median": table, "runs_forked": f"{forked} of {len(logs)}"}


def stages(preset: str) -> int:
    import yaml

    return len(yaml.safe_load((ROOT / preset).read_text())["stages"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--per-method", action="store_true", help="each method's tiny preset, cold and forked")
    a = p.parse_args()
    headless("presets/tiny/sft.yaml")  # builds the tiny model once, outside the timings
    before = load_avg()
    if a.per_method:
        result = per_method(a.rounds)
        print(
            json.dumps(
                {
                    "bench": "startup-per-method",
                    "machine": machine(),
                    "load_before": before,
                    "load_after": load_avg(),
                    **result,
                },
                indent=2,
            )
        )
        return
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
