"""Data tab logic: every TRL format detected, broken rows named, paging, search, stats,
mixtures; and the tab through the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client

from studio.logic.dataview import (
    column_types,
    compute_stats,
    filter_sample,
    open_dataset,
    search,
)
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
        {"prompt": "p2", "chosen": 3, "rejected": "x " * 400},
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
    assert "`chosen` is empty" in text and "`chosen` is a int" in text and "line 4" in text
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
    summary, problems, _, table = client.predict(str(path), "builtin:tiny-llama", 256, api_name="/data_open")
    assert "**5 rows**" in summary and "preference (conversational" in summary and "dpo" in summary
    assert "`prompt` conversation" in summary
    assert "5 duplicate prompts" not in problems and "4 duplicate prompts" in problems
    assert table["headers"] == ["prompt", "chosen", "rejected"]
    request = client.predict(str(path), api_name="/data_train")
    assert request.startswith(f"reward|{path}|")  # the first method that takes preference pairs
    from studio.tabs.data import tokenizer_dir

    assert tokenizer_dir(studio.ctx, "/usr/share") is None  # typed model folders follow the same rule
    refused, *_ = client.predict("/etc/passwd", "builtin:tiny-llama", 256, api_name="/data_open")
    assert "Cannot open" in refused and "is not under the folders this studio serves" in refused


def test_line_index_is_exact_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.core.jsonl import JsonlIndex

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
