"""Where the studio's own things live: the repository every process starts in, and the cache
that holds what it builds once (the embedded model's converted copy, the tiny test model).
No torch; every layer may ask."""

from __future__ import annotations

import os
from pathlib import Path

# the repository: every worker and pipeline process starts here (`python -m backends...`)
REPO_ROOT = Path(__file__).resolve().parents[3]

BUILTIN_MODELS = {
    "builtin:smollm2-135m-instruct": "smollm2-135m-instruct",
    "builtin:tiny-llama": "tiny-llama",
}


def cache_dir() -> Path:
    """$ALIGNMENT_STUDIO_CACHE, else ~/.cache/alignment-studio."""
    root = os.environ.get("ALIGNMENT_STUDIO_CACHE") or Path.home() / ".cache" / "alignment-studio"
    return Path(root)


def builtin_model_dir(name: str) -> Path | None:
    """The folder a builtin model lives in once built (it may not exist yet); None if unknown."""
    folder = BUILTIN_MODELS.get(name)
    return cache_dir() / "models" / folder if folder else None
