"""IFEval's own verifiers (if-verifiable) as a reward and a judge, on rows made up in IFEval's
format (its published prompts are a test set and never appear here), the `ifeval` layout
found from the columns, and the embedded tasks spelled as IFEval instructions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.core.data.dataplan import resolve_plan
from backends.core.data.turns import RowError
from backends.core.runs.rundir import RunDir, list_runs
from backends.core.tasks.ifeval import IDS, from_constraint
from backends.core.tasks.taskgen import task_rows
from backends.core.tasks.tasks import KINDS, score_response
from backends.worker.ifeval import IFEvalReward, verify
from tests.backends.headless import run_preset

ROOT = Path(__file__).resolve().parents[2]

# IFEval's shape: one kwargs dict per instruction, every argument present and None where unused
# (as the published dataset stores them)
NONE_ARGS = dict.fromkeys(["num_words", "relation", "keywords", "end_phrase", "num_bullets"])
ROWS = [
    {
        "key": 1,
        "prompt": "Write two lines about tea, all in lowercase letters and without commas.",
        "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
        "kwargs": [dict(NONE_ARGS), dict(NONE_ARGS)],
    },
    {
        "key": 2,
        "prompt": "Describe a harbor in at least 12 words and end with the phrase 'That is all.'",
        "instruction_id_list": ["length_constraints:number_words", "startend:end_checker"],
        "kwargs": [
            {**NONE_ARGS, "num_words": 12, "relation": "at least"},
            {**NONE_ARGS, "end_phrase": "That is all."},
        ],
    },
    {
        "key": 3,
        "prompt": "List three uses of a lantern as exactly 3 markdown bullet points; mention the word window.",
        "instruction_id_list": ["detectable_format:number_bullet_lists", "keywords:existence"],
        "kwargs": [{**NONE_ARGS, "num_bullets": 3}, {**NONE_ARGS, "keywords": ["window"]}],
    },
]


def test_the_ids_are_the_library_s() -> None:
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    assert set(IDS) == set(INSTRUCTION_DICT)


def test_prompt_and_instruction_level_strict_and_loose() -> None:
    row = ROWS[0]
    # a preamble line with a comma: strict fails the comma rule, loose drops the first line
    answer = "sure, here you go:\nthe kettle hums a quiet song\nsteam curls over the old cup"
    d = verify(row["prompt"], answer, row["instruction_id_list"], row["kwargs"])
    assert (d["prompt_strict"], d["prompt_loose"]) == (0.0, 1.0)
    assert (d["instruction_strict"], d["instruction_loose"]) == (0.5, 1.0)
    assert [(i["id"], i["strict"]) for i in d["instructions"]] == [
        ("change_case:english_lowercase", True),
        ("punctuation:no_comma", False),
    ]
    row = ROWS[1]
    short = verify(row["prompt"], "A harbor is busy. That is all.", row["instruction_id_list"], row["kwargs"])
    long = "A harbor at dawn holds fishing boats, gulls, ropes and the smell of salt and tar. That is all."
    assert (
        short["instruction_strict"] == 0.5
        and verify(row["prompt"], long, row["instruction_id_list"], row["kwargs"])["prompt_strict"] == 1.0
    )


def test_the_reward_reads_ifeval_columns_and_refuses_what_it_cannot_verify() -> None:
    reward = IFEvalReward()
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in ROWS]
    answers = [
        "the kettle hums\nsteam curls over the cup",  # both met
        "A harbor. That is all.",  # too short: one of two
        "- a light by the window\n- a gift\n- a lamp for a walk",  # both met
    ]
    completions = [[{"role": "assistant", "content": a}] for a in answers]
    ids = [r["instruction_id_list"] for r in ROWS]
    kwargs = [json.dumps(r["kwargs"]) for r in ROWS]  # JSON text, as the layout stores it
    assert reward(prompts, completions, instruction_id_list=ids, kwargs=kwargs) == [1.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="needs the columns `instruction_id_list` and `kwargs`"):
        reward(prompts, completions, constraints=["[]"] * 3)
    with pytest.raises(
        ValueError, match=r"row 1 has instruction ids IFEval does not know: \['change_case:rhyme'\]"
    ):
        reward(prompts[:1], completions[:1], instruction_id_list=[["change_case:rhyme"]], kwargs=["[{}]"])
    with pytest.raises(ValueError, match="row 1 has 2 instruction ids but 1 kwargs"):
        reward(prompts[:1], completions[:1], instruction_id_list=[ids[0]], kwargs=["[{}]"])


def test_the_ifeval_layout_is_found_from_the_columns() -> None:
    plan = resolve_plan(list(ROWS[0]), ROWS)
    assert plan.layout.name == "ifeval" and plan.auto
    out = plan.convert(ROWS[1], 2)
    assert out["prompt"] == [{"role": "user", "content": ROWS[1]["prompt"]}]
    assert out["instruction_id_list"] == ROWS[1]["instruction_id_list"] and out["key"] == 2
    assert json.loads(out["kwargs"])[0]["num_words"] == 12
    bad = {**ROWS[0], "instruction_id_list": ["punctuation:no_comma"]}
    with pytest.raises(RowError, match="row 7 has 1 instruction ids but 2 kwargs.*layout ifeval"):
        plan.convert(bad, 7)


def test_embedded_tasks_carry_ifeval_instructions_that_their_references_meet() -> None:
    # every embedded kind but the two IFEval has no instruction for maps to IFEval ids
    assert {
        k
        for k in KINDS
        if not from_constraint(
            k, {"relation": "at_most", "n": 3, "words": ["a"], "word": "a", "phrase": "x", "keys": ["a"]}
        )
    } == {"starts_with", "paragraph_count"}
    rows = task_rows("dev", 200, seed=0)
    judged = agree = 0
    for r in rows:
        text = r["completion"][0]["content"]
        d = verify(r["prompt"], text, r["instruction_id_list"], r["kwargs"])
        if d["prompt_strict"] is None:
            continue
        judged += 1
        agree += (score_response(r["constraints"], text) == 1.0) == (d["prompt_strict"] == 1.0)
    # the filler meets every constraint; IFEval disagrees only where langdetect misreads
    # all-capital English (change_case:english_capital)
    assert judged > 180 and agree / judged > 0.9


GRPO_THEN_EVAL = """
name: ifeval-test
defaults:
  model: {{name_or_path: builtin:tiny-llama}}
  train: {{bf16: false, activation_checkpointing: false, max_length: 192, save_steps: 100}}
stages:
  - stage: grpo
    method: grpo
    lora: {{enabled: true, r: 8, alpha: 16, dropout: 0.0}}
    data: {{dataset: {data}, eval_fraction: 0.0}}
    rl: {{rewards: [{{kind: ifeval}}], num_generations: 4, max_completion_length: 16, beta: 0.04}}
    train: {{learning_rate: 5.0e-3, max_steps: 2, per_device_train_batch_size: 8}}
  - stage: heldout
    method: eval
    data: {{dataset: {data}}}
    eval:
      models: [builtin:tiny-llama, "@grpo"]
      judges: [{{kind: ifeval}}]
      max_new_tokens: 16
      temperature: 0.0
      batch_size: 4
"""


def test_grpo_rewarded_and_a_comparison_judged_by_ifeval_on_its_own_format(
    tmp_path: Path, tiny_model: str
) -> None:
    data = tmp_path / "ifeval_like.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS * 2))
    preset = tmp_path / "p.yaml"
    preset.write_text(GRPO_THEN_EVAL.format(data=data))
    runs = tmp_path / "runs"
    run_preset(preset, runs)
    stages = {
        s["stage"]: s
        for r in list_runs(runs)
        if r.read_status().get("kind") == "pipeline"
        for s in r.read_status()["stages"]
    }
    grpo = RunDir(runs / stages["grpo"]["run_id"])
    assert "IFEval (verifiable instructions) (found from the columns)" in grpo.log_path.read_text()
    # each recorded completion's reward is what IFEval's verifiers give it
    by_prompt = {r["prompt"]: r for r in ROWS}
    samples = [json.loads(line) for line in grpo.samples_path.read_text().splitlines()]
    assert samples
    for s in samples:
        row = by_prompt[s["prompt"]]
        want = verify(row["prompt"], s["completion"], row["instruction_id_list"], row["kwargs"])
        assert s["reward"] == (want["instruction_strict"] or 0.0)
    arena = RunDir(runs / stages["heldout"]["run_id"])
    wr = json.loads(arena.winrate_path.read_text())
    assert wr["prompts_done"] == 6 and [j["name"] for j in wr["judges"]] == ["ifeval"]
    for model in wr["models"]:
        m = wr["ifeval"]["models"][model]
        assert m["n"] == 6 and m["prompt_strict"] <= m["instruction_strict"] <= m["instruction_loose"]
    assert "agreement_with_checkers" not in wr["ifeval"]  # no checkers judge, and no constraints
    answer = json.loads(arena.samples_path.read_text().splitlines()[0])
    assert [i["id"] for i in answer["ifeval"]["instructions"]] == ROWS[0]["instruction_id_list"]
