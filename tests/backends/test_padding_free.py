"""Padding-free SFT batches (backends/worker/padding_free.py): the same losses as padded
batches, and a model whose attention lets joined rows see each other is caught before training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from backends.core.runs.rundir import list_runs
from backends.worker.padding_free import decide, probe

ROOT = Path(__file__).resolve().parents[2]


class SeesEverything(torch.nn.Module):
    """A 'model' whose every position mixes all earlier tokens and ignores position_ids:
    joined rows leak into each other, as an attention without packed-sequence masks would."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.emb

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None, **_: object
    ) -> SimpleNamespace:
        h = self.emb(input_ids).cumsum(dim=1)
        return SimpleNamespace(logits=h)


def test_the_probe_catches_a_model_whose_rows_see_each_other() -> None:
    ok, line = probe(SeesEverything())
    assert not ok and "rows see each other" in line
    with pytest.raises(ValueError, match="sft.padding_free: true, but this model's attention"):
        decide(True, False, 4, SeesEverything(), "sdpa")
    # auto: only with flash-attention's varlen kernels (with sdpa it measured slower on a CPU)
    assert decide("auto", False, 4, SeesEverything(), "sdpa")[0] is False
    assert decide("auto", False, 4, SeesEverything(), "flash_attention_2")[0] is True
    assert decide(False, False, 4, SeesEverything(), "sdpa") == (
        False,
        "padding-free off (sft.padding_free: false): rows padded to the longest in the batch",
    )


def sft_losses(runs_dir: Path, setting: str) -> tuple[list[float], str]:
    sets = [f"sft.padding_free={setting}", "train.max_steps=6", "train.eval_steps=null"]
    sets += ["train.save_steps=100", "launch.processes=1"]
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir)]
    cmd += ["--preset", "presets/tiny/sft.yaml", *(x for s in sets for x in ("--set", s))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    rows = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("split") == "train" and "loss" in r], run.log_path.read_text()


def test_padding_free_sft_learns_what_padded_batches_learn(tmp_path: Path, tiny_model: str) -> None:
    padded, padded_log = sft_losses(tmp_path / "padded", "false")
    free, free_log = sft_losses(tmp_path / "free", "true")
    assert "padding-free off" in padded_log
    assert "padding-free batches: rows joined" in free_log and "rows stay apart" in free_log
    assert len(free) == len(padded) == 6
    # the loss moved (the run trained) and both kinds of batch give the same curve: the
    # joined rows saw only themselves (fp32: equal to float rounding)
    assert padded[-1] < padded[0]
    assert free == pytest.approx(padded, abs=1e-4)
