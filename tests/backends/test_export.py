"""`launch.py --export`: a LoRA run's model leaves the studio as a folder plain transformers
loads (no peft), with the adapter merged, the tokenizer and its chat template, the generation
config and a model card, and it answers with the same greedy tokens as the run's model; beside
it a GGUF file (llama.cpp's converter) that transformers reads back to the same tokens, and a
push to the Hub that is refused offline without touching the folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir
from tests.backends.test_sft import headless
from tests.conftest import ROOT


def export(
    run: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--export", str(run), "--to", str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> RunDir:
    runs = tmp_path_factory.mktemp("export-runs")
    sets = [
        "lora.enabled=true",
        "lora.r=4",
        "train.max_steps=4",
        "train.eval_steps=null",
        "train.learning_rate=5e-2",
    ]
    proc = headless(runs, *[a for s in sets for a in ("--set", s)])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (run,) = [RunDir(p) for p in runs.iterdir()]
    assert (run.model_dir / "adapter_config.json").exists()
    return run


def test_a_lora_run_exports_to_a_folder_plain_transformers_loads_with_the_same_tokens(
    lora_run: RunDir, tmp_path: Path, tiny_model: str
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backends.core.spec.config import ModelConfig
    from backends.worker.models import load_causal_lm

    out = tmp_path / "exported"
    proc = export(lora_run.path, out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "LoRA adapter merged into full weights" in proc.stdout
    files = {p.name for p in out.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "README.md",
    } <= files
    assert "adapter_config.json" not in files  # full weights: no peft needed to load it

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template  # the chat template travels with the tokenizer
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    theirs = load_causal_lm(ModelConfig(name_or_path=str(lora_run.model_dir)), "eager", torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    name = next(n for n, _ in exported.named_parameters() if "q_proj" in n)
    # the adapter is in the weights: they moved from the base's
    assert not torch.equal(dict(exported.named_parameters())[name], dict(base.named_parameters())[name])
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Write about the sea."}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        a = exported.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        b = theirs.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert a.tolist() == b.tolist()

    card = (out / "README.md").read_text()
    assert "method `sft`" in card and lora_run.run_id in card and "its LoRA adapter merged" in card
    assert "## How training ended" in card and "| train | loss |" in card
    assert "## Resolved config" in card and "learning_rate: 0.05" in card
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["merged_adapter"] and manifest["method"] == "sft"
    # the tiny model's home-made BPE tokenizer is one llama.cpp does not know: no model.gguf,
    # the converter's own reason in the manifest and on the console, the folder still complete
    assert manifest["gguf"] is None and "pre-tokenizer was not recognized" in manifest["not_exported"]["gguf"]
    assert "no model.gguf: llama.cpp's converter refused" in proc.stdout and "model.gguf" not in files
    # a second export to the same folder replaces the first (its manifest marks it as ours)
    assert export(lora_run.path, out).returncode == 0


def test_export_refuses_a_folder_it_did_not_write_and_a_run_without_a_model(
    lora_run: RunDir, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    proc = export(lora_run.path, theirs)
    assert proc.returncode == 2 and "no export wrote" in proc.stderr
    assert (theirs / "notes.txt").read_text() == "keep me" and len(list(theirs.iterdir())) == 1
    proc = export(tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 2 and "is not a run folder" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "launch.py", "--export", str(lora_run.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--to DIR" in proc.stderr


@pytest.fixture(scope="module")
def run_with_known_tokenizer(tmp_path_factory: pytest.TempPathFactory, embedded_model: str) -> RunDir:
    """A finished full-weights run whose model is a tiny random Llama with the embedded model's
    tokenizer (one llama.cpp's converter knows): what GGUF needs, without training a 135M model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from backends.core.runs.launcher import Launcher
    from backends.core.runs.rundir import RunState
    from backends.core.spec.config import validate_config

    runs = tmp_path_factory.mktemp("gguf-runs")
    cfg = validate_config({"name": "gguf", "method": "sft", "model": {"name_or_path": embedded_model}}, "t")
    run = Launcher(runs).create_run(cfg)
    tok = AutoTokenizer.from_pretrained(embedded_model)
    config = AutoConfig.from_pretrained(embedded_model)
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2})
    config.update({"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16})
    config.initializer_range = 0.5  # wide weights: greedy tokens that vary (at 0.02 every one is a newline)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(run.model_dir)
    tok.save_pretrained(run.model_dir)
    run.update_status(state=RunState.RUNNING)
    run.update_status(state=RunState.SUCCEEDED)
    return run


def test_an_export_carries_a_gguf_that_transformers_reads_back_to_the_same_tokens(
    run_with_known_tokenizer: RunDir, tmp_path: Path
) -> None:
    import os

    import torch
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "exported"
    proc = export(run_with_known_tokenizer.path, out, "--gguf", "f32")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["gguf"] == {"file": "model.gguf", "type": "f32"} and "model.gguf" in manifest["files"]
    assert "gguf" not in manifest["not_exported"]

    tok = AutoTokenizer.from_pretrained(out)
    folder = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    gguf = AutoModelForCausalLM.from_pretrained(out, gguf_file="model.gguf", dtype=torch.float32).eval()
    chat = [{"role": "user", "content": "Write about the sea."}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    # the GGUF carries the tokenizer and its chat template too (llama.cpp and Ollama read them)
    fields = GGUFReader(out / "model.gguf").fields
    template = fields["tokenizer.chat_template"]
    assert bytes(template.parts[template.data[0]]).decode() == tok.chat_template
    assert len(fields["tokenizer.ggml.tokens"].data) == len(tok)
    with torch.no_grad():
        a = folder.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        b = gguf.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert a.tolist() == b.tolist()
    assert not torch.equal(a[0, -12:], a[0, -12].repeat(12))  # a random model's tokens, not one repeated

    # offline, a push to the Hub is refused naming the step; the export stays as it was
    before = {p.name: p.stat().st_size for p in out.iterdir()}
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = export(run_with_known_tokenizer.path, out, "--gguf", "none", "--push-to-hub", "me/tiny", env=env)
    assert proc.returncode == 2 and "push to the Hub refused: this machine is offline" in proc.stderr
    assert "hf upload me/tiny" in proc.stderr
    after = {p.name: p.stat().st_size for p in out.iterdir()}
    assert "model.gguf" not in after  # --gguf none: the earlier file does not pass for this export
    assert {k: v for k, v in before.items() if k not in {"model.gguf", "export.json"}} == {
        k: v for k, v in after.items() if k != "export.json"
    }
