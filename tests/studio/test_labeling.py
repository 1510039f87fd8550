"""Labeling: sources, and the whole loop through the app (two annotators, agreement,
export, a DPO run on the labels); eight annotators at once over gradio_client with K = 2;
a ranking session from a file, ranked and exported; logins and guidelines. (Path safety
is tested for every entry point in tests/studio/test_paths.py.)"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from backends.core.data.jsonl import read_jsonl
from backends.core.tasks.taskgen import pair_rows
from studio.logic.labeling import items_from_rows, message_text, shown_as_written
from tests.studio.conftest import ROOT

# What a label event returns to gradio_client (state, buttons and groups are left out): a
# vote, a ranking or a session all start with these; a session also has the ranking's
# answers and, after the order and the note, the guidelines.
PROGRESS, PROMPT, LEFT, RIGHT = 0, 1, 2, 3
ANSWERS, GUIDELINES = slice(4, 13), 15


def test_answers_are_shown_as_written_not_as_html() -> None:
    # The Markdown component drops tag-like text: "<<Notes>>" would show as "<".
    assert message_text("<<Notes on rain>> A&B") == "&lt;&lt;Notes on rain>> A&amp;B"
    assert message_text("use `a<b` and\n```\nx < y\n```") == "use `a<b` and\n```\nx < y\n```"
    assert message_text("cut off ```py\nif a<b:") == "cut off ```py\nif a<b:"  # an open code block
    assert message_text([{"role": "user", "content": "<b>hi</b>"}]) == "**user**: &lt;b>hi&lt;/b>"


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
    msg, sessions = alice.predict("pairs.jsonl", "team", "pair", 2, "", "alice", api_name="/label_create")
    assert "Session created with 4 items" in msg
    sid = sessions["value"] if isinstance(sessions, dict) else sessions
    bob = Client(studio.url, verbose=False)
    # as the page shows them (tag-like text escaped)
    chosen = {
        shown_as_written(r["prompt"][0]["content"]): shown_as_written(r["chosen"][0]["content"]) for r in rows
    }
    sides = []
    for client, name in ((alice, "alice"), (bob, "bob")):
        out = client.predict(sid, name, api_name="/label_session")
        assert f"**{name}**: 0 of 4 labeled" in out[PROGRESS]
        for _ in range(4):
            best = next(c for p, c in chosen.items() if p in out[PROMPT])
            side = "left" if best in out[LEFT] else "right"  # pick the constraint-meeting one
            sides.append(side)
            out = client.predict(name, "meets the constraints", api_name=f"/label_vote_{side}")
        assert f"**{name}**: 4 of 4 labeled" in out[PROGRESS]
    assert set(sides) == {"left", "right"}  # the order really is shuffled
    votes = studio.ctx.store.votes(sid)
    assert len(votes) == 8 and {v.annotator for v in votes} == {"alice", "bob"}
    report = alice.predict(api_name="/label_agreement")
    assert (
        "8 votes** (the items complete with 2 labels)" in report
        and "Cohen's kappa, alice vs bob: 1.00" in report
    )
    assert "Agreement with the embedded checkers: 100%" in report
    msg = alice.predict("majority", "tiny/dpo.yaml", api_name="/label_train")
    assert "Exported" in msg and "Started `dpo` run" in msg
    (export,) = (data / "labels").glob("team-*-majority.jsonl")  # named by the session and its id
    exported = [json.loads(line) for line in export.read_text().splitlines()]
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
        "builtin:tiny-llama", tiny_model, "builtin:tasks", 3, 2, api_name="/label_generate"
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
    created, _ = client.predict(source, "two-models", "ranking", 1, "", "me", api_name="/label_create")
    assert "Session created with 3 items" in created
    sid = studio.ctx.store.session_id("two-models")
    items = studio.ctx.store.items(sid)
    assert all(len(it.responses) == 4 and "constraints" in it.meta for it in items)  # 2 samples x 2 models
    assert studio.ctx.store.session(sid).kind == "ranking"


def finished_reward_run(ctx: Any, model_path: str) -> Any:
    """A succeeded `reward` run whose model/ is the given reward model (no training here)."""
    import shutil

    from backends.core.spec.config import load_preset

    run = ctx.launcher.create_run(load_preset(ROOT / "presets/tiny/reward.yaml"), claimed=True, device="cpu")
    shutil.copytree(model_path, run.model_dir)
    run.update_status(state="running")
    run.update_status(state="succeeded")
    return run


def test_a_session_ordered_by_a_reward_model_serves_the_most_uncertain_first(
    studio, tiny_reward_model: str
) -> None:
    from backends.worker.rewards import reward_model_reward

    rows = pair_rows("train", 8, seed=1)[:5]
    (studio.ctx.data_dir / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    client = Client(studio.url, verbose=False)
    _, sessions = client.predict("pairs.jsonl", "by-rm", "pair", 1, "", "alice", api_name="/label_create")
    sid = sessions["value"] if isinstance(sessions, dict) else sessions
    rm = finished_reward_run(studio.ctx, tiny_reward_model)
    assert "not started" in client.predict(rm.run_id, api_name="/label_order").lower()  # no session open
    out = client.predict(sid, "alice", api_name="/label_session")
    assert "most uncertain first" not in out[PROGRESS]
    msg = client.predict(rm.run_id, api_name="/label_order")
    assert msg.startswith("Started"), msg
    run_id = msg.split("`")[1]
    deadline = time.time() + 180
    while time.time() < deadline:
        state = json.loads((studio.runs_dir / run_id / "status.json").read_text())["state"]
        if state in ("succeeded", "failed"):
            break
        time.sleep(1)
    assert state == "succeeded", (studio.runs_dir / run_id / "stdout.log").read_text()[-2000:]
    # The order the reward model implies, scored here: smallest |margin| first. The item alice
    # held when the order came stays hers (a reload shows it again); the rest follow the order.
    score = reward_model_reward(tiny_reward_model)
    items = studio.ctx.store.items(sid)
    scores = {it.id: score([it.prompt, it.prompt], it.responses) for it in items}
    rest = sorted(items[1:], key=lambda it: abs(scores[it.id][0] - scores[it.id][1]))
    assert [it.id for it in rest] != [it.id for it in items[1:]]  # not the file's order
    out = client.predict(sid, "alice", api_name="/label_session")
    assert "most uncertain first" in out[PROGRESS] and f"reward model `{rm.run_id}`" in out[PROGRESS]
    for it, agree in zip([items[0], *rest], (True, True, True, True, False), strict=True):
        assert out[PROMPT] == message_text(it.prompt)  # served in the scored order
        best = 0 if scores[it.id][0] > scores[it.id][1] else 1
        pick = best if agree else 1 - best
        side = "left" if out[LEFT] == message_text(it.responses[pick]) else "right"
        out = client.predict("alice", "", api_name=f"/label_vote_{side}")
        assert "most uncertain first" in out[PROGRESS]
    assert "Nothing left" in out[PROMPT]
    report = client.predict(api_name="/label_agreement")
    assert (
        f"Agreement with reward model `{rm.run_id}` (it ordered this session): 80% of 5 decisive votes"
        in report
    )


@contextmanager
def studio_with_logins(tmp_path: Path, users: list[str]) -> Iterator[tuple[str, Any]]:
    """A live studio whose users log in (user:pw-user), like a team sharing one link."""
    from studio.app import launch_app
    from studio.context import StudioContext
    from tests.studio.conftest import ROOT, free_port

    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, auth=[(u, f"pw-{u}") for u in users], block=False)
    try:
        yield f"http://127.0.0.1:{port}/", ctx
    finally:
        ctx.stop_scheduler()
        app.close()


def login(url: str, user: str) -> Client:
    # ssl_verify=False: plain http on localhost; otherwise every call builds an SSL context.
    return Client(url, auth=(user, f"pw-{user}"), verbose=False, ssl_verify=False)


def test_eight_annotators_at_once_label_each_item_exactly_k_times(tmp_path: Path, tiny_model: str) -> None:
    users = [f"ann{i}" for i in range(8)]
    with studio_with_logins(tmp_path, users) as (url, ctx):
        items = [{"prompt": f"question {i}", "responses": [f"yes {i}", f"no {i}"]} for i in range(40)]
        sid = ctx.store.create_session("team", items, votes_per_item=2)
        seen: dict[str, list[str]] = {u: [] for u in users}
        acked: Counter[str] = Counter()
        errors: list[BaseException] = []

        def annotate(user: str) -> None:
            try:
                client = login(url, user)
                out = client.predict(sid, "", api_name="/label_session")
                while "Nothing left" not in out[PROMPT]:
                    seen[user].append(out[PROMPT])
                    out = client.predict("", "", api_name="/label_vote_left")
                    acked[user] += 1  # the call returned: the vote is stored
            except BaseException as e:  # reported below, with the thread's user
                errors.append(e)

        threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        votes = ctx.store.votes(sid)
    per_item = Counter(v.item_id for v in votes)
    assert len(per_item) == 40 and set(per_item.values()) == {2}  # exactly K each, none more
    assert sum(acked.values()) == len(votes) == 80  # none lost, none duplicated
    assert Counter(v.annotator for v in votes) == acked  # each stored under its login
    for user, prompts in seen.items():
        assert len(prompts) == len(set(prompts)) == acked[user]  # nobody saw an item twice
    assert len({(v.item_id, v.annotator) for v in votes}) == 80


def test_a_ranking_session_from_a_file_is_ranked_and_exported(studio) -> None:
    data = studio.ctx.data_dir
    rows = [{"prompt": f"q{i}", "responses": [f"r{i}-{k}" for k in range(4)]} for i in range(2)]
    (data / "four.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    client = Client(studio.url, verbose=False)
    msg, sid = client.predict("four.jsonl", "rank4", "ranking", 1, "", "me", api_name="/label_create")
    assert "Session created with 2 items" in msg
    sid = sid["value"] if isinstance(sid, dict) else sid
    out = client.predict(sid, "me", api_name="/label_session")
    shown = [a["value"].split("\n\n", 1)[1] for a in out[ANSWERS] if a.get("visible")]
    assert len(shown) == 4 and sorted(shown) == sorted(rows[0]["responses"])
    bad = client.predict("me", "A B", "", api_name="/label_rank")  # C and D missing: refused
    assert bad[PROMPT] == {"__type__": "update"} and studio.ctx.store.rankings(sid) == []  # same item
    out = client.predict("me", "D C B A", "", api_name="/label_rank")  # best first
    assert "1 of 2 labeled" in out[PROGRESS]
    msg = client.predict("majority", api_name="/label_export")
    assert "Exported 1 rankings" in msg and "their 6 pairs" in msg
    pairs = [json.loads(x) for x in (data / "labels" / f"rank4-{sid}-pairs.jsonl").read_text().splitlines()]
    best_first = shown[::-1]
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {
        (best_first[i], best_first[j]) for i in range(4) for j in range(i + 1, 4)
    }


def test_with_auth_votes_carry_the_login_name_and_only_the_owner_edits_guidelines(
    tmp_path: Path, tiny_model: str
) -> None:
    with studio_with_logins(tmp_path, ["alice", "bob"]) as (url, ctx):
        (ctx.data_dir / "p.jsonl").write_text(
            json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n"
        )
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises several types on a refused login
            Client(url, auth=("alice", "wrong"), verbose=False)
        alice, bob = login(url, "alice"), login(url, "bob")
        msg, sid = alice.predict(
            "p.jsonl", "s", "pair", 2, "Prefer **short** answers.", "typed", api_name="/label_create"
        )
        sid = sid["value"] if isinstance(sid, dict) else sid
        out = bob.predict(sid, "typed-name", api_name="/label_session")
        assert out[GUIDELINES]["value"] == "Prefer **short** answers."  # shown above the pair
        bob.predict("typed-name", "", api_name="/label_vote_tie")
        refused, _ = bob.predict("anything goes", "", api_name="/label_guidelines")
        assert "only the session's owner (alice)" in refused
        alice.predict(sid, "", api_name="/label_session")
        saved, _ = alice.predict("Prefer correct answers.", "", api_name="/label_guidelines")
        assert saved == "Saved."
    (vote,) = ctx.store.votes(sid)
    assert vote.annotator == "bob" and vote.choice == "tie"
    assert ctx.store.session(sid).owner == "alice"
    assert ctx.store.session(sid).guidelines == "Prefer correct answers."


def test_the_label_tab_takes_the_builtin_sources_the_data_tab_opens(studio) -> None:
    client = Client(studio.url, verbose=False)
    for source in ("builtin:tasks", "builtin:tasks:dpo"):
        msg, sessions = client.predict(
            source, f"from {source}", "pair", 1, "", "me", api_name="/label_create"
        )
        assert "Session created with" in msg, msg
        sid = sessions["value"] if isinstance(sessions, dict) else sessions
        items = studio.ctx.store.items(sid)
        assert len(items) > 100 and all(len(it.responses) == 2 for it in items)
        assert "constraints" in items[0].meta  # the checkers can be compared with people later
