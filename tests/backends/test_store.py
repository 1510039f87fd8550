"""Labels: durability across a killed writer, K annotators per item from concurrent
processes, leases that expire, skips kept per annotator, undo of the last action, an old
database migrated, agreement statistics against hand-computed values, export rules."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from backends.core.labels.agreement import (
    agreement_report,
    cohen_kappa,
    export_pairs,
    fleiss_kappa,
    judge_agreement,
)
from backends.core.labels.store import LabelStore, StoreError
from backends.core.labels.store_slots import NEXT_SQL

ROOT = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, n: int = 5, k: int = 1, **kw) -> tuple[LabelStore, int]:
    store = LabelStore(tmp_path / "labels.sqlite")
    items = [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "responses": [f"a{i}", f"b{i}"]} for i in range(n)
    ]
    return store, store.create_session("s", items, votes_per_item=k, **kw)


WRITER = """
import sys
from backends.core.labels.store import LabelStore
store = LabelStore(sys.argv[1])
sid = store.session_id("s")
while (item := store.next_item(sid, sys.argv[2])) is not None:
    vid = store.record_vote(item.id, sys.argv[2], "left", 0, 1)
    print(vid, flush=True)   # acknowledged: the vote is committed
"""


def test_a_killed_writer_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 400)
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


def test_concurrent_processes_give_every_item_exactly_k_votes(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 30, k=2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.path), f"ann{i}"], cwd=ROOT, stdout=subprocess.DEVNULL
        )
        for i in range(4)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    votes = store.votes(sid)
    per_item = Counter(v.item_id for v in votes)
    assert len(votes) == 60 and set(per_item.values()) == {2}  # every item exactly K, none more
    assert len({(v.item_id, v.annotator) for v in votes}) == 60  # nobody voted an item twice
    assert store.complete_items(sid) == {it.id for it in store.items(sid)}
    assert all(store.next_item(sid, f"ann{i}") is None for i in range(5))  # complete items retire


def test_a_lease_holds_an_item_and_returns_it_when_it_expires(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 2, k=1, lease_seconds=600)
    first, second = store.items(sid)
    assert store.next_item(sid, "alice", now=0).id == first.id  # held for alice until t=600
    assert store.next_item(sid, "alice", now=5).id == first.id  # a reload shows the same item
    assert store.next_item(sid, "bob", now=10).id == second.id  # not the one alice holds
    store.record_vote(second.id, "bob", "left", 0, 1, now=11)
    assert store.next_item(sid, "carol", now=20) is None  # the last slot is alice's
    assert store.next_item(sid, "carol", now=700).id == first.id  # alice's hold expired
    with pytest.raises(StoreError, match="has its 1 label"):
        store.record_vote(first.id, "alice", "left", 0, 1, now=710)  # too late: carol holds it now
    store.record_vote(first.id, "carol", "right", 0, 1, now=720)
    assert [v.annotator for v in store.votes(sid)] == ["bob", "carol"]
    with pytest.raises(StoreError, match="already"):
        store.record_vote(first.id, "carol", "left", 0, 1)  # never twice by the same person


def test_skips_are_kept_per_annotator_and_undo_takes_back_the_last_action(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3, k=2)
    a, b, c = store.items(sid)
    assert store.next_item(sid, "alice").id == a.id
    store.record_vote(a.id, "alice", "left", 0, 1)
    assert store.next_item(sid, "alice").id == b.id
    store.skip(b.id, "alice", shown=[1, 0])
    assert store.next_item(sid, "alice").id == c.id
    reopened = LabelStore(store.path)  # a restart (or a reload) keeps the skip
    assert reopened.next_item(sid, "alice").id == c.id
    assert reopened.progress(sid, "alice").my_skips == 1
    assert reopened.next_item(sid, "bob").id == a.id and reopened.next_item(sid, "carol").id == b.id
    undone = reopened.undo_last(sid, "alice")  # the skip, not the vote before it
    assert undone.kind == "skip" and undone.item_id == b.id and undone.shown == [1, 0] and undone.held
    assert len(reopened.votes(sid, "alice")) == 1 and reopened.progress(sid, "alice").my_skips == 0
    assert reopened.next_item(sid, "alice").id == b.id  # shown again, held for alice
    undone = reopened.undo_last(sid, "alice")  # now the vote
    assert undone.kind == "vote" and undone.item_id == a.id and undone.shown == [0, 1]
    assert reopened.votes(sid, "alice") == [] and reopened.next_item(sid, "alice").id == a.id
    assert reopened.undo_last(sid, "alice") is None


def test_a_label_and_the_next_item_come_from_one_transaction(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3, k=1)
    a, b, c = store.items(sid)
    store.next_item(sid, "alice")
    vote_id, nxt = store.vote_and_next(a.id, "alice", "left", 0, 1)
    assert nxt.id == b.id and [v.id for v in store.votes(sid)] == [vote_id]
    assert store.next_item(sid, "bob").id == c.id  # b is held for alice already
    _, nxt = store.skip_and_next(b.id, "alice")
    assert nxt is None  # c is bob's; alice has nothing left
    with pytest.raises(StoreError, match="has its 1 label"):
        store.vote_and_next(c.id, "alice", "tie", 0, 1)  # bob holds its only slot
    assert len(store.votes(sid)) == 1  # the refused vote wrote nothing


def test_undoing_a_skip_whose_item_filled_up_meanwhile_holds_nothing(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 1, k=1)
    (a,) = store.items(sid)
    store.next_item(sid, "alice")
    store.skip(a.id, "alice")
    store.next_item(sid, "bob")
    store.record_vote(a.id, "bob", "tie", 0, 1)
    undone = store.undo_last(sid, "alice")
    assert undone.kind == "skip" and not undone.held and store.next_item(sid, "alice") is None


def test_progress_counts_items_by_state_and_gives_an_eta(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 6, k=2)
    items = store.items(sid)
    for i, who in enumerate(("alice", "bob", "alice", "bob")):  # items 0 and 1 complete
        store.record_vote(items[i // 2].id, who, "left", 0, 1, now=1000 + 30 * i)
    store.record_vote(items[2].id, "alice", "left", 0, 1, now=1120)  # item 2 half done
    store.next_item(sid, "carol", now=1130)  # carol holds item 2's last slot
    store.next_item(sid, "dave", now=1130)  # dave holds item 3
    p = store.progress(sid, "alice", now=1150)
    assert (p.items, p.complete, p.in_progress, p.remaining) == (6, 2, 2, 2)
    assert p.labels_needed == 1 + 2 * 3 and p.mine == 3 and p.my_skips == 0
    # 5 labels from t=1000 to now=1150: 120 an hour; 7 labels to go -> 3.5 minutes
    assert p.pace_per_hour == pytest.approx(120) and p.eta_seconds == pytest.approx(210)
    team = {a.annotator: a.labels for a in store.annotators(sid)}
    assert team == {"alice": 3, "bob": 2}


def test_serving_the_next_item_walks_indexes_not_tables(tmp_path: Path) -> None:
    store, _ = make(tmp_path, 50, k=2)
    plan = store.db().execute(
        "EXPLAIN QUERY PLAN " + NEXT_SQL.format(labels="votes"), {"sid": 1, "who": "x", "now": 0.0, "k": 2}
    )
    details = [r[-1] for r in plan]
    assert any("USING INDEX items_open" in d for d in details)
    assert not any(d.startswith("SCAN") and "INDEX" not in d for d in details), details


OLD_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT, created_at REAL NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    position INTEGER NOT NULL, prompt TEXT NOT NULL, responses TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE votes (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'both_bad')),
    left_index INTEGER NOT NULL, right_index INTEGER NOT NULL, preferred INTEGER, note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0);
CREATE INDEX votes_item ON votes(item_id, undone);
CREATE INDEX votes_annotator ON votes(annotator, undone);
INSERT INTO sessions VALUES (1, 'old', 'x.jsonl', 1.0);
INSERT INTO items VALUES (1, 1, 0, '"p0"', '["a", "b"]', '{}'), (2, 1, 1, '"p1"', '["c", "d"]', '{}');
INSERT INTO votes VALUES (1, 1, 'alice', 'left', 0, 1, 0, '', 2.0, 0), (2, 2, 'alice', 'tie', 1, 0, NULL, '', 3.0, 1);
"""


def test_a_database_from_the_first_release_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    store = LabelStore(path)
    (session,) = store.sessions()
    assert (session.name, session.kind, session.votes_per_item, session.items) == ("old", "pair", 1, 2)
    assert [v.choice for v in store.votes(1)] == ["left"]  # the undone vote stays undone
    assert store.complete_items(1) == {1}
    assert store.next_item(1, "bob").id == 2  # item 1 has its one vote
    store.record_vote(2, "bob", "right", 0, 1)
    assert store.last_session("bob") == 1


def test_next_item_undo_and_validation(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3, k=2)
    first = store.next_item(sid, "alice")
    store.record_vote(first.id, "alice", "tie", 1, 0, note="both fine")
    assert store.next_item(sid, "alice").id != first.id
    assert store.next_item(sid, "bob").id == first.id  # bob has not voted yet; K = 2
    undone = store.undo_last(sid, "alice")
    assert undone is not None and undone.kind == "vote" and undone.label.choice == "tie"
    assert undone.note == "both fine" and store.votes(sid) == []
    with pytest.raises(StoreError, match="`choice` must be one of"):
        store.record_vote(first.id, "alice", "A", 0, 1)
    with pytest.raises(StoreError, match="two different responses"):
        store.record_vote(first.id, "alice", "left", 0, 0)
    with pytest.raises(StoreError, match="send a vote, not a ranking"):
        store.record_ranking(first.id, "alice", [0, 1])
    with pytest.raises(StoreError, match="exists already"):
        store.create_session("s", [{"prompt": "p", "responses": ["a", "b"]}])
    with pytest.raises(StoreError, match="at least two responses"):
        store.create_session("t", [{"prompt": "p", "responses": ["only one"]}])
    with pytest.raises(StoreError, match=r"`votes_per_item` must be a whole number from 1 to 50, got 0"):
        store.create_session("t", [{"prompt": "p", "responses": ["a", "b"]}], votes_per_item=0)
    with pytest.raises(StoreError, match="a ranking shows 2 to 9 responses, got 10"):
        store.create_session("t", [{"prompt": "p", "responses": list("abcdefghij")}], kind="ranking")
    assert [s.name for s in store.sessions()] == ["s"]  # nothing refused was written
    store.set_priority(sid, {it.id: float(i) for i, it in enumerate(store.items(sid))})
    assert store.next_item(sid, "carol").id == store.items(sid)[-1].id  # highest priority first


def test_guidelines_are_edited_by_the_owner_only(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 1, owner="alice", guidelines="Prefer *short* answers.")
    with pytest.raises(StoreError, match=r"only the session's owner \(alice\)"):
        store.set_guidelines(sid, "anything goes", "bob")
    assert store.session(sid).guidelines == "Prefer *short* answers."
    store.set_guidelines(sid, "Prefer correct answers.", "alice")
    assert store.session(sid).guidelines == "Prefer correct answers."


def test_kappas_match_hand_computed_values() -> None:
    # po = 3/4, pe = .5*.25 + .5*.75 = .5  ->  kappa = .5
    assert cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"]) == pytest.approx(0.5)
    # P_i = 1, 1, 0 -> P = 2/3; p_j = .5, .5 -> Pe = .5  ->  kappa = 1/3
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]]) == pytest.approx(1 / 3)
    assert cohen_kappa(["x", "y"], ["x", "y"]) == 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def test_report_export_rules_and_judge_agreement(tmp_path: Path) -> None:
    store, sid = make(tmp_path, 3, k=3)
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
    assert {v.item_id for v in store.votes(sid, complete_only=True)} == {c.id}  # only c has 3 votes
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
