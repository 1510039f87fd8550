"""The Arena tab through a live server: start a comparison, watch the tally, send it to people."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gradio_client import Client

from backends.core.data.jsonl import read_jsonl
from backends.core.runs.rundir import RunDir


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
        2,  # two answers per prompt and model, averaged per prompt
        api_name="/arena_start",
    )
    assert msg.startswith("Comparison `") and "started" in msg
    run_id = msg.split("`")[1]
    deadline = time.time() + 240
    while time.time() < deadline:
        out = client.predict(run_id, False, api_name="/arena_show")
        status, report, verdicts, scores, paired, tallies, ranking, agreement, table = out
        if "**succeeded**" in status or "failed" in status:
            break
        time.sleep(1)
    assert "**succeeded**" in status and "6 of 6 prompts, 2 answer(s) each" in status and "Wilson" in status
    (row,) = tallies["data"]
    wins, ties, losses = (int(x) for x in row[2].split(" / "))
    assert row[0] == "checkers" and wins + ties + losses == 6
    assert [r[:2] for r in scores["data"]] == [
        ["checkers", "tiny-llama"],
        ["checkers", Path(tiny_model).name],
    ]
    (pair,) = paired["data"]
    # the Arena leads with the verdict sentence, which weighs the quality signals too
    said = {"yes": "better than", "no": "is worse than", "cannot tell": "cannot tell at 95%"}[pair[4]]
    assert verdicts.startswith("- **") and said in verdicts.split("\n")[0]
    assert "**Answer quality**" in verdicts and "relevance" in verdicts
    assert report["visible"] and report["value"].endswith("report.html")  # the report can be downloaded
    assert len([r for r in ranking["data"] if r[0] == "checkers"]) == 2  # Bradley-Terry for two models too
    run = RunDir(studio.runs_dir / run_id)
    assert len(read_jsonl(run.samples_path)) == 6 * 2 * 2
    md = run.report_md_path.read_text()
    assert "scores higher than" in md and "plotly" in run.report_html_path.read_text()
    # the report puts the same sentence first, before the scores
    assert md.index(said) < md.index("## Answer quality") < md.index("## Scores by checkers")
    table = frame(table)
    assert len(table["data"]) == 6 and table["headers"][:2] == ["#", "prompt"]
    *_, only = client.predict(run_id, True, api_name="/arena_show")
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
    tallies = client.predict(run_id, False, api_name="/arena_show")[5]
    people = next(r for r in tallies["data"] if r[0] == "people")
    assert people[2] == "0 / 1 / 1" and people[3].startswith("0.250 [")


def test_form_errors_start_nothing(studio) -> None:
    client = Client(studio.url, verbose=False)
    msg, _ = client.predict(
        ["builtin:tiny-llama"],
        "builtin:tasks",
        "",
        6,
        12,
        1.0,
        ["checkers"],
        "",
        "",
        1,
        api_name="/arena_start",
    )
    assert "`eval.models` must name two or more different models" in msg
    msg, _ = client.predict(
        ["a", "b"], "/etc/passwd", "", 6, 12, 1.0, ["checkers"], "", "", 1, api_name="/arena_start"
    )
    assert "is not under the folders this studio serves" in msg
    msg, _ = client.predict(
        ["a", "b"], "builtin:tasks", "", 6, 12, 0.0, ["checkers"], "", "", 3, api_name="/arena_start"
    )
    assert "`eval.samples_per_prompt` is 3 but `eval.temperature` is 0" in msg
    assert not any(studio.runs_dir.iterdir())


def test_typed_prompts_are_judged_by_what_can_judge_them(studio) -> None:
    from studio.logic.arena import typed_rows

    client = Client(studio.url, verbose=False)
    typed = "Describe tea. Use exactly 2 sentences.\nTell me about owls."
    runs = set(studio.runs_dir.iterdir())
    msg, _ = client.predict(
        ["builtin:tiny-llama", "builtin:smollm2-135m-instruct"],
        "builtin:tasks",
        typed,
        2,
        8,
        0.0,
        ["checkers"],
        "",
        "",
        1,
        api_name="/arena_start",
    )
    # said before the run, naming the prompt; no judge is swapped in silently
    assert msg.startswith("**Not started:**") and "typed prompt 2 ('Tell me about owls.')" in msg
    assert set(studio.runs_dir.iterdir()) == runs
    rows, problem = typed_rows(typed.splitlines()[:1], checkers=True)
    assert problem == "" and json.loads(rows[0]["constraints"]) == [
        {"kind": "sentence_count", "params": {"n": 2}}
    ]
    assert typed_rows(["Tell me about owls."], checkers=False) == (
        [{"prompt": [{"role": "user", "content": "Tell me about owls."}]}],
        "",
    )
