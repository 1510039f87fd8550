"""A run's model card (README.md of an export): what was trained, from what, on what, with
which settings, how training ended, and every comparison the model took part in with its
verdict. Read from the run directory alone; torch-free, so the studio can show it too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backends.core.data.jsonl import read_jsonl
from backends.core.reports.comparison import short
from backends.core.reports.verdicts import headline
from backends.core.runs.rundir import RunDir, list_runs

CARD_METRICS = 12  # the final metrics shown, at most
# where a builtin model came from, for the card's `base_model` (the Hub reads it)
HUB_IDS = {"builtin:smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def lineage(run: RunDir) -> list[str]:
    """What the run's model grew from, newest first: the runs it started from (an SFT run's
    model/ or its merged copy), then the model outside any run (a builtin, a hub id, a folder)."""
    import yaml

    out, seen, current = [], set(), run
    while current.path.resolve() not in seen:
        seen.add(current.path.resolve())
        try:
            cfg = yaml.safe_load(current.config_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            break
        start = str((cfg.get("model") or {}).get("name_or_path", "?"))
        parent = Path(start).parent if "/" in start else None
        if parent is None or not (parent / "config.yaml").exists():
            out.append(start)
            break
        current = RunDir(parent)
        out.append(f"run `{current.run_id}` ({current.method()})")
    return out


def final_metrics(run: RunDir) -> dict[str, dict[str, Any]]:
    """The last value of every metric, per split (train, eval)."""
    out: dict[str, dict[str, Any]] = {}
    if not run.metrics_path.exists():
        return out
    for row in read_jsonl(run.metrics_path, complete_only=True):
        split = out.setdefault(str(row.get("split", "train")), {})
        split.update({k: v for k, v in row.items() if k not in ("time", "split") and v is not None})
    return out


def comparisons_with(run: RunDir, model_path: str) -> list[tuple[str, list[str]]]:
    """(comparison run id, its verdict lines naming this model) for every eval run beside it."""
    me = short(model_path)
    out = []
    for other in list_runs(run.path.parent):
        if not other.winrate_path.exists():
            continue
        try:
            wr = json.loads(other.winrate_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if any(Path(m).resolve() == Path(model_path).resolve() for m in wr.get("models", []) if "/" in m):
            out.append((other.run_id, [line for line in headline(wr) if me in line]))
    return out


def model_card(run: RunDir, base_model: str, merged: bool) -> str:
    """README.md for the exported model of `run` (`base_model`: the weights it started from)."""
    import yaml

    cfg = yaml.safe_load(run.config_path.read_text(encoding="utf-8"))
    method, data = cfg.get("method", "?"), cfg.get("data", {})
    tags = ["alignment-studio", method, *(["lora"] if cfg.get("lora", {}).get("enabled") else [])]
    chain = lineage(run)
    root = HUB_IDS.get(chain[-1], chain[-1]) if chain else base_model
    front = {"library_name": "transformers", "tags": tags}
    if not Path(root).is_absolute() and not root.startswith("builtin:"):
        front["base_model"] = root  # a hub id; a local folder means nothing elsewhere
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {cfg.get('name', run.run_id)}",
        "",
    ]
    train = cfg.get("train", {})
    lines += [
        f"Trained with Alignment Studio: method `{method}`, run `{run.run_id}`.",
        "",
        "## Training",
        "",
        "- started from: "
        + " <- ".join(c if c.startswith("run `") else f"`{c}`" for c in chain)
        + (f" (`{HUB_IDS[chain[-1]]}`)" if chain and chain[-1] in HUB_IDS else ""),
        "- weights: "
        + ("its LoRA adapter merged into full weights" if merged else "full weights")
        + f", on top of `{base_model}`",
        f"- data: `{data.get('dataset')}`, split `{data.get('split', 'train')}`"
        + (f", at most {data['max_samples']} rows" if data.get("max_samples") else ""),
        f"- steps: {train.get('max_steps')}, learning rate {train.get('learning_rate')}, "
        f"batch {train.get('per_device_train_batch_size')} x {train.get('gradient_accumulation_steps', 1)} "
        f"accumulation, seed {train.get('seed')}",
        "",
    ]
    metrics = final_metrics(run)
    if metrics:
        lines += ["## How training ended", "", "| split | metric | last value |", "|---|---|---|"]
        for split, values in metrics.items():
            shown = [(k, v) for k, v in values.items() if k not in ("epoch", "step")][:CARD_METRICS]
            lines += [
                f"| {split} | {k} | {v:.4g} |" if isinstance(v, float) else f"| {split} | {k} | {v} |"
                for k, v in shown
            ]
        lines.append("")
    comparisons = comparisons_with(run, str(run.model_dir.resolve()))
    lines += ["## Comparisons", ""]
    if not comparisons:
        lines += ["None yet: compare it in the Arena, or with an `eval` stage.", ""]
    for cid, verdicts in comparisons:
        lines.append(f"- `{cid}`" + ("" if verdicts else ": no verdict involving this model"))
        lines += [f"  - {v}" for v in verdicts]
    lines += [
        "",
        "## Resolved config (config.yaml)",
        "",
        "```yaml",
        run.config_path.read_text(encoding="utf-8").rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
