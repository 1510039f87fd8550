"""The same LoRA SFT and DPO jobs in the studio and in LLaMA-Factory 0.9.5, interleaved; prints JSON.

    python bench/compare_llamafactory.py --install          # once: LLaMA-Factory into /work/lf-venv
    python bench/compare_llamafactory.py --job sft          # ~10 min on a quiet 2-core machine
    python bench/compare_llamafactory.py --job dpo
    python bench/compare_llamafactory.py --job sft --studio-set launch.processes=1
    python bench/compare_llamafactory.py --warm             # the studio's runs fork, as in the studio

The job (issue 12): SmolLM2-135M-Instruct, LoRA r16 alpha 32 dropout 0 on all linear layers,
max length 256, lr cosine, 20 steps, bf16 autocast, activation checkpointing, the same 400
rows of the embedded tasks (written out once for LLaMA-Factory in its alpaca format, with
the SmolLM2 default system prompt in both). SFT: batch 4, lr 1e-4; DPO: 2 pairs, lr 5e-5,
beta 0.1, sigmoid loss, reference = the adapter disabled (both do this with LoRA).

Runs alternate (studio, LLaMA-Factory, studio, LLaMA-Factory) so load from other processes
hits both; the JSON carries the machine and the load average before and after. The studio
runs as a user runs it (`launch.py --headless`, its default `launch.processes`); wall time
counts everything from the command's start to its exit in both.
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
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lfvenv import install  # noqa: E402
from bench.machine import load_avg, machine  # noqa: E402

JOBS: dict[str, dict[str, Any]] = {
    "sft": {"method": "sft", "batch": 4, "lr": 1e-4},
    "dpo": {"method": "dpo", "batch": 2, "lr": 5e-5},
}
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def studio_preset(job: str, steps: int) -> dict[str, Any]:
    j = JOBS[job]
    preset: dict[str, Any] = {
        "name": f"bench-{job}",
        "method": j["method"],
        "model": {"name_or_path": "builtin:smollm2-135m-instruct"},
        "lora": {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "data": {"dataset": "builtin:tasks", "max_samples": 400, "eval_fraction": 0.0},
        "train": {
            "learning_rate": j["lr"],
            "lr_scheduler_type": "cosine",
            "max_steps": steps,
            "per_device_train_batch_size": j["batch"],
            "max_length": 256,
            "bf16": True,
            "activation_checkpointing": True,
            "save_steps": 100000,
            "eval_steps": None,
        },
    }
    if job == "dpo":
        preset["dpo"] = {"beta": 0.1, "loss_type": "sigmoid"}
    return preset


def export_rows(job: str, out: Path) -> int:
    """The studio's own training rows for `job`, in LLaMA-Factory's alpaca format."""
    from backends.core.data.formats import load_for_method
    from backends.core.spec.config import validate_config

    cfg = validate_config(studio_preset(job, 1), "bench")
    train, _ = load_for_method(cfg.method, cfg.data, None)
    rows = []
    for r in train:
        user = r["prompt"][-1]["content"]
        if job == "sft":
            rows.append({"instruction": user, "input": "", "output": r["completion"][-1]["content"]})
        else:
            rows.append(
                {
                    "instruction": user,
                    "input": "",
                    "chosen": r["chosen"][-1]["content"],
                    "rejected": r["rejected"][-1]["content"],
                }
            )
    (out / f"{job}.json").write_text(json.dumps(rows), encoding="utf-8")
    info = {"file_name": f"{job}.json"}
    if job == "dpo":
        info.update(
            ranking=True, columns={"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}
        )
    (out / "dataset_info.json").write_text(json.dumps({f"studio_{job}": info}), encoding="utf-8")
    return len(rows)


def lf_config(job: str, steps: int, data_dir: Path, out_dir: Path, model_path: str) -> dict[str, Any]:
    j = JOBS[job]
    cfg: dict[str, Any] = {
        "model_name_or_path": model_path,
        "stage": j["method"],
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "lora_target": "all",
        "dataset": f"studio_{job}",
        "dataset_dir": str(data_dir),
        "template": "smollm2",
        "default_system": SYSTEM,
        "cutoff_len": 256,
        "per_device_train_batch_size": j["batch"],
        "gradient_accumulation_steps": 1,
        "learning_rate": j["lr"],
        "lr_scheduler_type": "cosine",
        "max_steps": steps,
        "bf16": True,
        "use_cpu": True,
        "gradient_checkpointing": True,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "output_dir": str(out_dir),
        "overwrite_output_dir": True,
        "preprocessing_num_workers": 1,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    if job == "dpo":
        cfg.update(pref_beta=0.1, pref_loss="sigmoid")
    return cfg


def run_studio(job: str, steps: int, sets: list[str], work: Path, runs: Path | None = None) -> dict[str, Any]:
    """One headless studio run; into `runs` (where a fork server is up: --warm) or a new folder."""
    preset = work / f"studio-{job}.yaml"
    preset.write_text(yaml.safe_dump(studio_preset(job, steps)), encoding="utf-8")
    runs = runs or Path(tempfile.mkdtemp(prefix="runs-", dir=work))
    cmd = [sys.executable, "launch.py", "--preset", str(preset), "--headless", "--runs-dir", str(runs)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    from backends.core.runs.rundir import list_runs

    run = max(list_runs(runs), key=lambda r: r.run_id)
    rows = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    train = [r for r in rows if r.get("split") == "train" and "loss" in r]
    status = run.read_status()
    return {
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "s_per_step": _rate([r["time"] for r in train]),
        "losses": [round(r["loss"], 4) for r in train],
        "processes": (status.get("launch") or {}).get("processes", 1),
        "forked": "forked from the warm fork server" in run.log_path.read_text(errors="replace"),
        "error": None if proc.returncode == 0 else proc.stderr[-800:],
    }


def run_lf(
    job: str, steps: int, data_dir: Path, work: Path, venv: Path, lf_set: list[str] | None = None
) -> dict[str, Any]:
    from backends.worker.models import resolve_model_path

    out = Path(tempfile.mkdtemp(prefix=f"lf-{job}-", dir=work))
    cfg_path = out / "train.yaml"
    model = resolve_model_path("builtin:smollm2-135m-instruct")
    cfg = lf_config(job, steps, data_dir, out, model)
    for item in lf_set or []:  # e.g. bf16=false: LLaMA-Factory keys, values parsed as YAML
        key, _, value = item.partition("=")
        cfg[key] = yaml.safe_load(value)
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", DISABLE_VERSION_CHECK="1")
    t0 = time.time()
    proc = subprocess.run(
        [str(venv / "bin" / "llamafactory-cli"), "train", str(cfg_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=out,
    )
    wall = time.time() - t0
    log = out / "trainer_log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    rows = [r for r in rows if "loss" in r]
    return {
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "s_per_step": _rate([_seconds(r["elapsed_time"]) for r in rows]) if rows else None,
        "losses": [round(float(r["loss"]), 4) for r in rows],
        "error": None if proc.returncode == 0 else proc.stderr[-800:],
    }


def _seconds(hms: str | float) -> float:
    """LLaMA-Factory logs elapsed time as "H:MM:SS"."""
    if isinstance(hms, int | float):
        return float(hms)
    h, m, s = (float(x) for x in str(hms).split(":"))
    return h * 3600 + m * 60 + s


def _rate(times: list[float]) -> float | None:
    """Seconds per step from the log times of steps 1..n (the first step's warm-up excluded)."""
    return round((times[-1] - times[0]) / (len(times) - 1), 2) if len(times) > 1 else None


def summary(studio: list[dict[str, Any]], lf: list[dict[str, Any]]) -> dict[str, Any]:
    ok_s = [r for r in studio if r["ok"]]
    ok_l = [r for r in lf if r["ok"]]
    if not ok_s or not ok_l:
        return {"ratio_wall": None}
    ws, wl = statistics.mean(r["wall_s"] for r in ok_s), statistics.mean(r["wall_s"] for r in ok_l)
    tail = 5  # the final loss is one noisy batch; the last 5 steps' mean compares better
    fs = statistics.mean(statistics.mean(r["losses"][-tail:]) for r in ok_s)
    fl = statistics.mean(statistics.mean(r["losses"][-tail:]) for r in ok_l)
    return {
        "studio_wall_mean_s": round(ws, 1),
        "lf_wall_mean_s": round(wl, 1),
        "ratio_wall": round(ws / wl, 3),
        "target_ratio": 0.75,
        "studio_last5_loss": round(fs, 4),
        "lf_last5_loss": round(fl, 4),
        "studio_first_loss": ok_s[0]["losses"][0] if ok_s[0]["losses"] else None,
        "lf_first_loss": ok_l[0]["losses"][0] if ok_l[0]["losses"] else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true", help="install LLaMA-Factory into --venv first")
    ap.add_argument("--venv", default="/work/lf-venv")
    ap.add_argument("--job", choices=[*JOBS, "both"], default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2, help="studio, LF pairs per job")
    ap.add_argument("--studio-set", action="append", default=[], help="extra --set for the studio run")
    ap.add_argument("--lf-set", action="append", default=[], help="LLaMA-Factory key=value, e.g. bf16=false")
    ap.add_argument(
        "--warm",
        action="store_true",
        help="the studio's runs fork from a fork server up for their folder, as while the studio runs",
    )
    args = ap.parse_args()
    venv = Path(args.venv)
    if args.install:
        install(venv)
    if not (venv / "bin" / "llamafactory-cli").exists():
        print(f"no LLaMA-Factory in {venv}: run with --install first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-lf-"))
    result: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_avg(),
        "steps": args.steps,
        "studio_warm": args.warm,
        "jobs": {},
    }
    runs, server = None, None
    if args.warm:
        from backends.core.runs import forkserver

        runs = work / "runs"
        runs.mkdir()
        server = forkserver.start_server(runs, sys.executable, work / "forkserver.log")
        if not forkserver.wait_until_up(runs, timeout=120):
            raise SystemExit(f"the fork server did not start: {work / 'forkserver.log'}")
    for job in list(JOBS) if args.job == "both" else [args.job]:
        data_dir = work / f"data-{job}"
        data_dir.mkdir()
        rows = export_rows(job, data_dir)
        studio, lf = [], []
        for _ in range(args.rounds):
            studio.append(run_studio(job, args.steps, args.studio_set, work, runs))
            print(f"{job} studio: {studio[-1]['wall_s']} s", file=sys.stderr, flush=True)
            lf.append(run_lf(job, args.steps, data_dir, work, venv, args.lf_set))
            print(f"{job} llama-factory: {lf[-1]['wall_s']} s", file=sys.stderr, flush=True)
        result["jobs"][job] = {
            "rows": rows,
            "studio_set": args.studio_set,
            "lf_set": args.lf_set,
            "studio": studio,
            "llamafactory": lf,
            **summary(studio, lf),
        }
    if server is not None:
        forkserver.stop_server(server)
    result["load_after"] = load_avg()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
