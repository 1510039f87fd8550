"""`launch.py --export`: a LoRA run's model leaves the studio as a folder plain transformers
loads (no peft), with the adapter merged, the tokenizer and its chat template, the generation
config and a model card, and it answers with the same greedy tokens as the run's model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir
from tests.backends.test_sft import headless
from tests.conftest import ROOT


def export(run: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--export", str(run), "--to", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


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
