"""Seconds per step, tokens/s and peak memory of a preset's run on this machine; prints JSON.

    python bench/train_speed.py presets/sft.yaml --steps 10 [--set train.bf16=false ...]

Runs the preset headless (a real worker process) with max_steps overridden, then reads the
run's metrics. The first step is excluded from the rate (it includes warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict[str, object]:
    cpu = "?"
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from backends.worker.runtime import cpu_supports_bf16

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_bf16": cpu_supports_bf16(),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()

    from backends.core.pipelines.headless import run_headless
    from backends.core.runs.rundir import list_runs
    from backends.core.spec.config import load_preset

    sets = [f"train.max_steps={args.steps}", "train.eval_steps=null", "train.save_steps=100000", *args.sets]
    cfg = load_preset(args.preset, sets)
    runs = tempfile.mkdtemp(prefix="bench-runs-")
    t0 = time.time()
    rc = run_headless(cfg, runs)
    wall = time.time() - t0
    (run,) = list_runs(runs)
    rows = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    train = [r for r in rows if r.get("split") == "train"]
    st = run.read_status()
    span = train[-1]["time"] - train[0]["time"] if len(train) > 1 else float("nan")
    tokens = [r["tokens_per_sec"] for r in train[1:] if "tokens_per_sec" in r]
    result = {
        "preset": args.preset,
        "overrides": sets,
        "ok": rc == 0,
        "steps": len(train),
        "s_per_step": span / (len(train) - 1) if len(train) > 1 else None,
        "tokens_per_s": sum(tokens) / len(tokens) if tokens else None,
        "startup_s": (st.get("train_started_at") or t0) - t0,
        "wall_s": wall,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
        "runtime": st.get("runtime"),
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
