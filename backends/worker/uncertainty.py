"""The `uncertainty` stage's work (backends/methods/uncertainty.py says what it does): score
a labeling session's items with a reward model and write their order into the label store."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from backends.core.runs.rundir import RunDir, RunState, atomic_write_text
from backends.core.spec.config import RunConfig
from backends.worker.context import RunContext

STORE_NAME = "labels.sqlite"
DATA_ENV = "ALIGNMENT_STUDIO_DATA"  # launch.py's --data-dir default


def closest_gap(scores: list[float]) -> float:
    """|margin| of a pair; with more responses, the smallest gap between any two of them."""
    if len(scores) < 2:
        raise ValueError(f"an item needs two or more scored responses, got {len(scores)}")
    s = sorted(scores)
    return min(b - a for a, b in zip(s, s[1:], strict=False))


def priority(gap: float) -> float:
    """Higher for a smaller gap, always > 0, so a scored item comes before an unscored one (0)."""
    return 1.0 / (1.0 + gap)


def store_path(cfg: RunConfig, run: RunDir) -> Path:
    if cfg.uncertainty.store:
        return Path(cfg.uncertainty.store)
    data = os.environ.get(DATA_ENV)
    return (Path(data) if data else run.path.parent.parent / "studio_data") / STORE_NAME


def open_store(path: Path) -> Any:
    """The label store at `path`, refused when it is not one (opening would create a new one)."""
    from backends.core.labels.store import LabelStore

    if not path.is_file():
        raise FileNotFoundError(f"`uncertainty.store` {path} does not exist (the studio's labels.sqlite)")
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"sessions", "items"} <= tables:
        raise ValueError(f"`uncertainty.store` {path} is not a label store (no sessions / items tables)")
    return LabelStore(path)


def order_queue(ctx: RunContext) -> RunState:
    from backends.worker.rewards import reward_model_reward

    cfg, run, progress = ctx.cfg, ctx.run, ctx.progress
    u, t0 = cfg.uncertainty, time.time()
    path = store_path(cfg, run)
    store = open_store(path)
    sid = store.session_id(u.session)
    items = store.items(sid)
    print(f"uncertainty: {len(items)} items of session {u.session!r} in {path}", flush=True)
    score = reward_model_reward(u.reward_model, u.batch_size)
    progress.begin("scoring", len(items))
    scores: dict[int, list[float]] = {}
    chunk = max(1, u.batch_size // 2)  # a pair is two responses
    for start in range(0, len(items), chunk):
        if progress.should_stop():
            print("STOP file found: stopping before the order is written", flush=True)
            return RunState.STOPPED
        part = items[start : start + chunk]
        prompts = [it.prompt for it in part for _ in it.responses]
        flat = score(prompts, [r for it in part for r in it.responses])
        for it in part:
            scores[it.id], flat = [float(x) for x in flat[: len(it.responses)]], flat[len(it.responses) :]
        done = start + len(part)
        gaps = [closest_gap(scores[it.id]) for it in part]
        progress.step(done, {"abs_margin": sum(gaps) / len(gaps)})
    gap = {item_id: closest_gap(s) for item_id, s in scores.items()}
    store.set_ordering(sid, run.run_id, u.reward_model, scores, {i: priority(g) for i, g in gap.items()})
    order = sorted(items, key=lambda it: (gap[it.id], it.position))
    run.data_dir.mkdir(exist_ok=True)
    with open(run.data_path("scores"), "w", encoding="utf-8") as f:
        for it in order:
            row = {
                "item_id": it.id,
                "position": it.position,
                "scores": scores[it.id],
                "abs_margin": gap[it.id],
            }
            f.write(json.dumps(row) + "\n")
    summary = {
        "session": u.session,
        "session_id": sid,
        "store": str(path),
        "reward_model": u.reward_model,
        "items": len(items),
        "order": [it.id for it in order],
        "abs_margin_mean": sum(gap.values()) / len(gap) if gap else None,
        "seconds": time.time() - t0,
    }
    atomic_write_text(run.summary_path, json.dumps(summary, indent=2))
    print(
        f"uncertainty: session {u.session!r} now serves its {len(items)} items most uncertain first",
        flush=True,
    )
    return RunState.SUCCEEDED
