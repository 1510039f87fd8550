"""GRPO / PPO seconds per step with rollouts from a bf16 copy of the policy (`rl.rollouts: auto`)
against sampling from the training model under autocast (`rl.rollouts: policy`); prints JSON.

    python bench/rollouts.py [--preset presets/grpo.yaml] [--steps 6] [--rounds 2] [--model PATH]

The two arms run interleaved (auto, policy, auto, policy) as real headless runs through
bench/train_speed.py, with the GRPO settings of presets/rlvr.yaml's stage (64 new tokens,
2 prompts x 4 answers, checkers + quality reward, dapo loss). The first step (warm-up) is left
out of the rate. Only meaningful on a CPU with bf16 instructions: elsewhere both arms are the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import load_avg, machine  # noqa: E402

RLVR = [
    "rl.max_completion_length=64",
    "rl.rewards=[{kind: checkers, weight: 1.0}, {kind: quality, weight: 0.5}]",
    "rl.loss_type=dapo",
    "rl.scale_rewards=batch",
    "train.learning_rate=2e-4",
]


def one(preset: str, steps: int, sets: list[str]) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "train_speed.py"), preset, "--steps", str(steps)]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{") :])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="presets/grpo.yaml")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default=None, help="model.name_or_path (default: the preset's)")
    args = ap.parse_args()

    extra = list(RLVR) if "grpo" in args.preset else []
    if args.model:
        extra.append(f"model.name_or_path={args.model}")
    load_before = load_avg()
    arms: dict[str, list[dict]] = {"auto": [], "policy": []}
    for _ in range(args.rounds):
        for arm in arms:
            r = one(args.preset, args.steps, [*extra, f"rl.rollouts={arm}"])
            arms[arm].append({k: r[k] for k in ("s_per_step", "wall_s", "startup_s", "peak_rss_gb", "ok")})
    mean = {a: sum(r["s_per_step"] for r in rs) / len(rs) for a, rs in arms.items()}
    print(
        json.dumps(
            {
                "preset": args.preset,
                "overrides": extra,
                "steps": args.steps,
                "arms": arms,
                "s_per_step_mean": mean,
                "speedup": mean["policy"] / mean["auto"],
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_avg(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
