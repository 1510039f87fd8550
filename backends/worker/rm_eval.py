"""A reward model's held-out evaluation (RewardBench-style): the share of preference pairs
whose chosen answer it scores above the rejected one, overall and by category (a `category`
column when the data has one; else, for the embedded tasks, each constraint kind a pair's
task carries). Writes evaluation.json and an `eval` metrics row."""

from __future__ import annotations

import json
import time
from typing import Any

from backends.core.data.formats import load_converted
from backends.core.reports.winrate import wilson
from backends.core.runs.rundir import RunDir, atomic_write_text
from backends.core.spec.config import EMBEDDED_DATA, DataConfig, RunConfig
from backends.worker.rewards import reward_model_reward


def eval_source(cfg: RunConfig) -> DataConfig | None:
    """Where the held-out pairs come from: `reward.eval_dataset`; by default, when training on
    builtin:tasks, its held-out split (topics never trained on); else none."""
    r = cfg.reward
    dataset = r.eval_dataset or (EMBEDDED_DATA if cfg.data.dataset == EMBEDDED_DATA else None)
    if dataset is None:
        return None
    split = r.eval_split or ("heldout" if dataset == EMBEDDED_DATA else "train")
    return DataConfig(dataset=dataset, split=split, max_samples=r.eval_max_samples, eval_fraction=0.0)


def categories(row: dict[str, Any]) -> list[str]:
    if row.get("category") not in (None, ""):
        return [str(row["category"])]
    if isinstance(row.get("constraints"), str):
        return sorted({c["kind"] for c in json.loads(row["constraints"])})
    return []


def evaluate(cfg: RunConfig, run: RunDir, source: DataConfig, step: int) -> dict[str, Any]:
    rows = list(load_converted("reward", source)[0])
    score = reward_model_reward(str(run.model_dir))
    prompts = [r.get("prompt") or ([] if isinstance(r["chosen"], list) else "") for r in rows]
    chosen = score(prompts, [r["chosen"] for r in rows])
    rejected = score(prompts, [r["rejected"] for r in rows])
    right = [c > r for c, r in zip(chosen, rejected, strict=True)]
    by_cat: dict[str, list[bool]] = {}
    for row, ok in zip(rows, right, strict=True):
        for cat in categories(row):
            by_cat.setdefault(cat, []).append(ok)

    def summary(xs: list[bool]) -> dict[str, Any]:
        return {"accuracy": sum(xs) / len(xs), "ci95": list(wilson(sum(xs), len(xs))), "n": len(xs)}

    result = {
        **summary(right),
        "dataset": source.dataset,
        "split": source.split,
        "by_category": {c: summary(v) for c, v in sorted(by_cat.items())},
        "margin_mean": sum(c - r for c, r in zip(chosen, rejected, strict=True)) / len(rows),
    }
    atomic_write_text(run.evaluation_path, json.dumps(result, indent=2))
    run.append_metrics(
        {"step": step, "time": time.time(), "split": "eval", "heldout_pair_accuracy": result["accuracy"]}
    )
    print(
        f"held-out pair accuracy {result['accuracy']:.3f} on {len(rows)} pairs of {source.dataset}",
        flush=True,
    )
    return result
