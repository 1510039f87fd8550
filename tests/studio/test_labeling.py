"""Labeling: sources, and the whole loop through the app (two annotators,
agreement, export, a DPO run on the labels)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gradio_client import Client

from backends.core.jsonl import read_jsonl
from backends.core.taskgen import pair_rows
from studio.logic.labeling import items_from_rows


def test_sources_become_items_and_bad_lines_are_named(tmp_path: Path) -> None:
    pairs = items_from_rows([{"prompt": "p", "chosen": "good", "rejected": "bad"}], "x")
    assert pairs == [{"prompt": "p", "responses": ["good", "bad"], "meta": {}}]
    samples = items_from_rows(
        [{"prompt": "p", "completion": c} for c in "abc"] + [{"prompt": "q", "completion": "z"}], "s"
    )
    assert samples == [{"prompt": "p", "responses": ["a", "b", "c"], "meta": {}}]  # q has a single completion
    with pytest.raises(ValueError, match="fit no labeling source"):
        items_from_rows([{"text": "t"}], "x")
    f = tmp_path / "f.jsonl"
    f.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(f)


def test_two_annotators_agreement_export_and_train(studio) -> None:
    data = studio.ctx.data_dir
    rows = pair_rows("train", 6, seed=0)[:4]
    (data / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    alice = Client(studio.url, verbose=False)
    msg, sessions = alice.predict("pairs.jsonl", "team", api_name="/label_create")
    assert "Session created with 4 items" in msg
    sid = sessions["value"] if isinstance(sessions, dict) else sessions
    bob = Client(studio.url, verbose=False)
    chosen = {r["prompt"][0]["content"]: r["chosen"][0]["content"] for r in rows}
    sides = []
    for client, name in ((alice, "alice"), (bob, "bob")):
        out = client.predict(sid, name, api_name="/label_session")
        assert f"**{name}**: 0 of 4 labeled" in out[0]
        for _ in range(4):
            best = next(c for p, c in chosen.items() if p in out[1])
            side = "left" if best in out[2] else "right"  # pick the constraint-meeting one
            sides.append(side)
            out = client.predict(name, "meets the constraints", api_name=f"/label_vote_{side}")
        assert f"**{name}**: 4 of 4 labeled" in out[0]
    assert set(sides) == {"left", "right"}  # the order really is shuffled
    votes = studio.ctx.store.votes(sid)
    assert len(votes) == 8 and {v.annotator for v in votes} == {"alice", "bob"}
    report = alice.predict(api_name="/label_agreement")
    assert "8 votes" in report and "Cohen's kappa, alice vs bob: 1.00" in report
    assert "Agreement with the embedded checkers: 100%" in report
    msg = alice.predict("majority", "tiny/dpo.yaml", api_name="/label_train")
    assert "Exported" in msg and "Started `dpo` run" in msg
    exported = [
        json.loads(line) for line in (data / "labels" / "team-majority.jsonl").read_text().splitlines()
    ]
    assert len(exported) == 4 and {"prompt", "chosen", "rejected"} <= set(exported[0])
    run_id = msg.split("run `")[1].split("`")[0]
    deadline = time.time() + 180
    while time.time() < deadline:
        state = json.loads((studio.runs_dir / run_id / "status.json").read_text())["state"]
        if state in ("succeeded", "failed"):
            break
        time.sleep(1)
    assert state == "succeeded"


def test_generate_candidates_from_two_models_then_label_them(studio, tiny_model: str) -> None:
    client = Client(studio.url, verbose=False)
    msg, source = client.predict(
        "builtin:tiny-llama", tiny_model, "builtin:tasks", 3, api_name="/label_generate"
    )
    assert msg.startswith("Started") and source.count("samples.jsonl") == 2
    run_ids = [Path(p).parent.name for p in source.split(", ")]
    deadline = time.time() + 240
    while time.time() < deadline:
        states = [json.loads((studio.runs_dir / r / "status.json").read_text())["state"] for r in run_ids]
        if all(s in ("succeeded", "failed") for s in states):
            break
        time.sleep(1)
    assert states == ["succeeded", "succeeded"]
    created, _ = client.predict(source, "two-models", api_name="/label_create")
    assert "Session created with 3 items" in created
    sid = studio.ctx.store.session_id("two-models")
    items = studio.ctx.store.items(sid)
    assert all(len(it.responses) == 4 and "constraints" in it.meta for it in items)  # 2 samples x 2 models


def test_with_auth_votes_carry_the_login_name(tmp_path: Path, tiny_model: str) -> None:
    from studio.app import launch_app
    from studio.context import StudioContext
    from tests.studio.conftest import ROOT, free_port

    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")
    sid = ctx.store.create_session("s", [{"prompt": "p", "responses": ["a", "b"]}])
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, auth=[("alice", "pw1"), ("bob", "pw2")], block=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises several types on a refused login
            Client(f"http://127.0.0.1:{port}/", auth=("alice", "wrong"), verbose=False)
        bob = Client(f"http://127.0.0.1:{port}/", auth=("bob", "pw2"), verbose=False)
        bob.predict(sid, "typed-name", api_name="/label_session")
        bob.predict("typed-name", "", api_name="/label_vote_tie")
    finally:
        ctx.stop_scheduler()
        app.close()
    (vote,) = ctx.store.votes(sid)
    assert vote.annotator == "bob" and vote.choice == "tie"
