"""Where one training step's time goes: torch.profiler over a few steps of a preset's run.

    python bench/profile_step.py presets/sft.yaml [--steps 4] [--set train.bf16=false ...]

Runs the method exactly as the worker does (same trainer, same arguments) in this process,
profiles steps 2..N (step 1 is warm-up) and prints JSON: seconds per step, the top operators
by self CPU time, and their share of the profiled time, plus the machine and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    load_before = load_avg()

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    from backends.core.runs.rundir import RunDir
    from backends.core.spec import registry
    from backends.core.spec.config import load_preset
    from backends.worker import trainers
    from backends.worker.runtime import resolve_runtime

    sets = [f"train.max_steps={args.steps}", "train.eval_steps=null", "train.save_steps=100000", *args.sets]
    cfg = load_preset(args.preset, sets)
    run = RunDir(tempfile.mkdtemp(prefix="profile-run-"))
    run.init_status()
    rt = resolve_runtime(cfg.train, cfg.model)
    prof = profile(activities=[ProfilerActivity.CPU])
    times: list[float] = []

    class Profiled(TrainerCallback):
        def on_step_begin(self, a: Any, state: Any, c: Any, **kw: Any) -> None:
            times.append(time.perf_counter())
            if state.global_step == 1:
                prof.__enter__()

        def on_train_end(self, a: Any, state: Any, c: Any, **kw: Any) -> None:
            times.append(time.perf_counter())
            prof.__exit__(None, None, None)

    real_fit = trainers.fit

    def fit_with_profiler(*a: Any, callbacks: list[Any] | None = None, **kw: Any) -> Any:
        return real_fit(*a, callbacks=[*(callbacks or []), Profiled()], **kw)

    trainers.fit = fit_with_profiler  # the method module imports `fit` from here at call time
    registry.get(cfg.method).run(cfg, run, rt)
    steps = [b - a for a, b in zip(times, times[1:], strict=False)]
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    print(
        json.dumps(
            {
                "preset": args.preset,
                "overrides": sets,
                "threads": torch.get_num_threads(),
                "bf16": rt.bf16,
                "s_per_step": steps,
                "top_ops": [
                    {
                        "op": e.key,
                        "share": round(e.self_cpu_time_total / total, 4),
                        "self_s": round(e.self_cpu_time_total / 1e6, 3),
                        "calls": e.count,
                    }
                    for e in top
                ],
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_avg(),
            },
            indent=1,
        )
    )
    os.environ.pop("_", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
