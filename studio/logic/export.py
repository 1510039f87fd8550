"""The runs panel's Export: a finished run's model written, by a child process (the studio
loads no model), to the data folder's exports/<run_id>/ (backends/worker/export.py says what
an export holds). No gradio import."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from backends.core.runs.rundir import RunDir
from backends.core.spec.places import REPO_ROOT
from studio.context import StudioContext

EXPORT_TIMEOUT_S = 900


def export_folder(ctx: StudioContext, run: RunDir) -> Path:
    return ctx.data_dir / "exports" / run.run_id


def export_from_studio(ctx: StudioContext, run: RunDir) -> str:
    """Run the export and say what it wrote, or why not (the child's own one-line refusal)."""
    out = export_folder(ctx, run)
    cmd = [ctx.launcher.python, "-m", "backends.worker.export", str(run.path), "--to", str(out)]
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return (
            f"**Not exported:** the export of `{run.run_id}` took over {EXPORT_TIMEOUT_S} s and was stopped"
        )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"**Not exported:** {lines[-1] if lines else f'exit code {proc.returncode}'}"
    manifest = json.loads((out / "export.json").read_text(encoding="utf-8"))
    what = "its LoRA adapter merged into full weights" if manifest["merged_adapter"] else "full weights"
    gguf = (
        f" `{manifest['gguf']['file']}` ({manifest['gguf']['type']}) is for llama.cpp, Ollama and LM Studio."
        if manifest.get("gguf")
        else f" No GGUF: {manifest['not_exported']['gguf']}."
    )
    return (
        f"Exported `{run.run_id}` ({what}) to `{out}` in {manifest['seconds']:.0f} s: "
        + ", ".join(manifest["files"])
        + ". It loads with `AutoModelForCausalLM.from_pretrained` (no peft); README.md is its model card."
        + gguf
    )
