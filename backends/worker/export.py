"""`python launch.py --export RUN_DIR --to DIR` (or `python -m backends.worker.export`): a
finished run's model as a folder plain transformers (and every tool that reads the Hugging
Face format) loads: a LoRA adapter merged into full weights (safetensors), the tokenizer with
its chat template, the generation config, and a model card (README.md) naming the method, the
base model, the data, the resolved config, the final metrics and the comparisons the model
took part in. It runs in its own process: the studio never loads a model.

Beside it, `model.gguf` (f16 by default, `--gguf TYPE`) when llama.cpp's converter is installed
(backends/worker/gguf.py; a causal LM only), and with `--push-to-hub USER/NAME` the folder goes
to the Hub (backends/worker/hub.py; refused offline, naming the step). What was not written and
why is in export.json's `not_exported`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from backends.core.reports.model_card import model_card
from backends.core.runs.rundir import RunDir, RunState, atomic_write_text
from backends.worker.gguf import GGUF_TYPES, GGUFError, write_gguf
from backends.worker.hub import HubError, push_folder

MANIFEST = "export.json"  # what the export wrote, for the studio and for a second look
GGUF_FILE = "model.gguf"


class ExportError(ValueError):
    """A run that cannot be exported, or a target that would lose files; the message says which."""


def check_export(run: RunDir, out: Path) -> None:
    if not run.exists():
        raise ExportError(f"{run.path} is not a run folder (no status.json)")
    state = run.state()
    if state != RunState.SUCCEEDED and not (state == RunState.STOPPED and run.model_dir.exists()):
        raise ExportError(f"run {run.run_id} is {state.value}: only a finished run's model/ can be exported")
    if not (run.model_dir / "config.json").exists() and not (run.model_dir / "adapter_config.json").exists():
        raise ExportError(
            f"run {run.run_id} has no model in {run.model_dir} (a {run.method()} run saves none)"
        )
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise ExportError(
            f"{out} is a folder with files in it that no export wrote: name an empty or new folder"
        )
    if out.resolve() == run.path.resolve() or run.path.resolve() in out.resolve().parents:
        raise ExportError(f"{out} is inside the run folder {run.path}: export somewhere else")


def export_run(
    run_path: str | Path, out: str | Path, gguf: str = "auto", hub_repo: str | None = None
) -> dict[str, Any]:
    """Write the export of the run at `run_path` to `out`; returns the manifest it wrote.
    gguf: "auto" (f16 when the converter is installed and knows the model), "none", or a type
    that must be written (its failure raises GGUFError after the folder is complete). hub_repo
    is only recorded here: main() pushes once the folder is complete."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from backends.core.spec.config import ModelConfig
    from backends.worker.models import adapter_base, from_pretrained, load_tokenizer

    run, out = RunDir(run_path), Path(out)
    check_export(run, out)
    t0 = time.time()
    model_path = str(run.model_dir)
    base = adapter_base(model_path)
    config = AutoConfig.from_pretrained(base or model_path)
    scalar_head = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
    auto = AutoModelForSequenceClassification if scalar_head else AutoModelForCausalLM
    kwargs: dict[str, Any] = {"num_labels": 1} if scalar_head else {}
    model = from_pretrained(auto, model_path, dtype=torch.float32, **kwargs)  # merges an adapter
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer = load_tokenizer(ModelConfig(name_or_path=model_path))
    tokenizer.save_pretrained(out)
    if not scalar_head and getattr(model, "generation_config", None) is not None:
        gen = model.generation_config
        if gen.pad_token_id is None:
            gen.pad_token_id = tokenizer.pad_token_id
        gen.save_pretrained(out)
    from_base = base or _started_from(run)
    (out / "README.md").write_text(model_card(run, from_base, merged=base is not None), encoding="utf-8")
    gguf_entry, gguf_reason, gguf_error = _gguf_beside(out, scalar_head, gguf)
    not_exported = {"gguf": gguf_reason} if gguf_reason else {}
    if not hub_repo:
        not_exported["hub"] = "not asked (--push-to-hub USER/NAME)"
    manifest = {
        "run": run.run_id,
        "method": run.method(),
        "base_model": from_base,
        "merged_adapter": base is not None,
        "head": "sequence classification (1 score)" if scalar_head else "causal LM",
        "files": sorted(p.name for p in out.iterdir()),
        "seconds": round(time.time() - t0, 2),
        "gguf": gguf_entry,
        "push_to_hub": hub_repo,  # asked for; the push itself comes after this file
        "not_exported": not_exported,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2))
    if gguf_error is not None:
        raise gguf_error
    return manifest


def _gguf_beside(
    out: Path, scalar_head: bool, gguf: str
) -> tuple[dict[str, str] | None, str | None, GGUFError | None]:
    """model.gguf next to the safetensors: (its manifest entry, why not, the error to raise)."""
    (out / GGUF_FILE).unlink(missing_ok=True)  # an earlier export's file must not pass for this one
    if scalar_head:
        return None, "a reward model (sequence-classification head): GGUF holds causal LMs", None
    if gguf == "none":
        return None, "not asked (--gguf none)", None
    outtype = "f16" if gguf == "auto" else gguf
    try:
        write_gguf(out, out / GGUF_FILE, outtype)
    except GGUFError as e:
        return None, str(e), None if gguf == "auto" else e
    return {"file": GGUF_FILE, "type": outtype}, None, None


def _started_from(run: RunDir) -> str:
    """The model a full fine-tune started from (its config's model.name_or_path)."""
    import yaml

    cfg = yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}
    return str((cfg.get("model") or {}).get("name_or_path", "?"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.worker.export")
    parser.add_argument("run_dir")
    parser.add_argument("--to", required=True, help="the folder to write (new, empty, or an earlier export)")
    parser.add_argument(
        "--gguf",
        default="auto",
        choices=["auto", "none", *GGUF_TYPES],
        help="model.gguf beside the folder: auto = f16 when llama.cpp's converter is installed",
    )
    parser.add_argument("--push-to-hub", metavar="USER/NAME", help="then upload the folder to this Hub repo")
    args = parser.parse_args(argv)
    if not args.to.strip():
        print("export refused: name the folder to write with --to DIR", file=sys.stderr)
        return 2
    try:
        manifest = export_run(args.run_dir, args.to, gguf=args.gguf, hub_repo=args.push_to_hub)
    except ExportError as e:
        print(f"export refused: {e}", file=sys.stderr)
        return 2
    except GGUFError as e:
        print(f"exported to {args.to}, but model.gguf was not written: {e}", file=sys.stderr)
        return 2
    what = "LoRA adapter merged into full weights" if manifest["merged_adapter"] else "full weights"
    print(
        f"exported run {manifest['run']} ({manifest['method']}, {what}) to {args.to} in {manifest['seconds']} s"
    )
    print("files: " + ", ".join(manifest["files"]))
    if manifest["gguf"] is None:
        print(f"no model.gguf: {manifest['not_exported']['gguf']}")
    if args.push_to_hub:
        try:
            print(f"pushed to {push_folder(Path(args.to), args.push_to_hub)}")
        except HubError as e:
            print(str(e), file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
