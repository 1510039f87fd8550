"""Order a labeling session by a reward model's uncertainty (the `uncertainty` stage).

A reward model (a `reward` run's model/ folder) scores every response of the session's items;
an item's uncertainty is its |margin|, the gap between its two responses' scores (with more
responses: the smallest gap between any two). The run writes each item's priority, higher
for a smaller gap, and the scores into the label store in one transaction, so the Label tab
serves the pairs the model is least sure of first, to every annotator, with the session's
holds and K as usual. It also writes data/scores.jsonl (an item per line, most uncertain
first) and summary.json. The studio only starts the run: it never loads the model.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import DataPath, ModelPath, Params, ui
from backends.core.spec.registry import PREFERENCE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime

STORE_NAME = "labels.sqlite"
DATA_ENV = "ALIGNMENT_STUDIO_DATA"  # launch.py's --data-dir default


class UncertaintyParams(Params):
    """Uncertainty order"""

    reward_model: ModelPath | None = Field(
        None,
        title="Reward model",
        description="A reward run's model/ folder: its |margin| on each pair decides the order.",
        json_schema_extra=ui(main=True),
    )
    session: str | None = Field(
        None,
        title="Labeling session",
        description="The session's name, as the Label tab lists it.",
        json_schema_extra=ui(main=True),
    )
    store: DataPath | None = Field(
        None,
        title="Label store",
        description="The studio's labels.sqlite. Empty: $ALIGNMENT_STUDIO_DATA/labels.sqlite, else "
        "studio_data/labels.sqlite beside the runs folder (launch.py's defaults).",
    )
    batch_size: int = Field(16, gt=0, title="Scoring batch", description="Responses per forward pass.")


def check(cfg: RunConfig) -> list[str]:
    u = cfg.uncertainty
    problems = []
    if not u.reward_model:
        problems.append("`uncertainty.reward_model` is empty: name a reward run's model/ folder")
    if not (u.session or "").strip():
        problems.append("`uncertainty.session` is empty: name the labeling session to order")
    return problems


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


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from backends.core.runs.rundir import RunState, atomic_write_text
    from backends.worker.rewards import reward_model_reward

    u, t0 = cfg.uncertainty, time.time()
    path = store_path(cfg, run)
    store = open_store(path)
    sid = store.session_id(u.session)
    items = store.items(sid)
    print(f"uncertainty: {len(items)} items of session {u.session!r} in {path}", flush=True)
    score = reward_model_reward(u.reward_model, u.batch_size)
    run.update_status(
        phase="scoring", total_steps=len(items), step=0, train_started_at=time.time(), first_step=0
    )
    scores: dict[int, list[float]] = {}
    chunk = max(1, u.batch_size // 2)  # a pair is two responses
    for start in range(0, len(items), chunk):
        if run.stop_requested():
            print("STOP file found: stopping before the order is written", flush=True)
            return RunState.STOPPED
        part = items[start : start + chunk]
        prompts = [it.prompt for it in part for _ in it.responses]
        flat = score(prompts, [r for it in part for r in it.responses])
        for it in part:
            scores[it.id], flat = [float(x) for x in flat[: len(it.responses)]], flat[len(it.responses) :]
        done = start + len(part)
        gaps = [closest_gap(scores[it.id]) for it in part]
        run.update_status(step=done)
        run.append_metrics(
            {"step": done, "time": time.time(), "split": "train", "abs_margin": sum(gaps) / len(gaps)}
        )
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


METHOD = MethodSpec(
    name="uncertainty",
    help="Order a labeling session by a reward model's uncertainty: it scores every pair, and the Label tab "
    "serves the smallest |margin| first.",
    run=train,
    formats=PREFERENCE,
    section="uncertainty",
    params=UncertaintyParams,
    charts=("abs_margin",),
    resumable=False,
    outputs=("scores",),
    column_needs=lambda cfg: {},
    check=check,
    ignores=("train.*", "lora.*", "data.*", "model.*", "launch.*"),  # the model is `uncertainty.reward_model`
    trains=False,
    order=108,
)
