"""Ordering a labeling session by a reward model's uncertainty: the store serves a team by
the priorities, and a real `uncertainty` worker run (a tiny reward model built locally)
orders a session so that the pairs come in the order of their |margin|, smallest first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.core.labels.store import LabelStore, StoreError
from backends.core.runs.launcher import Launcher
from backends.core.spec.config import validate_config
from backends.core.tasks.taskgen import pair_rows
from backends.worker.uncertainty import closest_gap, priority

ROOT = Path(__file__).resolve().parents[2]


def served(store: LabelStore, sid: int, who: str) -> list[int]:
    """Every item this annotator is served, labeling each as it comes."""
    out = []
    while (item := store.next_item(sid, who)) is not None:
        out.append(item.id)
        store.record_vote(item.id, who, "left", 0, 1)
    return out


def test_the_gap_is_the_margin_and_a_smaller_gap_comes_first() -> None:
    assert closest_gap([0.5, -1.0]) == 1.5
    assert closest_gap([0.0, 5.0, 1.25]) == 1.25  # more answers: the two closest
    assert priority(0.0) > priority(0.1) > priority(3.0) > 0.0  # an unscored item has priority 0
    with pytest.raises(ValueError, match="two or more"):
        closest_gap([1.0])


def test_an_ordered_session_is_served_by_priority_to_a_team_with_its_k(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite")
    items = [{"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"]} for i in range(6)]
    sid = store.create_session("team", items, votes_per_item=2)
    ids = [it.id for it in store.items(sid)]
    wanted = [ids[3], ids[0], ids[5], ids[1], ids[4], ids[2]]
    scores = {i: [0.0, float(rank)] for rank, i in enumerate(wanted)}  # |margin| = its rank
    assert store.ordering(sid) is None
    store.set_ordering(
        sid, "run-1", "/runs/rm-7/model", scores, {i: priority(s[1]) for i, s in scores.items()}
    )
    o = store.ordering(sid)
    assert (o.run_id, o.model_name, o.scores) == ("run-1", "rm-7", scores)
    assert store.ordering(sid, with_scores=False).scores == {}
    # K = 2: alice holds the most uncertain; bob is served it too (one slot left), then carol
    # the next one, while alice's and bob's holds fill the first.
    assert store.next_item(sid, "alice").id == wanted[0]
    assert store.next_item(sid, "bob").id == wanted[0]
    assert store.next_item(sid, "carol").id == wanted[1]
    assert served(store, sid, "alice") == wanted
    assert served(store, sid, "bob") == wanted[:1] + wanted[2:]  # carol holds wanted[1]'s last slot
    # a new ordering replaces the old one; the items it leaves out go last, in file order
    three = store.create_session("three", items[:3])
    a, b, c = (it.id for it in store.items(three))
    store.set_ordering(three, "run-1", "rm", {}, {c: 0.9, a: 0.5, b: 0.1})
    store.set_ordering(three, "run-2", "rm", {b: [0.0, 0.0]}, {b: 1.0})
    assert served(store, three, "erin") == [b, a, c] and store.ordering(three).run_id == "run-2"
    with pytest.raises(StoreError, match="not items of session"):
        store.set_ordering(three, "run-3", "rm", {}, {ids[0]: 1.0})


def test_a_scoring_run_orders_the_session_by_the_reward_models_margin(
    tmp_path: Path, tiny_reward_model: str
) -> None:
    from backends.worker.rewards import reward_model_reward

    rows = pair_rows("train", 8, seed=3)
    store = LabelStore(tmp_path / "data" / "labels.sqlite")
    sid = store.create_session(
        "ordered", [{"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"]]} for r in rows]
    )
    cfg = validate_config(
        {
            "method": "uncertainty",
            "uncertainty": {"reward_model": tiny_reward_model, "session": "ordered", "batch_size": 4},
        },
        "test",
    )
    run = Launcher(tmp_path / "runs", gpus=[]).create_run(cfg)  # store: studio_data beside runs/ ...
    (tmp_path / "studio_data").symlink_to(tmp_path / "data")  # ... which is this one
    proc = subprocess.run(
        [sys.executable, "-m", "backends.worker", str(run.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and run.read_status()["state"] == "succeeded", run.log_tail() + proc.stderr
    # The expected order, from the same model scored here: smallest |margin| first.
    score = reward_model_reward(tiny_reward_model)
    items = store.items(sid)
    margin = {}
    for it in items:
        a, b = score([it.prompt, it.prompt], it.responses)
        margin[it.id] = abs(a - b)
    expected = sorted(margin, key=margin.get)
    assert len(set(margin.values())) == len(items)  # a real order, not ties broken by position
    assert expected != [it.id for it in items]  # and not the file's order
    assert served(store, sid, "alice") == expected
    written = [json.loads(line) for line in run.data_path("scores").read_text().splitlines()]
    assert [r["item_id"] for r in written] == expected
    assert [r["abs_margin"] for r in written] == pytest.approx(sorted(margin.values()), abs=1e-5)
    o = store.ordering(sid)
    assert o.run_id == run.run_id and set(o.scores) == set(margin)
    assert any(
        r.get("abs_margin") is not None for r in map(json.loads, run.metrics_path.read_text().splitlines())
    )


def test_a_scoring_run_refuses_a_missing_store_or_session(tmp_path: Path) -> None:
    from backends.worker.uncertainty import open_store

    with pytest.raises(FileNotFoundError, match="`uncertainty.store`"):
        open_store(tmp_path / "nothing.sqlite")
    other = tmp_path / "other.sqlite"
    import sqlite3

    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="is not a label store"):
        open_store(other)
    store = open_store(_store(tmp_path))
    with pytest.raises(StoreError, match="no labeling session named 'nope'"):
        store.session_id("nope")


def _store(tmp_path: Path) -> Path:
    LabelStore(tmp_path / "labels.sqlite")
    return tmp_path / "labels.sqlite"


def test_the_data_tab_does_not_offer_it_for_a_dataset() -> None:
    from backends.core.data.formats import detect_format, methods_for

    row = {"prompt": "p", "chosen": "a", "rejected": "b"}
    fits = methods_for(detect_format(list(row), row))
    assert "reward" in fits and "dpo" in fits and "uncertainty" not in fits  # it reads a session
