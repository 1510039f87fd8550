"""The one path policy: every UI entry point that takes a path, walked through a live server
with a traversal string, an absolute path outside the served folders, and a symlink inside
them that points out. Each is refused with the reason; no run starts, nothing is written.
A missing file inside a served folder says "does not exist"."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from backends.core.access.paths import PathMissing, PathRefused, resolve_user_path
from backends.core.spec.config import read_preset
from studio.logic import forms
from tests.studio.conftest import ROOT, Server, free_port

REFUSED = "not under the folders this studio serves"
SECRET = "a-secret-outside-the-runs-folder"
PAIR = {"prompt": "p", "chosen": "good", "rejected": "bad"}
SFT_ROW = {"prompt": "p", "completion": "c"}


def test_resolve_user_path_rules(tmp_path: Path) -> None:
    root, other = tmp_path / "data", tmp_path / "outside"
    root.mkdir(), other.mkdir()
    (root / "pairs.jsonl").write_text("{}\n")
    (other / "secret.jsonl").write_text("{}\n")
    assert resolve_user_path("pairs.jsonl", [root]) == (root / "pairs.jsonl").resolve()
    assert resolve_user_path(str(root / "pairs.jsonl"), [root]).name == "pairs.jsonl"
    for bad in ("/etc/passwd", "../outside/secret.jsonl", str(other / "secret.jsonl"), "", "a\x00b"):
        with pytest.raises(PathRefused) as e:
            resolve_user_path(bad, [root])
        assert not isinstance(e.value, PathMissing), bad
    (root / "link.jsonl").symlink_to(other / "secret.jsonl")
    (root / "dirlink").symlink_to(other)
    for bad in ("link.jsonl", "dirlink/secret.jsonl", str(root / "link.jsonl")):
        with pytest.raises(PathRefused, match=REFUSED):
            resolve_user_path(bad, [root])
    with pytest.raises(PathMissing, match="does not exist"):
        resolve_user_path("missing.jsonl", [root])
    # a name missing under one root but present outside through another base is refused
    with pytest.raises(PathRefused, match=REFUSED):
        resolve_user_path("outside/secret.jsonl", [root], bases=[tmp_path])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Iterator[tuple[Server, Path]]:
    from studio.app import launch_app
    from studio.context import StudioContext

    tmp = tmp_path_factory.mktemp("paths")
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "pairs.jsonl").write_text(json.dumps(PAIR) + "\n")
    (outside / "sft.jsonl").write_text(json.dumps(SFT_ROW) + "\n")
    shutil.copytree(tiny_model, outside / "model")  # a real model folder, outside the roots
    data = tmp / "data"
    data.mkdir()
    (data / "link.jsonl").symlink_to(outside / "pairs.jsonl")
    (data / "link-sft.jsonl").symlink_to(outside / "sft.jsonl")
    (data / "link-model").symlink_to(outside / "model")
    (data / "served.jsonl").write_text(json.dumps(SFT_ROW) + "\n")
    run = outside / "run"  # a run directory outside the runs folder, with something to leak
    run.mkdir()
    (run / "config.yaml").write_text("method: sft\n")
    (run / "status.json").write_text(json.dumps({"state": "failed", "error": SECRET}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "train", "loss": 123.456}) + "\n")
    ctx = StudioContext.create(runs_dir=tmp / "runs", presets_dir=ROOT / "presets", data_dir=data)
    (tmp / "runs" / "link-run").symlink_to(run)
    port = free_port()
    app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", tmp / "runs", ctx), outside
    finally:
        ctx.stop_scheduler()
        app.close()


def bad_paths(outside: Path, kind: str) -> list[str]:
    """A traversal string, an absolute path outside the roots, a symlink pointing out."""
    name = {"pairs": "pairs.jsonl", "sft": "sft.jsonl", "model": "model", "run": "run"}[kind]
    link = {"pairs": "link.jsonl", "sft": "link-sft.jsonl", "model": "link-model", "run": "link-run"}[kind]
    return [f"../outside/{name}", str(outside / name), link]


def call(client: Client, api: str, *args: Any) -> str:
    """The endpoint's message, or the refusal Gradio sent back as an error."""
    try:
        out = client.predict(*args, api_name=api)
    except Exception as e:  # noqa: BLE001 - gradio_client raises AppError with the message
        return str(e)
    return json.dumps(out)


def form(preset: str, **changes: Any) -> list[Any]:
    values = forms.form_values(read_preset(ROOT / "presets" / preset))
    keys = [f.key for f in forms.form_fields()]
    for key, value in changes.items():
        values[keys.index(key.replace("__", "."))] = value
    return values


def train_dataset(c: Client, p: str) -> str:
    return call(c, "/launch", "tiny/sft.yaml", "", *form("tiny/sft.yaml", data__dataset=p))


def train_preview(c: Client, p: str) -> str:
    return call(c, "/preview", "tiny/dpo.yaml", *form("tiny/dpo.yaml", data__dataset=p))


def train_field(preset: str, key: str) -> Callable[[Client, str], str]:
    return lambda c, p: call(c, "/launch", preset, "", *form(preset, **{key: p}))


def train_model(c: Client, p: str) -> str:
    return call(c, "/launch", "tiny/sft.yaml", "", *form("tiny/sft.yaml", model__name_or_path=p))


def train_reward_model(c: Client, p: str) -> str:
    rewards = f"[{{kind: reward_model, path: '{p}'}}]"
    return call(c, "/launch", "tiny/grpo.yaml", "", *form("tiny/grpo.yaml", rl__rewards=rewards))


def pipeline(c: Client, p: str, where: str) -> str:
    text = (ROOT / "presets/tiny/sft_dpo.yaml").read_text()
    stage = {
        "data": f"  - {{stage: x, method: sft, data: {{dataset: '{p}'}}}}\n",
        "model": f"  - {{stage: x, method: sft, model: {{name_or_path: '{p}'}}}}\n",
        "target": f"  - {{stage: x, method: select, select: {{target_dataset: '{p}'}}}}\n",
        "heldout": f"  - {{stage: x, method: reward, reward: {{eval_dataset: '{p}'}}}}\n",
        "accelerate": f"  - {{stage: x, method: sft, launch: {{accelerate_config: '{p}'}}}}\n",
    }[where]
    head = text.split("stages:")[0]
    return call(c, "/launch", "tiny/sft_dpo.yaml", head + "stages:\n" + stage, *form("tiny/sft.yaml"))


def arena(
    c: Client, models: list[str], prompts: str = "builtin:tasks", judges=("checkers",), rm="", llm=""
) -> str:
    return call(c, "/arena_start", models, prompts, "", 3, 8, 0.5, list(judges), rm, llm)


def data_rows(c: Client, p: str) -> str:
    """The rows view warns (a toast the client does not see) and shows nothing of the file."""
    out = call(c, "/data_rows", p, "builtin:tiny-llama", 1, "", "all rows", 128)
    return REFUSED if "good" not in out and "rejected" not in out else out


def no_leak(out: str) -> str:
    """Run ids are names under the runs folder: what lies outside it never shows."""
    return REFUSED if SECRET not in out and "123.456" not in out else out


def tokenizer(c: Client, p: str) -> str:
    """A refused tokenizer folder is not read: the data view says it has none."""
    out = call(c, "/data_open", "served.jsonl", p, 128)
    return REFUSED if "No tokenizer on disk" in out else out


# (entry point, kind of file it wants, call)
ENTRY_POINTS: list[tuple[str, str, Callable[[Client, str], str]]] = [
    ("train form: data.dataset", "sft", train_dataset),
    ("train preview: data.dataset", "pairs", train_preview),
    ("train form: model.name_or_path", "model", train_model),
    ("train form: reward model path", "model", train_reward_model),
    ("pipeline editor: a stage's dataset", "sft", lambda c, p: pipeline(c, p, "data")),
    ("pipeline editor: a stage's model", "model", lambda c, p: pipeline(c, p, "model")),
    (
        "train form: launch.accelerate_config",
        "sft",
        train_field("tiny/sft.yaml", "launch__accelerate_config"),
    ),
    ("train form: reward.eval_dataset", "pairs", train_field("tiny/reward.yaml", "reward__eval_dataset")),
    ("pipeline editor: select.target_dataset", "sft", lambda c, p: pipeline(c, p, "target")),
    ("pipeline editor: reward.eval_dataset", "pairs", lambda c, p: pipeline(c, p, "heldout")),
    ("pipeline editor: launch.accelerate_config", "sft", lambda c, p: pipeline(c, p, "accelerate")),
    ("arena: a model", "model", lambda c, p: arena(c, ["builtin:tiny-llama", p])),
    (
        "arena: prompt file",
        "sft",
        lambda c, p: arena(c, ["builtin:tiny-llama", "builtin:smollm2-135m-instruct"], p),
    ),
    (
        "arena: reward-model judge",
        "model",
        lambda c, p: arena(
            c, ["builtin:tiny-llama", "builtin:smollm2-135m-instruct"], judges=["reward_model"], rm=p
        ),
    ),
    (
        "arena: llm judge",
        "model",
        lambda c, p: arena(c, ["builtin:tiny-llama", "builtin:smollm2-135m-instruct"], judges=["llm"], llm=p),
    ),
    ("label: session source", "pairs", lambda c, p: call(c, "/label_create", p, "s")),
    ("label: candidates model", "model", lambda c, p: call(c, "/label_generate", p, "", "builtin:tasks", 2)),
    (
        "label: candidates prompts",
        "sft",
        lambda c, p: call(c, "/label_generate", "builtin:tiny-llama", "", p, 2),
    ),
    ("data: open", "pairs", lambda c, p: call(c, "/data_open", p, "builtin:tiny-llama", 128)),
    ("data: rows", "pairs", lambda c, p: data_rows(c, p)),
    ("data: mixture part", "sft", lambda c, p: call(c, "/data_mix", f"builtin:tasks:sft: 3\n{p}: 1", "m", 0)),
    ("data: tokenizer folder", "model", tokenizer),
    (
        "monitor: run id (chart, config diff, sweep panel)",
        "run",
        lambda c, p: no_leak(call(c, "/monitor_select", [p], ["loss"], 0.0, ["train"])),
    ),
    ("train: run details id", "run", lambda c, p: no_leak(call(c, "/run_details", p))),
    ("arena: comparison id", "run", lambda c, p: no_leak(call(c, "/arena_show", p, False))),
]


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_every_path_entry_point_refuses_paths_outside_the_roots(served, entry) -> None:
    server, outside = served
    _, kind, run = entry
    client = Client(server.url, verbose=False)
    data = server.ctx.data_dir
    before, runs = snapshot(data), snapshot(server.runs_dir)
    sessions = server.ctx.store.sessions()
    for bad in bad_paths(outside, kind):
        out = run(client, bad)
        assert REFUSED in out, (bad, out)
    assert snapshot(server.runs_dir) == runs  # no run, no pipeline
    assert snapshot(data) == before  # no mixture, no prompt file, no export
    assert server.ctx.store.sessions() == sessions


def test_a_refused_path_reads_the_same_whether_or_not_it_exists(served) -> None:
    """The preview is no oracle for the host's files: an existing and a missing file outside
    the served folders get the same answer, the path aside."""
    server, outside = served
    client = Client(server.url, verbose=False)
    for key in ("launch__accelerate_config", "data__dataset"):
        said = []
        for p in (outside / "sft.jsonl", outside / "nothere.yaml"):
            errors, *_ = client.predict(
                "tiny/sft.yaml", *form("tiny/sft.yaml", **{key: str(p)}), api_name="/preview"
            )
            said.append(errors.replace(str(p), "PATH"))
        assert REFUSED in said[0] and said[0] == said[1], (key, said)


def test_a_missing_file_inside_the_roots_does_not_exist(served) -> None:
    server, _ = served
    client = Client(server.url, verbose=False)
    for out in (
        call(client, "/data_open", "nothere.jsonl", "builtin:tiny-llama", 128),
        call(client, "/label_create", "nothere.jsonl", "s"),
        train_dataset(client, str(server.ctx.data_dir / "nothere.jsonl")),
    ):
        assert "does not exist" in out and REFUSED not in out, out


def test_hub_ids_and_served_files_pass(served) -> None:
    server, _ = served
    client = Client(server.url, verbose=False)
    (server.ctx.data_dir / "pairs.jsonl").write_text(json.dumps(PAIR) + "\n")
    errors, yaml_text, *_ = client.predict(
        "tiny/dpo.yaml", *form("tiny/dpo.yaml", data__dataset="pairs.jsonl"), api_name="/preview"
    )
    assert errors == "" and f"dataset: {server.ctx.data_dir / 'pairs.jsonl'}" in yaml_text  # made absolute
    errors, yaml_text, *_ = client.predict(
        "tiny/sft.yaml", *form("tiny/sft.yaml", model__name_or_path="someorg/some-model"), api_name="/preview"
    )
    assert errors == "" and "name_or_path: someorg/some-model" in yaml_text  # a hub id stays one
