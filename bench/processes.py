"""One process of N threads vs N processes of 1 thread (DDP, gloo) per method, interleaved;
prints JSON. This is the measurement `launch.processes: auto` rests on.

    python bench/processes.py [--methods sft,dpo,reward] [--steps 8] [--rounds 2]

Each run is the method's preset (the embedded model) headless with `max_steps` set, no eval,
no checkpoints; both settings train on the same global batch (`auto` splits it over the
processes). s/step is taken from metrics.jsonl times, excluding the first step.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402


def run(
    method: str, processes: str, steps: int, work: Path, extra: list[str] | None = None
) -> dict[str, Any]:
    from backends.core.runs.rundir import list_runs

    runs = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=work))
    sets = [
        f"launch.processes={processes}",
        f"train.max_steps={steps}",
        "train.eval_steps=null",
        "train.save_steps=100000",
        "data.eval_fraction=0",
        *(extra or []),
    ]
    cmd = [
        sys.executable,
        "launch.py",
        "--headless",
        "--runs-dir",
        str(runs),
        "--preset",
        f"presets/{method}.yaml",
    ]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    (r,) = list_runs(runs)
    rows = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
    times = [x["time"] for x in rows if x.get("split") == "train" and "loss" in x]
    st = r.read_status()
    return {
        "processes": (st.get("launch") or {}).get("processes", 1),
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "s_per_step": round((times[-1] - times[0]) / (len(times) - 1), 2) if len(times) > 1 else None,
        "losses": [round(x["loss"], 4) for x in rows if "loss" in x],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="sft,dpo,reward")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--multi",
        default="auto",
        help="the setting compared with 1 (auto splits the batch, but keeps 1 process for short runs: "
        "pass 2 with --multi-set for the per-device batch)",
    )
    ap.add_argument(
        "--multi-set",
        action="append",
        default=[],
        help="extra --set for the multi-process runs, e.g. train.per_device_train_batch_size=4 "
        "with --multi 2 for GRPO (the same global batch of 8 completions)",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    out: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_avg(),
        "steps": args.steps,
        "methods": {},
    }
    for method in args.methods.split(","):
        one, multi = [], []
        for _ in range(args.rounds):
            one.append(run(method, "1", args.steps, work))
            multi.append(run(method, args.multi, args.steps, work, args.multi_set))
            print(
                f"{method}: 1 -> {one[-1]['s_per_step']}, {args.multi} -> {multi[-1]['s_per_step']}",
                file=sys.stderr,
            )
        s1 = [r["s_per_step"] for r in one if r["ok"] and r["s_per_step"]]
        sm = [r["s_per_step"] for r in multi if r["ok"] and r["s_per_step"]]
        out["methods"][method] = {
            "one_process": one,
            "multi_process": multi,
            "speedup": round(statistics.mean(s1) / statistics.mean(sm), 3) if s1 and sm else None,
        }
    out["load_after"] = load_avg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
