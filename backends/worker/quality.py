"""Quality signals that need a model: relevance and copying, measured with the shipped MiniLM.

`QualityMeter(models)` loads the embedder once and, when any compared model is a run of this
studio that trained on a dataset (or descends from one: PPO from an SFT run), embeds that
training set's reference answers, so `copy` can say which answers nearly repeat one. The
text-only signals come from `backends/core/reports/quality.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backends.core.reports.quality import COPY_THRESHOLD, opening, text_signals

MAX_REFERENCES = 4000  # embedding 4000 answers takes seconds; a bigger training set is sampled


def _run_of(model: str) -> Path | None:
    """The run directory whose model (or merged copy) `model` is, if it is one."""
    p = Path(model)
    if p.name in ("model", "model-merged") and (p.parent / "config.yaml").exists():
        return p.parent
    return None


def _targets(row: dict[str, Any]) -> list[str]:
    from backends.core.data.formats import text_of

    return [text_of(row[c]) for c in ("completion", "chosen") if row.get(c)]


def training_references(models: list[str], log: Any = print) -> list[str]:
    """The reference answers every compared run trained on, following each run's base model
    back through earlier runs. A set that cannot be read is named in the log and left out."""
    from backends.core.data.formats import load_for_method
    from backends.core.spec import registry
    from backends.core.spec.config import load_preset

    seen_runs: set[Path] = set()
    texts: list[str] = []
    queue = [r for m in models if (r := _run_of(m)) is not None]
    while queue:
        run = queue.pop()
        if run in seen_runs:
            continue
        seen_runs.add(run)
        try:
            cfg = load_preset(run / "config.yaml")
        except Exception as e:  # noqa: BLE001 - said, and the signal leaves this run out
            log(f"quality: the config of {run.name} is not readable ({e}); its training set is left out")
            continue
        if (base := _run_of(cfg.model.name_or_path)) is not None:
            queue.append(base)
        spec = registry.get(cfg.method)
        if not spec.trains or not spec.uses("data.dataset"):
            continue
        try:
            ds, _ = load_for_method(cfg.method, cfg.data, None)
        except Exception as e:  # noqa: BLE001 - said, and the signal leaves this run out
            log(f"quality: the training set of {run.name} is not readable ({e}); copy share leaves it out")
            continue
        for row in ds:
            texts += _targets(row)
    unique = sorted(set(t for t in texts if t.strip()))
    if len(unique) > MAX_REFERENCES:
        rng = np.random.default_rng(0)
        unique = [unique[i] for i in sorted(rng.choice(len(unique), MAX_REFERENCES, replace=False))]
    return unique


class QualityMeter:
    def __init__(self, models: list[str], log: Any = print) -> None:
        from backends.worker.embed import Embedder

        self.embedder = Embedder()
        refs = training_references(models, log)
        self.references = self.embedder.encode(refs) if refs else None
        log(
            f"quality: relevance by all-MiniLM-L6-v2; copy share against {len(refs)} training reference "
            "answers"
            + ("" if refs else " (no compared model is a run with a known training set: not measured)")
        )

    def measure(self, prompts: list[str], answers: list[str]) -> list[dict[str, Any]]:
        """Per answer: every signal of `backends.core.reports.quality.SIGNALS` but the opening share
        (a model-level count, made from `opening`), plus `opening`."""
        p = self.embedder.encode(prompts)
        a = self.embedder.encode(answers)
        relevance = (p * a).sum(1)
        copy = None
        if self.references is not None:
            copy = (a @ self.references.T).max(1) > COPY_THRESHOLD
        out = []
        for i, text in enumerate(answers):
            row: dict[str, Any] = {"relevance": float(relevance[i]), **text_signals(text)}
            if copy is not None:
                row["copy_share"] = float(copy[i])
            row["opening"] = opening(text)
            out.append(row)
        return out
