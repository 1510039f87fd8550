"""Data tab logic: every TRL format detected, broken rows named, paging, search, stats,
mixtures; and the tab through the app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gradio_client import Client

from studio.logic.datastats import column_types, compute_stats, filter_sample, search
from studio.logic.dataview import open_dataset
from studio.logic.mixtures import mix, parse_spec
from studio.logic.templates import load_template

CONV = [{"role": "user", "content": "hi"}]
FORMATS = {
    "language_modeling": {"text": "hello world"},
    "conversational_language_modeling": {"messages": CONV + [{"role": "assistant", "content": "yo"}]},
    "prompt_completion": {"prompt": "p", "completion": "c"},
    "preference": {
        "prompt": CONV,
        "chosen": [{"role": "assistant", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}],
    },
    "implicit_preference": {"chosen": "p a", "rejected": "p b"},
    "unpaired_preference": {"prompt": "p", "completion": "c", "label": True},
    "prompt_only": {"prompt": CONV},
}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_trl_format_is_detected(tmp_path: Path, name: str) -> None:
    view = open_dataset("f", write(tmp_path / "f.jsonl", [FORMATS[name]] * 3))
    assert view.fmt is not None and view.fmt.name == name and view.rows_total == 3
    conversational = {"conversational_language_modeling", "preference", "prompt_only"}
    assert view.fmt.conversational == (name in conversational)


def test_other_file_types_and_unknown_columns(tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_list([{"prompt": "p", "chosen": "a", "rejected": "b"}] * 4)
    ds.to_csv(str(tmp_path / "f.csv"))
    ds.to_parquet(str(tmp_path / "f.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for p in ("f.csv", "f.parquet", "saved"):
        view = open_dataset(p, tmp_path / p)
        assert view.fmt.name == "preference" and view.rows_total == 4 and view.page(0, 2)[0]["chosen"] == "a"
    view = open_dataset("x", write(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}]))
    assert view.fmt is None and view.columns == ["question", "answer"]


def test_broken_rows_are_named_and_stats_count_problems(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p1", "chosen": "a", "rejected": "b"},
        {"prompt": "p1", "chosen": "", "rejected": "b"},
        {"prompt": "p2", "chosen": "a", "rejected": "x " * 400},
        {"prompt": "p3", "chosen": 3, "rejected": "b"},
    ]
    path = write(tmp_path / "f.jsonl", rows)
    with open(path, "a") as f:
        f.write("{not json\n")
    view = open_dataset("f", path)
    assert column_types(view) == {"prompt": "text", "chosen": "text", "rejected": "text"}
    assert [r["prompt"] for r in filter_sample(view, "duplicate prompts", None, None, 100)] == ["p1"]
    assert len(filter_sample(view, "problems", None, None, 100)) == 3
    assert [r["prompt"] for r in filter_sample(view, "over max length", None, None, 100)] == ["p2"]
    stats = compute_stats(view, None, None, max_length=100)
    text = "\n".join(stats.broken)
    assert "row 2: `chosen` is empty" in text and "row 4 `chosen` is int" in text and "line 5" in text
    assert stats.duplicate_prompts == 1 and stats.empty == {"chosen": 1} and stats.over_max == 1
    assert stats.unit == "words"


def test_paging_search_and_chat_template(tmp_path: Path, tiny_model: str) -> None:
    path = write(tmp_path / "f.jsonl", [{"prompt": f"row {i}", "completion": f"c{i}"} for i in range(250)])
    view = open_dataset("f", path)
    assert [r["prompt"] for r in view.page(240, 20)] == [f"row {i}" for i in range(240, 250)]
    assert view.page(300, 5) == []
    assert [r["prompt"] for r in search(view, "ROW 17")] == ["row 17", *[f"row {i}" for i in range(170, 180)]]
    template = load_template(Path(tiny_model))
    assert (
        template.render(messages=CONV, add_generation_prompt=True)
        == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_mixture_keeps_sources_and_refuses_mixed_formats(tmp_path: Path) -> None:
    a = open_dataset(
        "a", write(tmp_path / "a.jsonl", [{"prompt": f"a{i}", "completion": "x"} for i in range(10)])
    )
    b = open_dataset(
        "b", write(tmp_path / "b.jsonl", [{"prompt": f"b{i}", "completion": "y"} for i in range(40)])
    )
    parts = parse_spec("a.jsonl: 6\nb.jsonl: 0.25  # a quarter\n")
    n, notes = mix([(parts[0], a), (parts[1], b)], tmp_path / "m.jsonl", seed=3)
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert (
        n == 16
        and sum(r["source"] == "a.jsonl" for r in rows) == 6
        and sum(r["source"] == "b.jsonl" for r in rows) == 10
    )
    assert rows != sorted(rows, key=lambda r: r["source"])  # shuffled
    c = open_dataset("c", write(tmp_path / "c.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}]))
    with pytest.raises(ValueError, match="must share one format"):
        mix([(parts[0], a), (parts[1], c)], tmp_path / "n.jsonl")
    with pytest.raises(ValueError, match="line 1"):
        parse_spec("nonsense\nb.jsonl: 2")


def test_data_tab_opens_a_file_and_sends_it_to_train(studio) -> None:
    path = write(studio.ctx.data_dir / "prefs.jsonl", [FORMATS["preference"]] * 5)
    client = Client(studio.url, verbose=False)
    summary, problems, _, table, raw, read, _ = client.predict(
        str(path), "builtin:tiny-llama", 256, api_name="/data_open"
    )
    assert "**5 rows**" in summary and "preference (conversational" in summary and "dpo" in summary
    assert "`prompt` conversation" in summary and "TRL preference" in summary
    assert "5 duplicate prompts" not in problems and "4 duplicate prompts" in problems
    assert table["headers"] == ["prompt", "chosen", "rejected"]
    assert json.loads(raw) == FORMATS["preference"] == json.loads(read)
    request = json.loads(client.predict(str(path), api_name="/data_train"))
    # the first method that takes preference pairs; TRL columns need no mapping
    assert request["method"] == "reward" and request["dataset"] == str(path)
    assert request["layout"] == "trl" and request["columns"] == {}
    from studio.tabs.data_handlers import tokenizer_dir

    assert tokenizer_dir(studio.ctx, "/usr/share") is None  # typed model folders follow the same rule
    refused, *_, table = client.predict("/etc/passwd", "builtin:tiny-llama", 256, api_name="/data_open")[:4]
    assert "Cannot open" in refused and "is not under the folders this studio serves" in refused
    assert table["value"]["data"] == []  # the last dataset's rows are gone


def test_line_index_is_exact_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.core.data.jsonl import JsonlIndex

    monkeypatch.setattr(JsonlIndex, "CHUNK", 37)  # many boundaries, some inside lines
    rows = [{"prompt": "x" * (i % 13), "completion": str(i)} for i in range(300)]
    view = open_dataset("f", write(tmp_path / "f.jsonl", rows))
    assert view.rows_total == 300
    assert [r["completion"] for r in view.page(0, 300)] == [str(i) for i in range(300)]
    assert sorted(int(r["completion"]) for r in view.sample(50, seed=1)) == sorted(
        {int(r["completion"]) for r in view.sample(50, seed=1)}
    )


def test_chat_template_renders_as_in_training(embedded_model: str, tiny_model: str) -> None:
    """The Data tab's rendering (transformers' renderer, no torch) gives the same tokens as the
    tokenizer's apply_chat_template that training uses, for the embedded and the tiny model."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from studio.logic.templates import load_template

    chats = [
        [{"role": "user", "content": "Write a haiku about rivers."}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi {{ there }}"},
            {"role": "assistant", "content": 'Hello! {"a": 1}'},
            {"role": "user", "content": "And again?"},
        ],
    ]
    for folder in (embedded_model, tiny_model):
        tok = AutoTokenizer.from_pretrained(folder)
        fast = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        template = load_template(Path(folder))
        assert template is not None
        for chat in chats:
            for gen in (False, True):
                want = tok.apply_chat_template(
                    chat, tokenize=True, add_generation_prompt=gen, return_dict=False
                )
                got = fast.encode(
                    template.render(chat, add_generation_prompt=gen), add_special_tokens=False
                ).ids
                assert got == want, (folder, chat, gen)


SHAREGPT = {
    "messages": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi!"}],
    "system": "Be brief.",
}


def test_layouts_are_found_and_rows_shown_as_training_reads_them(tmp_path: Path) -> None:
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Add.", "input": "2 and 2", "output": "4"}] * 3))
    view = open_dataset("a", alpaca)
    assert view.plan.layout.name == "alpaca" and view.fmt.name == "prompt_completion"
    assert view.read_columns == ["prompt", "completion"]
    (row,) = view.read(view.numbered_page(0, 1))
    assert row["prompt"] == [{"role": "user", "content": "Add.\n2 and 2"}]
    view = open_dataset("s", write(tmp_path / "chat.jsonl", [SHAREGPT] * 3))
    assert view.plan.layout.name == "sharegpt" and view.plan.fields == {
        "conversations": "messages",
        "system": "system",
    }
    (row,) = view.read(view.numbered_page(2, 1))
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    qa = write(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}] * 3)
    view = open_dataset("q", qa)
    assert view.plan is None and "`data.columns: {prompt: question, completion: answer}`" in view.plan_error
    view = open_dataset("q", qa, mapping={"prompt": "question", "completion": "answer"})
    assert (
        view.fmt.name == "prompt_completion" and view.read(view.numbered_page(0, 1))[0]["completion"] == "a"
    )


def test_mapping_round_trips_from_the_data_tab_to_the_preset(tmp_path: Path) -> None:
    """Data tab (a mapping typed) -> "Train on this" -> the Train form -> the config it launches
    and the headless command it shows: the same mapping, and the run reads the same rows."""
    import shlex

    from backends.core.data.preflight import preflight
    from backends.core.spec.config import apply_overrides, read_preset, validate_config
    from studio.logic import forms
    from studio.logic.handoff import TrainRequest, parse_mapping, preset_for, request_for, request_values

    root = Path(__file__).resolve().parents[2] / "presets"
    qa = write(tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(4)])
    view = open_dataset(str(qa), qa, mapping=parse_mapping("{prompt: question, completion: answer}"))
    req = TrainRequest.from_text(request_for(view, str(qa)).to_text())
    # the request survives its JSON round trip, with every method the data fits (a preset of
    # one of them keeps the data)
    fits = ("sft", "grpo", "rloo", "ppo", "sample", "select", "eval")
    assert req == TrainRequest("sft", str(qa), "trl", {"prompt": "question", "completion": "answer"}, fits)
    presets = sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))
    from studio.logic.handoff import preset_method

    name = preset_for(req.method, presets, "tiny/dpo.yaml", lambda p: preset_method(root / p))
    assert name == "tiny/sft.yaml"
    raw = read_preset(root / name)
    values = request_values(req, raw, name)
    cfg, _ = forms.form_to_config(raw, values, "Train form")
    assert cfg.name == "sft-qa" and cfg.data.layout == "trl"
    assert cfg.data.columns == {"prompt": "question", "completion": "answer"}
    sets = forms.overrides(raw, values)
    assert "data.columns={prompt: question, completion: answer}" in sets
    again = validate_config(apply_overrides(read_preset(root / name), sets), "headless command")
    assert again.data == cfg.data
    command = shlex.split(forms.headless_command(name, sets))  # what the Train tab shows to copy
    assert command[command.index("data.columns={prompt: question, completion: answer}") - 1] == "--set"
    assert preflight(again).fields == {"prompt": "question", "completion": "answer"}


def test_train_on_this_picks_a_preset_of_the_method_beside_the_selected_one() -> None:
    from studio.logic.handoff import preset_for, run_name

    presets = ["dpo.yaml", "ipo.yaml", "reward.yaml", "sft.yaml", "tiny/reward.yaml", "tiny/sft.yaml"]
    method = {"ipo.yaml": "dpo"}

    def method_of(p: str) -> str:
        return method.get(p, Path(p).stem)

    assert preset_for("reward", presets, "sft.yaml", method_of) == "reward.yaml"
    assert preset_for("reward", presets, "tiny/sft.yaml", method_of) == "tiny/reward.yaml"
    assert preset_for("dpo", presets, "tiny/sft.yaml", method_of) == "dpo.yaml"  # none in tiny/: anywhere
    assert preset_for("kto", presets, "sft.yaml", method_of) is None
    assert run_name("reward", "/data/my prefs.v2.jsonl") == "reward-my-prefs-v2"


def test_browser_opens_a_sharegpt_file_and_trains_on_it(studio, page, tmp_path: Path) -> None:
    """The Data tab says which layout it found, shows a stored row beside the row as read, and
    "Train on this" brings the layout and mapping into the Train form with a fitting preset and
    name; from a preference file it switches to the reward preset (it stayed on sft.yaml)."""
    from tests.studio.test_browser import choose, shot

    chat = write(studio.ctx.data_dir / "chat.jsonl", [SHAREGPT] * 6)
    prefs = write(studio.ctx.data_dir / "prefs.jsonl", [FORMATS["preference"]] * 6)
    page.goto(studio.url)
    source = page.locator("#data-source input")

    def open_file(path: Path) -> None:
        source.click()
        source.fill(str(path))
        page.keyboard.press("Escape")
        page.locator("#data-open").click()
        page.locator("#data-summary").get_by_text(f"{6} rows").wait_for(timeout=30_000)

    open_file(chat)
    summary = page.locator("#data-summary").inner_text()
    assert "Read as ShareGPT (found from the columns): messages -> messages (human -> user" in summary
    assert "Fits: sft" in summary
    read = page.locator("#data-read-row")
    read.get_by_text('"assistant"').first.wait_for(timeout=10_000)
    assert '"from": "human"' in page.locator("#data-raw-row").inner_text()
    assert '"role": "system"' in read.inner_text() and '"content": "Say hi."' in read.inner_text()
    page.locator("#data-hist .main-svg").first.wait_for(timeout=30_000)
    shot(page, tmp_path, "data-tab.png")
    page.locator("#data-train").click()
    page.locator("#launch-button").wait_for(timeout=30_000)

    def field(key: str) -> str:
        return page.locator(
            f"#field-{key.replace('.', '-')} input, #field-{key.replace('.', '-')} textarea"
        ).first.input_value()

    page.wait_for_function(
        "() => [...document.querySelectorAll('#field-name input, #field-name textarea')].some(e => e.value === 'sft-chat')",
        timeout=30_000,
    )
    assert field("data.dataset") == str(chat) and field("data.layout") == "sharegpt"
    assert field("data.columns") == "{conversations: messages}"
    page.get_by_role("tab", name="Data").click()
    open_file(prefs)
    page.locator("#data-train").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#field-name input, #field-name textarea')].some(e => e.value === 'reward-prefs')",
        timeout=30_000,
    )
    assert field("method") == "reward" and field("data.dataset") == str(prefs)
    preset = page.get_by_label("Preset", exact=True).input_value()
    assert preset == "reward.yaml"
    page.get_by_text("Resolved config and commands").click()
    # the preview ran the preflight on reward + this file and shows the command to repeat it
    page.get_by_text("--set name=reward-prefs").first.wait_for(timeout=30_000)
    assert "Fix before launching" not in page.locator("#train-errors").inner_text()
    shot(page, tmp_path, "train-from-data.png")
    # another preset of a method this data fits keeps it, and says so
    choose(page, "Preset", "dpo.yaml")
    note = page.locator("#rerun-note")
    note.get_by_text("Kept the dataset").wait_for(timeout=30_000)
    assert field("method") == "dpo" and field("data.dataset") == str(prefs)
    assert field("name") == "dpo-prefs"
    # one it does not fit loads the preset's own data, with a word about why
    choose(page, "Preset", "sft.yaml")
    note.get_by_text("fits reward, dpo").wait_for(timeout=30_000)
    assert field("method") == "sft" and field("data.dataset") != str(prefs)
    shot(page, tmp_path, "train-preset-after-data.png")


def test_data_tab_starts_an_augmentation_of_a_users_file(
    studio, tiny_model: str, tiny_reward_model: str
) -> None:
    """The Data tab's action starts an `sda` run on the open file, with its layout and mapping."""
    import json as _json
    import time

    from gradio_client import Client

    from backends.core.data.jsonl import read_jsonl
    from backends.core.runs.rundir import RunDir
    from studio.tabs.data_actions import ACTIONS, action_values

    rows = [
        {
            "question": f"Tell me about topic {i}, please, in a few words.",
            "good": f"A fine answer {i}.",
            "bad": "no",
        }
        for i in range(12)
    ]
    path = studio.ctx.data_dir / "mine.jsonl"
    path.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    mapping = "{prompt: question, chosen: good, rejected: bad}"
    preset, values = action_values(
        ACTIONS[0], str(path), "auto", {"prompt": "question"}, "", "checkers", "", 8, ""
    )
    assert (
        preset == "sda.yaml"
        and values["sda.new_prompts"] == 8
        and values["data.columns"] == {"prompt": "question"}
    )
    client = Client(studio.url, verbose=False)

    def augment(judge: str, rm: str) -> str:
        """The Data tab's Start button: augment the open file with the tiny model."""
        args = (ACTIONS[0], str(path), "auto", mapping, "builtin:tiny-llama", judge, rm, 6, "")
        return str(client.predict(*args, api_name="/data_action"))

    msg = augment("reward_model", "")
    assert "Not started" in msg and "`reward_model` judge needs `path`" in msg or "needs `path`" in msg
    assert not any(studio.runs_dir.iterdir())  # refused: nothing was created
    # the checkers judge prompts by the embedded tasks' constraints: these have none, so
    # nothing could be judged; refused before minutes of writing, with what to do instead
    msg = augment("checkers", "")
    assert "Not started" in msg and "`sda.judge` is checkers, but none of the first 12 prompts" in msg, msg
    assert not any(studio.runs_dir.iterdir())
    rm = studio.ctx.data_dir / "rm"  # a reward model in a served folder
    shutil.copytree(tiny_reward_model, rm)
    msg = augment("reward_model", str(rm))
    assert msg.startswith("Started `sda` run"), msg
    run = RunDir(studio.runs_dir / msg.split("`")[3])
    deadline = time.time() + 300
    while time.time() < deadline and not run.state().is_finalized:
        time.sleep(1)
    assert run.state().value == "succeeded", run.read_status()
    out = read_jsonl(run.data_path("pairs"))
    assert [r["source"] for r in out].count("original") == 12 and out[0][
        "chosen"
    ]  # the user's rows, read through the mapping
