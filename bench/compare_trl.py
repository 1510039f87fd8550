"""The studio vs a plain TRL script on the same LoRA SFT / DPO job, interleaved; prints JSON.

    python bench/compare_trl.py --job sft     # ~10 min on a quiet 2-core machine
    python bench/compare_trl.py --job dpo
    python bench/compare_trl.py --job sft --studio-set launch.processes=auto

Target (issue 12): plain TRL's wall time / the studio's >= 0.98 (the studio adds no overhead).
The job is bench/compare_llamafactory.py's; the plain script (bench/plain_trl.py) trains on
the same rows written to a JSON-lines file. By default the studio runs in one process here
(`launch.processes=1`) so the two compare like for like; pass `--studio-set
launch.processes=auto` to include the studio's multi-process default.
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

from bench.compare_llamafactory import JOBS, _rate, run_studio, studio_preset  # noqa: E402
from bench.machine import load_avg, machine  # noqa: E402


def export_trl_rows(job: str, path: Path) -> int:
    from backends.core.data.formats import load_for_method
    from backends.core.spec.config import validate_config

    cfg = validate_config(studio_preset(job, 1), "bench")
    train, _ = load_for_method(cfg.method, cfg.data, None)
    with open(path, "w", encoding="utf-8") as f:
        for row in train:
            f.write(json.dumps(dict(row)) + "\n")
    return len(train)


def run_plain(job: str, steps: int, data: Path, work: Path) -> dict[str, Any]:
    from backends.worker.models import resolve_model_path

    out = Path(tempfile.mkdtemp(prefix=f"trl-{job}-", dir=work))
    model = resolve_model_path("builtin:smollm2-135m-instruct")
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plain_trl.py"), job, str(data), model, str(out), str(steps)],
        capture_output=True,
        text=True,
    )
    wall = time.time() - t0
    log = out / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return {
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "s_per_step": _rate([r["time"] for r in rows]),
        "losses": [round(r["loss"], 4) for r in rows],
        "error": None if proc.returncode == 0 else proc.stderr[-800:],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", choices=[*JOBS, "both"], default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--studio-set", action="append", default=None)
    args = ap.parse_args()
    sets = args.studio_set if args.studio_set is not None else ["launch.processes=1"]
    work = Path(tempfile.mkdtemp(prefix="bench-trl-"))
    result: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_avg(),
        "steps": args.steps,
        "jobs": {},
    }
    for job in list(JOBS) if args.job == "both" else [args.job]:
        data = work / f"{job}.jsonl"
        rows = export_trl_rows(job, data)
        studio, plain = [], []
        for _ in range(args.rounds):
            studio.append(run_studio(job, args.steps, sets, work))
            print(f"{job} studio: {studio[-1]['wall_s']} s", file=sys.stderr, flush=True)
            plain.append(run_plain(job, args.steps, data, work))
            print(f"{job} plain TRL: {plain[-1]['wall_s']} s", file=sys.stderr, flush=True)
        ok_s, ok_p = [r for r in studio if r["ok"]], [r for r in plain if r["ok"]]
        entry: dict[str, Any] = {"rows": rows, "studio_set": sets, "studio": studio, "plain_trl": plain}
        if ok_s and ok_p:
            ws = statistics.mean(r["wall_s"] for r in ok_s)
            wp = statistics.mean(r["wall_s"] for r in ok_p)
            entry.update(
                studio_wall_mean_s=round(ws, 1),
                trl_wall_mean_s=round(wp, 1),
                ratio_trl_over_studio=round(wp / ws, 3),
                target=">= 0.98",
                max_loss_diff=round(
                    max(abs(a - b) for a, b in zip(ok_s[0]["losses"], ok_p[0]["losses"], strict=False)), 4
                ),
            )
        result["jobs"][job] = entry
    result["load_after"] = load_avg()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
