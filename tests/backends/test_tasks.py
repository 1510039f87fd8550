"""The embedded tasks: each checker against hand-made answers, and every generated task
satisfiable by its own reference answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.core.tasks import references
from backends.core.tasks.taskgen import generate_tasks, make_task, pair_rows, task_rows
from backends.core.tasks.tasks import (
    HELDOUT_TOPICS,
    KINDS,
    TRAIN_TOPICS,
    Constraint,
    constraints_from_json,
    score_response,
)

CASES = [
    ("word_count", {"relation": "at_most", "n": 3}, "one two three", "one two three four"),
    ("word_count", {"relation": "at_least", "n": 3}, "one two three", "one two"),
    ("sentence_count", {"n": 2}, "First one. Second one!", "Just one."),
    ("bullet_count", {"n": 2}, "Intro\n- a\n- b", "- a\n- b\n- c"),
    ("paragraph_count", {"n": 2}, "Para one.\n\nPara two.", "Para one.\nStill one."),
    ("json_keys", {"keys": ["a", "b"]}, '```json\n{"a": 1, "b": 2}\n```', '{"a": 1}'),
    ("json_keys", {"keys": ["a"]}, '{"a": 1}', "not json at all"),
    ("include_words", {"words": ["river", "lamp"]}, "The River and a lamp.", "A river only."),
    ("exclude_words", {"words": ["time"]}, "Timeless words.", "It is time."),
    ("lowercase", {}, "all lower here", "Not lower"),
    ("uppercase", {}, "ALL UPPER 1", "NOT all"),
    ("starts_with", {"phrase": "To begin:"}, "  to begin: yes", "Yes. To begin:"),
    ("ends_with", {"phrase": "That is all."}, "Done. That is all.", "That is all. More"),
    ("no_commas", {}, "No commas here.", "One, two."),
    ("keyword_frequency", {"word": "tea", "n": 2}, "Tea and tea.", "Tea and coffee; teapot."),
    ("title", {}, "<<My Title>>\nBody.", "<My Title>\nBody."),
]


def test_at_least_ten_kinds() -> None:
    assert len(KINDS) >= 10
    assert {c[0] for c in CASES} == set(KINDS)


@pytest.mark.parametrize(("kind", "params", "good", "bad"), CASES)
def test_checker(kind: str, params: dict, good: str, bad: str) -> None:
    c = Constraint(kind, params)
    assert c.check(good) is True
    assert c.check(bad) is False
    assert c.describe()  # a prompt phrase exists for every kind


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_every_generated_task_is_satisfiable_and_combines_constraints(split: str) -> None:
    tasks = list(generate_tasks(split, 400, seed=3))
    sizes = {len(t.constraints) for t in tasks}
    assert sizes == {1, 2, 3}
    seen_kinds = set()
    for t in tasks:
        assert all(t.check(t.reference)), (t.prompt, t.reference)
        assert t.score(t.reference) == 1.0
        seen_kinds |= {c.kind for c in t.constraints}
        for c in t.constraints:  # conflicting kinds never share a task
            assert not any(o.kind in KINDS[c.kind].conflicts for o in t.constraints if o is not c)
    assert seen_kinds == set(KINDS)


def test_score_is_share_of_constraints_met() -> None:
    cs = [
        Constraint("lowercase", {}),
        Constraint("no_commas", {}),
        Constraint("include_words", {"words": ["owl"]}),
    ]
    assert score_response(cs, "an owl, at night") == pytest.approx(2 / 3)
    assert score_response(json.dumps([{"kind": c.kind, "params": c.params} for c in cs]), "an owl") == 1.0


def test_generation_is_seeded_and_splits_are_disjoint() -> None:
    a = [t.prompt for t in generate_tasks("train", 50, seed=1)]
    assert a == [t.prompt for t in generate_tasks("train", 50, seed=1)]
    assert a != [t.prompt for t in generate_tasks("train", 50, seed=2)]
    assert not set(TRAIN_TOPICS) & set(HELDOUT_TOPICS)
    held = list(generate_tasks("heldout", 200, seed=1))
    assert all(t.topic in HELDOUT_TOPICS for t in held)
    train_prompts = {t.prompt for t in generate_tasks("train", 2000, seed=1)}
    assert not train_prompts & {t.prompt for t in held}


def test_rows_are_trl_conversational_and_carry_their_checker() -> None:
    rows = task_rows("train", 5, seed=0)
    for row in rows:
        assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"
        cs = constraints_from_json(row["constraints"])
        assert score_response(cs, row["completion"][0]["content"]) == 1.0
    assert "completion" not in task_rows("heldout", 2, with_completion=False)[0]
    with pytest.raises(ValueError, match="unknown constraint kinds"):
        constraints_from_json('[{"kind": "rhymes", "params": {}}]')


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ship `rows` as the sampled references over `scanned` task indices, for one test."""

    def ship(rows: list[dict], scanned: int) -> None:
        path = tmp_path / "references.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        path.with_suffix(".json").write_text(json.dumps({"tasks": scanned}), encoding="utf-8")
        monkeypatch.setattr(references, "PATH", path)
        references._rows.cache_clear()

    yield ship
    references._rows.cache_clear()


def test_sampled_references_come_first_and_templates_are_marked(shipped) -> None:
    tasks = [make_task("train", i, seed=0) for i in range(6)]
    # sampled answers for tasks 1 and 4 (the filler text stands in for one: it meets every
    # constraint); task 3's row was made for another prompt, so it must not be used
    rows = [
        {
            "task_id": t.task_id,
            "prompt": t.prompt,
            "reference": t.reference,
            "rejected": "no.",
            "rejected_score": 0.0,
        }
        for t in (tasks[1], tasks[4])
    ]
    rows.append(
        {
            "task_id": tasks[3].task_id,
            "prompt": "another request",
            "reference": "x",
            "rejected": "y",
            "rejected_score": 0.0,
        }
    )
    shipped(rows, scanned=6)
    out = task_rows("train", 4, seed=0)
    assert [r["task_id"] for r in out] == [tasks[i].task_id for i in (1, 4, 0, 2)]
    assert [r["reference_source"] for r in out] == ["sampled", "sampled", "template", "template"]
    # more rows than the sampled range holds: the tasks past it follow, as templates
    assert task_rows("train", 8, seed=0)[-1]["task_id"] == make_task("train", 7, seed=0).task_id
    pairs = pair_rows("train", 3, seed=0)
    assert pairs[0]["rejected"][0]["content"] == "no." and pairs[0]["reference_source"] == "sampled"
    assert pairs[-1]["reference_source"] == "template"
    # another seed or split never uses the shipped answers
    assert {r["reference_source"] for r in task_rows("train", 4, seed=1)} == {"template"}
    assert {r["reference_source"] for r in task_rows("dev", 4, seed=0)} == {"template"}
    # asked for, the filler templates in generator order (the tiny presets: fast to learn)
    asked = task_rows("train", 4, seed=0, references="template")
    assert [r["task_id"] for r in asked] == [t.task_id for t in tasks[:4]]
    assert {r["reference_source"] for r in asked} == {"template"}


def test_shipped_references_meet_their_constraints_and_match_today_s_prompts() -> None:
    references._rows.cache_clear()
    rows = references._rows()
    assert references.covered() >= len(rows) > 100, "the package ships the sampled answers"
    for i in range(references.covered()):
        task = make_task("train", i, seed=0)
        if (row := rows.get(task.task_id)) is not None:
            assert row["prompt"] == task.prompt, task.task_id
            assert task.score(row["reference"]) == 1.0, (task.task_id, row["reference"])
            assert round(task.score(row["rejected"]), 4) == row["rejected_score"]
