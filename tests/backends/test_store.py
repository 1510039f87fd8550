"""Labels: durability across a killed writer, concurrent annotators, undo, agreement
statistics against hand-computed values, export rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.core.agreement import agreement_report, cohen_kappa, export_pairs, fleiss_kappa, judge_agreement
from backends.core.store import LabelStore, StoreError

ROOT = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, n: int = 5) -> tuple[LabelStore, int]:
    store = LabelStore(tmp_path / "labels.sqlite")
    items = [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "responses": [f"a{i}", f"b{i}"]} for i in range(n)
    ]
    return store, store.create_session("s", items)


WRITER = """
import sys
from backends.core.store import LabelStore
store = LabelStore(sys.argv[1])
items = store.items(store.session_id("s"))
i = 0
while True:
    item = items[i % len(items)]
    vid = store.record_vote(item.id, sys.argv[2], "left", 0, 1)
    print(vid, flush=True)   # acknowledged: the vote is committed
    i += 1
"""


def test_a_killed_writer_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    store, sid = make(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store.path), "alice"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    acked = []
    deadline = time.time() + 60
    while len(acked) < 40 and time.time() < deadline:
        acked.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no clean shutdown
    proc.wait()
    stored = {v.id for v in LabelStore(store.path).votes(sid)}
    assert len(acked) == 40 and set(acked) <= stored


def test_concurrent_annotators_never_overwrite_each_other(tmp_path: Path) -> None:
    store, sid = make(tmp_path)
    code = (
        "import sys\nfrom backends.core.store import LabelStore\ns = LabelStore(sys.argv[1])\n"
        "items = s.items(s.session_id('s'))\n"
        "for k in range(30):\n    s.record_vote(items[k % 5].id, sys.argv[2], 'right', 0, 1)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(store.path), f"ann{i}"], cwd=ROOT) for i in range(4)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    votes = store.votes(sid)
    assert len(votes) == 120
    assert {v.annotator for v in votes} == {"ann0", "ann1", "ann2", "ann3"}


def test_next_item_undo_and_validation(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3)
    first = store.next_item(sid, "alice")
    store.record_vote(first.id, "alice", "tie", 1, 0, note="both fine")
    assert store.next_item(sid, "alice").id != first.id
    assert store.next_item(sid, "bob").id == first.id  # bob has not voted yet
    undone = store.undo_last(sid, "alice")
    assert undone is not None and undone.choice == "tie"
    assert store.next_item(sid, "alice").id == first.id and store.votes(sid) == []
    with pytest.raises(StoreError, match="`choice` must be one of"):
        store.record_vote(first.id, "alice", "A", 0, 1)
    with pytest.raises(StoreError, match="two different responses"):
        store.record_vote(first.id, "alice", "left", 0, 0)
    with pytest.raises(StoreError, match="exists already"):
        store.create_session("s", [{"prompt": "p", "responses": ["a", "b"]}])
    with pytest.raises(StoreError, match="at least two responses"):
        store.create_session("t", [{"prompt": "p", "responses": ["only one"]}])
    prio = {it.id: float(i) for i, it in enumerate(store.items(sid))}
    assert store.next_item(sid, "carol", priority=prio).id == store.items(sid)[-1].id


def test_kappas_match_hand_computed_values() -> None:
    # po = 3/4, pe = .5*.25 + .5*.75 = .5  ->  kappa = .5
    assert cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"]) == pytest.approx(0.5)
    # P_i = 1, 1, 0 -> P = 2/3; p_j = .5, .5 -> Pe = .5  ->  kappa = 1/3
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]]) == pytest.approx(1 / 3)
    assert cohen_kappa(["x", "y"], ["x", "y"]) == 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def test_report_export_rules_and_judge_agreement(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3)
    a, b, c = store.items(sid)
    # item a: both prefer response 0 (shown on different sides); item b: split; item c: 2 of 3 prefer 1
    store.record_vote(a.id, "alice", "left", 0, 1)
    store.record_vote(a.id, "bob", "right", 1, 0)
    store.record_vote(b.id, "alice", "left", 0, 1)
    store.record_vote(b.id, "bob", "left", 1, 0)
    store.record_vote(c.id, "alice", "right", 0, 1)
    store.record_vote(c.id, "bob", "right", 0, 1)
    store.record_vote(c.id, "carol", "tie", 0, 1)
    votes = store.votes(sid)
    report = agreement_report(votes)
    assert report["annotators"] == ["alice", "bob", "carol"]
    assert report["cohen_kappa"]["alice vs bob"] == pytest.approx(
        cohen_kappa(["r0", "r0", "r1"], ["r0", "r1", "r1"])
    )
    assert report["mean_item_agreement"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert report["left_share"] == pytest.approx(3 / 6)
    majority = export_pairs(store.items(sid), votes, "majority")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in majority] == [
        ("a0", "b0"),
        ("b2", "a2"),
    ]
    unanimous = export_pairs(store.items(sid), votes, "unanimous")
    assert [r["chosen"][0]["content"] for r in unanimous] == ["a0"]  # c had a tie vote
    assert judge_agreement(votes, {a.id: [0.9, 0.1], b.id: [0.5, 0.5], c.id: [0.2, 0.8]}) == pytest.approx(
        4 / 6
    )
