"""The data people bring: each public layout (made up here, never downloaded) trains a tiny run
for two steps as it is, or is refused before a run directory exists with a message naming the
columns, the row and the nearest layout. The worker reads rows through the same plan as the
preflight, so what the preflight passes is what training sees."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.core.data.dataplan import DataFormatError, resolve_plan
from backends.core.data.preflight import preflight
from backends.core.pipelines.headless import run_headless
from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import list_runs
from backends.core.spec.config import ConfigError, RunConfig, load_preset

ROOT = Path(__file__).resolve().parents[2]
N = 12  # rows per made-up file: enough for two steps of every method at batch 4


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def turns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def alpaca(d: Path) -> Path:  # a JSON array, as Alpaca ships
    rows = [
        {"instruction": f"Name a colour ({i}).", "input": "" if i % 2 else "One word.", "output": "blue"}
        for i in range(N)
    ]
    (d / "alpaca.json").write_text(json.dumps(rows))
    return d / "alpaca.json"


def sharegpt(d: Path) -> Path:
    conv = [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi!"}]
    return jsonl(d / "sharegpt.jsonl", [{"conversations": conv, "system": "Be brief."}] * N)


def dolly(d: Path) -> Path:
    row = {
        "instruction": "Sum it up.",
        "context": "Cats nap.",
        "response": "Naps.",
        "category": "summarization",
    }
    return jsonl(d / "dolly.jsonl", [row] * N)


def shp(d: Path) -> Path:
    path = d / "shp.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["post_id", "history", "human_ref_A", "human_ref_B", "labels", "score_A", "score_B"])
        for i in range(N):
            w.writerow([f"p{i}", f"Best tea? {i}", "Green.", "Coffee.", i % 2, 12, 3])
    return path


def ultrafeedback(d: Path) -> Path:
    rows = []
    for i in range(N):
        user = ("user", f"Capital of France? {i}")
        rows.append(
            {
                "prompt": user[1],
                "prompt_id": str(i),
                "chosen": turns(user, ("assistant", "Paris.")),
                "rejected": turns(user, ("assistant", "Lyon.")),
                "messages": turns(user, ("assistant", "Paris.")),
                "score_chosen": 9.0,
                "score_rejected": 2.0,
            }
        )
    return jsonl(d / "ultrafeedback.jsonl", rows)


def typed(d: Path) -> Path:
    def part(t: str) -> list[dict[str, str]]:
        return [{"type": "text", "text": t}]

    row = {
        "messages": [
            {"role": "user", "content": part("Hi?")},
            {"role": "assistant", "content": part("Hello.")},
        ]
    }
    return jsonl(d / "typed.jsonl", [row] * N)


def hh(d: Path) -> Path:
    row = {
        "chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away.",
    }
    return jsonl(d / "hh.jsonl", [row] * N)


def trl_pairs(d: Path) -> Path:
    row = {
        "prompt": turns(("user", "2+2?")),
        "chosen": turns(("assistant", "4")),
        "rejected": turns(("assistant", "5")),
    }
    return jsonl(d / "pairs.jsonl", [row] * N)


def kto(d: Path) -> Path:
    rows = [{"prompt": "2+2?", "completion": "4" if i % 2 else "5", "label": bool(i % 2)} for i in range(N)]
    return jsonl(d / "kto.jsonl", rows)


def saved(d: Path) -> Path:
    import datasets

    rows = [{"prompt": "2+2?", "chosen": " 4", "rejected": " 5"}] * N
    datasets.Dataset.from_list(rows).save_to_disk(str(d / "saved"))
    return d / "saved"


def prompts(d: Path) -> Path:
    return jsonl(d / "prompts.jsonl", [{"prompt": f"Write a word {i}."} for i in range(N)])


VOWELS = 'rl.rewards=[{kind: function, path: "tests.backends.rl_rewards:vowel_share"}]'
# (file maker, method, layout it is read as, extra --set)
TRAINS = {
    "alpaca": (alpaca, "sft", "alpaca", []),
    "sharegpt": (sharegpt, "sft", "sharegpt", []),
    "dolly": (dolly, "sft", "dolly", []),
    "shp": (shp, "reward", "shp", ["data.min_score_gap=5"]),
    "ultrafeedback": (ultrafeedback, "dpo", "ultrafeedback", []),
    "typed_content": (typed, "sft", "trl", []),
    "hh_rlhf": (hh, "dpo", "hh", []),
    "trl_conversational_pairs": (trl_pairs, "reward", "trl", []),
    "kto": (kto, "kto", "trl", []),
    "save_to_disk": (saved, "reward", "trl", []),
    "prompts_with_a_function_reward": (prompts, "grpo", "trl", [VOWELS]),
}


@pytest.fixture()
def worker() -> Iterator[Callable[[Path], int]]:
    """The worker's entry point in this process (a subprocess per run would spend most of the
    test importing torch); the SIGTERM handler it installs is put back afterwards."""
    from backends.worker.run import main

    previous = signal.getsignal(signal.SIGTERM)
    yield lambda path: main([str(path)])
    signal.signal(signal.SIGTERM, previous)


def config(method: str, data: Path, *sets: str) -> RunConfig:
    base = [f"data.dataset={data}", "data.eval_fraction=0", "data.max_samples=null"]
    base += ["train.max_steps=2", "train.eval_steps=null", "train.save_steps=100"]
    return load_preset(ROOT / "presets" / "tiny" / f"{method}.yaml", base + list(sets))


@pytest.mark.parametrize("case", list(TRAINS))
def test_each_layout_trains_two_steps_as_it_is(
    case: str,
    tmp_path: Path,
    runs_dir: Path,
    tiny_model: str,
    worker: Callable[[Path], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The headless path: preflight, run directory, then the worker on it."""
    make, method, layout, sets = TRAINS[case]
    cfg = config(method, make(tmp_path), *sets)
    plan = preflight(cfg)
    assert plan is not None and plan.layout.name == layout

    run = Launcher(runs_dir).create_run(cfg)
    assert worker(run.path) == 0
    assert run.read_status()["state"] == "succeeded"
    logged = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "train" and "loss" in r][-1] == 2
    assert f"data: read as {plan.describe()}" in capsys.readouterr().out  # the worker read it so


def test_converted_rows_are_what_training_sees(tmp_path: Path) -> None:
    from backends.core.data.formats import load_for_method

    def first(make: Any, method: str, *sets: str) -> dict[str, Any]:
        cfg = config(method, make(tmp_path), *sets)
        ds, _ = load_for_method(method, cfg.data, None)
        return ds[0]

    row = first(alpaca, "sft")
    assert row == {
        "prompt": turns(("user", "Name a colour (0).\nOne word.")),
        "completion": turns(("assistant", "blue")),
    }
    assert first(sharegpt, "sft")["messages"] == turns(
        ("system", "Be brief."), ("user", "Say hi."), ("assistant", "Hi!")
    )
    assert first(dolly, "sft")["prompt"] == turns(("user", "Sum it up.\n\nCats nap."))
    pair = first(shp, "reward")  # labels 0: B is preferred
    assert pair["chosen"] == turns(("assistant", "Coffee.")) and pair["rejected"] == turns(
        ("assistant", "Green.")
    )
    pair = first(ultrafeedback, "dpo")  # the user turn is not repeated in the answers
    assert pair["prompt"] == turns(("user", "Capital of France? 0")) and pair["chosen"] == turns(
        ("assistant", "Paris.")
    )
    assert first(typed, "sft")["messages"] == turns(("user", "Hi?"), ("assistant", "Hello."))
    pair = first(hh, "dpo")
    assert pair["prompt"] == turns(("user", "Hi?")) and pair["rejected"] == turns(("assistant", "Go away."))


def test_a_score_gap_keeps_only_clear_pairs(tmp_path: Path) -> None:
    from backends.core.data.formats import load_for_method

    path = ultrafeedback(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["score_chosen"] = 3.0 + i  # gaps 1 .. 12
    jsonl(path, rows)
    ds, _ = load_for_method("dpo", config("dpo", path, "data.min_score_gap=10").data, None)
    kept = sorted(r["prompt"][0]["content"] for r in ds)
    assert kept == sorted(f"Capital of France? {i}" for i in (9, 10, 11))  # gaps 10, 11, 12
    with pytest.raises(DataFormatError, match="no score columns"):
        preflight(config("sft", alpaca(tmp_path), "data.min_score_gap=1"))


def mapping_cases(d: Path) -> dict[str, tuple[RunConfig, list[str]]]:
    """A config the worker would refuse, and what its refusal must say."""
    qa = jsonl(d / "qa.jsonl", [{"question": "q", "answer": "a"}] * N)
    image = [{"type": "image", "image": "cat.png"}, {"type": "text", "text": "What is it?"}]
    pictures = [{"messages": turns(("user", "Hi"), ("assistant", "Yo"))}] * 3
    pictures.append(
        {"messages": [{"role": "user", "content": image}, {"role": "assistant", "content": "A cat."}]}
    )
    mixed = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 6
    mixed.append({"prompt": "p", "chosen": turns(("assistant", "a")), "rejected": "b"})
    shapes = [{"messages": turns(("user", "Hi"), ("assistant", "Yo"))}] * 4 + [
        {"messages": [{"role": "user"}]}
    ]
    return {
        "no layout fits": (
            config("sft", qa),
            [
                "['question', 'answer']",
                "fit no known layout",
                "nearest layout: TRL prompt completion",
                "`data.columns: {prompt: question, completion: answer}`",
            ],
        ),
        "a mapping names a missing column": (
            config("sft", qa, "data.columns={prompt: question, completion: reply}"),
            ["`data.columns.completion` names column `reply`", "['question', 'answer']"],
        ),
        "checkers without constraints": (
            config("grpo", prompts(d)),
            ["`rl.rewards[0]` is the checkers reward", "`constraints` column", "['prompt']"],
        ),
        "a checkers judge without constraints": (
            config("sample", prompts(d)),
            ["`sample.judge` is the checkers judge", "`constraints`"],
        ),
        "an image part": (
            config("sft", jsonl(d / "pics.jsonl", pictures)),
            ["row 4 `messages` turn 0", "`image`"],
        ),
        "text and conversations mixed": (
            config("dpo", jsonl(d / "mixed.jsonl", mixed)),
            ["row 7 has conversations in `prompt`, `chosen`, `rejected` where row 1 has text", "layout trl"],
        ),
        "a turn of the wrong shape in row 5": (
            config("sft", jsonl(d / "shapes.jsonl", shapes)),
            ["row 5 `messages` turn 0", "expected {role, content}"],
        ),
        "a layout named that does not fit": (
            config("sft", sharegpt(d), "data.layout=alpaca"),
            [
                "`data.layout` alpaca",
                "['conversations', 'system']",
                "instruction",
                "it reads as ShareGPT",
            ],
        ),
        "a format the method does not take": (
            config("sft", shp(d)),
            ["does not fit method `sft`", "read as SHP", "found preference"],
        ),
    }


REFUSALS = [
    "no layout fits",
    "a mapping names a missing column",
    "checkers without constraints",
    "a checkers judge without constraints",
    "an image part",
    "text and conversations mixed",
    "a turn of the wrong shape in row 5",
    "a layout named that does not fit",
    "a format the method does not take",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_before_a_run_directory_exists(
    case: str, tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, says = mapping_cases(tmp_path)[case]
    assert run_headless(cfg, str(runs_dir)) == 2
    err = capsys.readouterr().err
    for part in says:
        assert part in err, (part, err)
    assert list_runs(runs_dir) == [] and not any(runs_dir.iterdir())


def test_a_mapping_makes_the_refused_file_train_headless(
    tmp_path: Path, runs_dir: Path, tiny_model: str
) -> None:
    """Through the command a user types: refused without a mapping (no run directory), trained
    with `--set data.columns=...` and nothing rewritten."""
    qa = jsonl(tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(N)])
    before = qa.read_text()
    cmd = [
        sys.executable,
        "launch.py",
        "--headless",
        "--runs-dir",
        str(runs_dir),
        "--preset",
        "presets/tiny/sft.yaml",
    ]
    cmd += ["--set", f"data.dataset={qa}", "--set", "train.max_steps=2", "--set", "train.eval_steps=null"]
    refused = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "nearest layout" in refused.stderr and list_runs(runs_dir) == []
    cmd += ["--set", "data.columns={prompt: question, completion: answer}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = list_runs(runs_dir)
    assert (
        "data: read as TRL prompt completion (found from the columns): `question` as prompt, `answer` as completion"
        in run.log_path.read_text()
        and qa.read_text() == before
    )


def test_the_worker_names_a_bad_row_past_the_ones_the_preflight_reads(
    tmp_path: Path, runs_dir: Path, worker: Callable[[Path], int]
) -> None:
    """Row 150 is beyond the preflight's first 100: the worker refuses it by number, in one line."""

    rows = [{"messages": turns(("user", f"q{i}"), ("assistant", "a"))} for i in range(200)]
    rows[149] = {"messages": turns(("user", "q"), ("narrator", "once upon a time"))}
    cfg = config("sft", jsonl(tmp_path / "long.jsonl", rows))
    assert preflight(cfg) is not None
    run = Launcher(runs_dir).create_run(cfg)
    with pytest.raises(DataFormatError):
        worker(run.path)
    st = run.read_status()
    assert st["state"] == "failed" and "\n" not in st["error"]
    assert "row 150 `messages` turn 1 has role 'narrator'" in st["error"]


def test_mapping_is_checked_against_the_layout_fields(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"`data.columns` maps \['prompt'\], which layout alpaca does not have"
    ):
        config("sft", alpaca(tmp_path), "data.layout=alpaca", "data.columns={prompt: instruction}")
    with pytest.raises(ConfigError, match="`data.layout`"):
        config("sft", alpaca(tmp_path), "data.layout=llama")
    # a mapping narrows `auto` to the layouts that have those fields
    plan = resolve_plan(["q", "a"], [{"q": "x", "a": "y"}], "auto", {"instruction": "q", "output": "a"})
    assert plan.layout.name == "alpaca" and plan.fields == {"instruction": "q", "output": "a"}


def test_pipeline_stages_are_preflighted(tmp_path: Path) -> None:
    from backends.core.pipelines.pipeline import stage_dicts

    raw = {
        "stages": [
            {"stage": "sft", "method": "sft", "data": {"dataset": str(sharegpt(tmp_path))}},
            {
                "stage": "rl",
                "method": "grpo",
                "model": {"name_or_path": "@sft"},
                "data": {"dataset": str(prompts(tmp_path))},
            },
        ]
    }
    with pytest.raises(ConfigError) as e:
        stage_dicts(raw, "p.yaml")
    assert (
        len(e.value.problems) == 1 and "(rl)" in e.value.problems[0] and "constraints" in e.value.problems[0]
    )


def test_optional_fields_roles_and_implicit_prompts() -> None:
    def read(columns_rows: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        plan = resolve_plan(list(columns_rows[0]), columns_rows, **kw)
        return plan.convert(columns_rows[0], 1)

    row = read(
        [
            {
                "instruction": "And now?",
                "input": "",
                "output": "Bye.",
                "system": "Be kind.",
                "history": [["Hi", "Hello"]],
            }
        ]
    )
    assert row["prompt"] == turns(
        ("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello"), ("user", "And now?")
    )
    tool_call = [
        {"from": "human", "value": "Weather?"},
        {"from": "function_call", "value": '{"name": "weather"}'},
        {"from": "observation", "value": "sunny"},
    ]
    row = read(
        [
            {
                "conversations": tool_call,
                "chosen": {"from": "gpt", "value": "Sunny."},
                "rejected": {"from": "gpt", "value": "Rain."},
            }
        ]
    )
    assert [m["role"] for m in row["prompt"]] == ["user", "assistant", "tool"]
    assert row["chosen"] == turns(("assistant", "Sunny.")) and row["rejected"] == turns(
        ("assistant", "Rain.")
    )
    # TRL's implicit prompt, as conversations: the shared turns become an explicit prompt
    chat = turns(("user", "Hi"), ("assistant", "Hey"), ("user", "2+2?"))
    row = read([{"chosen": chat + turns(("assistant", "4")), "rejected": chat + turns(("assistant", "5"))}])
    assert row == {"prompt": chat, "chosen": turns(("assistant", "4")), "rejected": turns(("assistant", "5"))}
    with pytest.raises(ValueError, match="row 1: `chosen` and `rejected` are the same conversation"):
        read([{"chosen": chat, "rejected": chat}])
    # a prompt-completion file whose completion repeats the prompt turns
    row = read([{"prompt": "2+2?", "completion": turns(("user", "2+2?"), ("assistant", "4"))}])
    assert row == {"prompt": turns(("user", "2+2?")), "completion": turns(("assistant", "4"))}


def test_a_stage_whose_earlier_stage_wrote_unfit_data_is_refused_before_its_run(tmp_path: Path) -> None:
    """`@stage` data exists only once that stage ran: the pipeline preflights it when its stage
    starts, and refuses it before that stage's run directory exists."""
    from backends.core.pipelines.pipeline import PipelineRunner, create_pipeline
    from backends.core.runs.rundir import RunState
    from backends.core.spec.config import validate_config

    runs = tmp_path / "runs"
    raw = {
        "name": "p",
        "defaults": {"model": {"name_or_path": "builtin:tiny-llama"}},
        "stages": [
            {"stage": "pairs", "method": "sample"},
            {"stage": "rl", "method": "grpo", "data": {"dataset": "@pairs.pairs"}},  # pairs, not prompts
        ],
    }
    pdir = create_pipeline(raw, runs)
    launcher = Launcher(runs)
    # the sample stage as if it had run: a succeeded run with this config and its pairs
    done = launcher.create_run(
        validate_config({"name": "p-pairs", **raw["defaults"], "method": "sample"}, "t")
    )
    done.update_status(state=RunState.RUNNING)
    done.update_status(state=RunState.SUCCEEDED)
    done.data_dir.mkdir()
    pair = {
        "prompt": turns(("user", "Hi")),
        "chosen": turns(("assistant", "a")),
        "rejected": turns(("assistant", "b")),
    }
    jsonl(done.data_path("pairs"), [{**pair, "constraints": "[]"}] * 4)
    before = {r.run_id for r in list_runs(runs)}
    assert PipelineRunner(pdir, launcher).run() == RunState.FAILED
    st = pdir.read_status()
    assert st["error"].startswith("stage `rl` refused:") and "does not fit method `grpo`" in st["error"]
    assert [s["state"] for s in st["stages"]] == ["succeeded", "failed"]
    assert {r.run_id for r in list_runs(runs)} == before  # no run directory for the refused stage
