"""A model's shape (hidden size, layers, heads, vocabulary) from its config.json, before it is
loaded: what the memory estimate and the process plan need to know of it. No torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.core.spec.places import builtin_model_dir

# Shapes of the builtin models, for before they are built (the cache has no config.json yet).
KNOWN_SHAPES: dict[str, dict[str, int]] = {
    "builtin:smollm2-135m-instruct": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": 1,
    },
    "builtin:tiny-llama": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 768,
        "tie_word_embeddings": 1,
    },
}


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def layer_linears(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one block."""
        h, i, kv = self.hidden, self.intermediate, self.kv_heads * self.head_dim
        return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]

    @property
    def params(self) -> int:
        per_layer = sum(a * b for a, b in self.layer_linears()) + 2 * self.hidden  # + 2 norms
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * per_layer + embed + self.hidden


def model_shape(name_or_path: str) -> ModelShape | None:
    """The shape from the model's config.json (an adapter folder: its base's), or None."""
    raw: dict[str, Any] | None = None
    folder = builtin_model_dir(name_or_path) or Path(name_or_path)
    cfg_file = folder / "config.json"
    adapter = folder / "adapter_config.json"
    if not cfg_file.exists() and adapter.exists():
        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        return model_shape(base)
    if cfg_file.exists():
        raw = json.loads(cfg_file.read_text())
        raw = raw.get("text_config", raw)
    elif name_or_path in KNOWN_SHAPES:
        raw = dict(KNOWN_SHAPES[name_or_path])
    if raw is None or "hidden_size" not in raw:
        return None
    heads = int(raw.get("num_attention_heads", 1))
    return ModelShape(
        hidden=int(raw["hidden_size"]),
        intermediate=int(raw.get("intermediate_size", 4 * raw["hidden_size"])),
        layers=int(raw["num_hidden_layers"]),
        heads=heads,
        kv_heads=int(raw.get("num_key_value_heads") or heads),
        vocab=int(raw["vocab_size"]),
        tied=bool(raw.get("tie_word_embeddings", False)),
    )
