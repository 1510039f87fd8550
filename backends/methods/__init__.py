"""One module per training method, each `train(cfg, run, runtime) -> RunState`, thin over TRL."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_MODULES = {
    "sft": "backends.methods.sft",
    "reward": "backends.methods.reward",
    "dpo": "backends.methods.dpo",
    "simpo": "backends.methods.dpo",
    "orpo": "backends.methods.dpo",
    "kto": "backends.methods.kto",
    "grpo": "backends.methods.grpo",
    "rloo": "backends.methods.grpo",
    "ppo": "backends.methods.ppo",
    "sample": "backends.methods.sample",
    "eval": "backends.methods.eval",
}


def get_trainer(method: str) -> Callable[..., Any]:
    if method not in _MODULES:
        raise ValueError(f"`method` {method!r} has no trainer; known: {sorted(_MODULES)}")
    return importlib.import_module(_MODULES[method]).train
