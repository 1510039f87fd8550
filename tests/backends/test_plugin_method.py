"""A new method is one module: a plugin defining only `METHOD` shows in the Train form, gets a
memory estimate from its spec, trains in two processes, adds its own report section, and its
run resumes from a checkpoint; nothing in the studio names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backends.core.reports.report import run_sections
from backends.core.runs.memory import estimate_run
from backends.core.runs.processes import plan_processes
from backends.core.runs.rundir import RunDir
from backends.core.spec import registry
from backends.core.spec.config import load_preset
from tests.backends import plugin_method
from tests.conftest import ROOT

PLUGIN = "tests.backends.plugin_method"


def headless(runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{registry.PLUGINS_ENV: PLUGIN})
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_a_plugin_method_is_one_module(runs_dir: Path, tmp_path: Path, tiny_model: str) -> None:
    from studio.logic import forms

    registry.register(plugin_method.METHOD)
    try:
        assert "plugsft" in {f.key: f for f in forms.form_fields()}["method"].choices
        sets = ["train.max_steps=4", "train.save_steps=2", "train.eval_steps=2", "launch.processes=2"]
        preset = ROOT / "presets/tiny/sft.yaml"
        plug = load_preset(preset, ["method=plugsft", *sets])
        sft = load_preset(preset, sets)
        # the estimate follows the spec: a reference copy (full fine-tune) and two sequences a row
        mine, theirs = estimate_run(plug), estimate_run(sft)
        assert mine.parts["weights"] == 2 * theirs.parts["weights"]
        assert mine.parts["activations"] > theirs.parts["activations"]
        # `auto` keeps it at one process on a CPU (its spec does not ask for two there)
        assert plan_processes("plugsft", "auto", 4, cores=2).processes == 1
        assert plan_processes("plugsft", 2, 4, cores=2).processes == 2

        preset_file = tmp_path / "plug.yaml"
        preset_file.write_text(preset.read_text().replace("method: sft", "method: plugsft"))
        headless(runs_dir, "--preset", str(preset_file), *[f"--set={s}" for s in sets])
        (first,) = [RunDir(p) for p in runs_dir.iterdir()]
        st = first.read_status()
        assert st["state"] == "succeeded" and st["launch"]["processes"] == 2, st
        sections = run_sections(first, "stage")
        assert any("plugin report:" in t for s in sections for t in s.text)

        # resumed from its last checkpoint: the new run goes on from step 4 to 6
        headless(runs_dir, "--resume", str(first.path), "--set", "train.max_steps=6")
        (again,) = [RunDir(p) for p in runs_dir.iterdir() if p.name != first.run_id]
        st = again.read_status()
        assert st["state"] == "succeeded" and st["resumed_from"], st
        steps = [json.loads(line)["step"] for line in again.metrics_path.read_text().splitlines()]
        assert max(steps) == 6 and min(steps) <= 4
    finally:
        registry.unregister("plugsft")
