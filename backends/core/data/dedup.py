"""Near-duplicate filtering of generated prompts by embedding similarity (numpy only).

Candidates are taken in order; one is kept when its cosine similarity to every reference
(the seed prompts) and to every candidate kept before it is at most `threshold`. The
largest similarity of each candidate is returned too, for the chart of the distribution.
"""

from __future__ import annotations

import numpy as np


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def greedy_dedup(
    references: np.ndarray, candidates: np.ndarray, threshold: float
) -> tuple[list[bool], list[float]]:
    """(keep, max_similarity) per candidate; rows of both arrays are embeddings."""
    refs = normalize(np.asarray(references, dtype=np.float64).reshape(-1, candidates.shape[1]))
    cands = normalize(np.asarray(candidates, dtype=np.float64))
    kept: list[np.ndarray] = []
    keep: list[bool] = []
    best: list[float] = []
    for c in cands:
        pool = np.vstack([refs, *kept]) if kept else refs
        sim = float((pool @ c).max()) if len(pool) else -1.0
        best.append(sim)
        ok = sim <= threshold
        keep.append(ok)
        if ok:
            kept.append(c[None, :])
    return keep, best
