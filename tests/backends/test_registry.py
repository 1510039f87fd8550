"""A method added through the registry alone shows up everywhere: the Train form, the preset
loader, the Monitor's charts, and a headless run of the tiny model in a worker process.

This module is also the toy method's plugin module: the headless run finds it through
$ALIGNMENT_STUDIO_METHODS, as a user's own method outside the repository would be found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from backends.core.spec import registry
from backends.core.spec.config import ConfigError, load_preset
from backends.core.spec.params import Params, ui
from backends.core.spec.registry import PROMPTS, MethodSpec

ROOT = Path(__file__).resolve().parents[2]


class ToyParams(Params):
    """Toy"""

    scale: float = Field(
        2.0, gt=0.0, title="Toy scale", description="Multiplies the loss.", json_schema_extra=ui(main=True)
    )


def train(ctx: Any) -> Any:
    """Score the tiny model's loss on a few prompts and save it: enough to prove the worker ran it,
    its progress going through the run context as every method's does."""
    import torch

    from backends.core.data.formats import load_for_method, text_of
    from backends.core.runs.rundir import RunState
    from backends.worker.models import load_causal_lm, load_tokenizer

    cfg = ctx.cfg
    ds, _ = load_for_method(cfg.method, cfg.data, None)
    tok = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, ctx.runtime.attn_implementation)
    ctx.progress.begin("training", 3)
    for step, row in enumerate(ds.select(range(3)), 1):
        ids = tok(text_of(row["prompt"]), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            loss = float(model(input_ids=ids, labels=ids).loss) * cfg.toy.scale
        ctx.progress.step(step, {"toy_loss": loss})
    model.save_pretrained(ctx.run.model_dir)
    return RunState.SUCCEEDED


METHOD = MethodSpec(
    name="toy",
    help="A toy method defined in a test.",
    run=train,
    formats=PROMPTS,
    section="toy",
    params=ToyParams,
    charts=("toy_loss",),
    resumable=False,
    ignores=("train.warmup_steps",),
    order=999,
)


@pytest.fixture()
def toy() -> Iterator[MethodSpec]:
    registry.register(METHOD)
    try:
        yield METHOD
    finally:
        registry.unregister("toy")


def test_toy_method_is_in_the_form_and_the_preset_loader(toy: MethodSpec, tmp_path: Path) -> None:
    from studio.logic import forms
    from studio.logic.charts import default_metrics

    fields = {f.key: f for f in forms.form_fields()}
    assert "toy" in fields["method"].choices
    scale = fields["toy.scale"]
    assert (scale.label, scale.kind, scale.main, scale.info) == (
        "Toy scale",
        "number",
        True,
        "Multiplies the loss.",
    )
    assert scale.visible("toy") and not scale.visible("sft") and not fields["dpo.beta"].visible("toy")
    assert not fields["train.warmup_steps"].visible("toy") and fields["train.learning_rate"].visible("toy")
    assert default_metrics(["toy"]) == ["toy_loss"]

    preset = tmp_path / "toy.yaml"
    preset.write_text("method: toy\ntoy: {scale: 3.5}\nmodel: {name_or_path: builtin:tiny-llama}\n")
    assert load_preset(preset).toy.scale == 3.5
    values = forms.form_values({"method": "toy"})
    values[forms.keys().index("toy.scale")] = 4.0
    cfg, _ = forms.form_to_config({"method": "toy"}, values, "form")
    assert cfg.toy.scale == 4.0
    preset.write_text("method: toy\ntoy: {scale: -1, nope: 2}\n")
    with pytest.raises(ConfigError) as e:
        load_preset(preset)
    assert any("`toy.scale`" in p for p in e.value.problems) and any(
        "`toy.nope` is not a known key" in p for p in e.value.problems
    )


def test_unknown_method_lists_the_registered_ones(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("method: toy\n")
    with pytest.raises(ConfigError, match="`method` 'toy' is not a known method; known: sft, reward"):
        load_preset(preset)


def test_toy_method_runs_headless_in_a_worker(runs_dir: Path, tmp_path: Path, tiny_model: str) -> None:
    preset = tmp_path / "toy.yaml"
    preset.write_text("method: toy\nmodel: {name_or_path: builtin:tiny-llama}\ndata: {max_samples: 8}\n")
    env = dict(os.environ, **{registry.PLUGINS_ENV: "tests.backends.test_registry"})
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(preset)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = [p for p in runs_dir.iterdir()]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["toy_loss"] > 0 for r in rows)
    status = json.loads((run / "status.json").read_text())
    assert (status["state"], status["step"], status["total_steps"]) == ("succeeded", 3, 3)
    assert (run / "model" / "config.json").exists()
