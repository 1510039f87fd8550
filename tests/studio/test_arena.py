"""The Arena tab through a live server: start a comparison, watch the tally, send it to people."""

from __future__ import annotations

import time

from gradio_client import Client


def frame(out: dict) -> dict:
    """A Dataframe output: plain, or wrapped in an update that also sets column widths."""
    return out["value"] if "value" in out else out


def test_compare_two_models_and_hand_off_to_labeling(studio, tiny_model: str) -> None:
    client = Client(studio.url, verbose=False)
    msg, _ = client.predict(
        ["builtin:tiny-llama", tiny_model],
        "builtin:tasks",
        "",
        6,
        12,
        1.0,
        ["checkers"],
        "",
        "",
        api_name="/arena_start",
    )
    assert msg.startswith("Comparison `") and "started" in msg
    run_id = msg.split("`")[1]
    deadline = time.time() + 240
    while time.time() < deadline:
        status, tallies, ranking, agreement, table = client.predict(run_id, False, api_name="/arena_show")
        if "**succeeded**" in status or "failed" in status:
            break
        time.sleep(1)
    assert "**succeeded**" in status and "6 of 6 prompts" in status and "Wilson" in status
    (row,) = tallies["data"]
    assert row[0] == "checkers" and int(row[3]) + int(row[4]) + int(row[5]) == 6
    table = frame(table)
    assert len(table["data"]) == 6 and table["headers"][:2] == ["#", "prompt"]
    _, _, _, _, only = client.predict(run_id, True, api_name="/arena_show")
    assert frame(only)["data"] == []  # one judge cannot disagree with itself
    made = client.predict(run_id, api_name="/arena_to_label")
    assert "Labeling session `arena-" in made
    store = studio.ctx.store
    sid = store.session_id(f"arena-{run_id}")
    items = store.items(sid)
    assert len(items) == 6 and all(len(it.responses) == 2 for it in items)
    # people's votes come back into the tallies as a judge of their own
    models = items[0].meta["models"]
    second = models.index(tiny_model)
    store.record_vote(items[0].id, "ann", "left", second, 1 - second)  # prefers the second model
    store.record_vote(items[1].id, "ann", "tie", 0, 1)
    _, tallies, *_ = client.predict(run_id, False, api_name="/arena_show")
    people = next(r for r in tallies["data"] if r[0] == "people")
    assert [int(x) for x in people[3:6]] == [0, 1, 1] and people[6] == "0.250"


def test_form_errors_start_nothing(studio) -> None:
    client = Client(studio.url, verbose=False)
    msg, _ = client.predict(
        ["builtin:tiny-llama"], "builtin:tasks", "", 6, 12, 1.0, ["checkers"], "", "", api_name="/arena_start"
    )
    assert "`eval.models` must name two or more different models" in msg
    msg, _ = client.predict(
        ["a", "b"], "/etc/passwd", "", 6, 12, 1.0, ["checkers"], "", "", api_name="/arena_start"
    )
    assert "is not under the folders this studio serves" in msg
    assert not any(studio.runs_dir.iterdir())
