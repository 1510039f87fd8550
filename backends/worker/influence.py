"""LESS-style data selection (Xia et al. 2024) on the CPU: per-example gradients of a LoRA
adapter's weights, compressed by a sparse random projection (a count sketch: each weight adds
its gradient, with a random sign, to one of `dim` buckets; inner products are kept in
expectation), normalised; a candidate's score is its mean cosine similarity to the target
examples' features. Simplification, said plainly: plain gradients, not LESS's Adam-
preconditioned ones, and one adapter (no checkpoint ensemble)."""

from __future__ import annotations

import time
from typing import Any

import torch

from backends.core.data.formats import text_of


def token_labels(tok: Any, row: dict[str, Any], max_length: int) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) for an SFT row: the loss is on the completion only (prompt-completion
    rows) or on everything (text / messages rows); None when nothing is left to learn."""
    if "prompt" in row and "completion" in row:
        p, c = row["prompt"], row["completion"]
        if isinstance(p, list):
            prompt_ids = tok.apply_chat_template(
                p, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            full = tok.apply_chat_template(p + c, tokenize=True, return_dict=False)
        else:
            prompt_ids = tok(p, add_special_tokens=False)["input_ids"]
            full = prompt_ids + tok(text_of(c), add_special_tokens=False)["input_ids"]
        labels = [-100] * len(prompt_ids) + full[len(prompt_ids) :]
    elif "messages" in row:
        full = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=False)
        labels = list(full)
    else:
        full = tok(row["text"], add_special_tokens=False)["input_ids"]
        labels = list(full)
    full, labels = full[:max_length], labels[:max_length]
    return (full, labels) if any(x != -100 for x in labels[1:]) else None


class GradientSketch:
    def __init__(self, model: Any, dim: int, seed: int) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        total = sum(p.numel() for p in self.params)
        g = torch.Generator().manual_seed(seed)
        self.bucket = torch.randint(0, dim, (total,), generator=g)
        self.sign = torch.randint(0, 2, (total,), generator=g).float() * 2 - 1
        self.dim, self.total = dim, total

    def feature(self, ids: list[int], labels: list[int]) -> torch.Tensor:
        self.model.zero_grad(set_to_none=True)
        out = self.model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
        out.loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in self.params])
        sketch = torch.zeros(self.dim).index_add_(0, self.bucket, self.sign * flat.float())
        return torch.nn.functional.normalize(sketch, dim=0)


def features(
    sketch: GradientSketch, tok: Any, rows: list[dict[str, Any]], max_length: int, progress: Any = None
) -> tuple[torch.Tensor, list[int]]:
    """Normalised sketches of the rows that have tokens to learn, and their indices."""
    out, used = [], []
    t0 = time.time()
    for i, row in enumerate(rows):
        pair = token_labels(tok, row, max_length)
        if pair is not None:
            out.append(sketch.feature(*pair))
            used.append(i)
        if progress is not None and (i + 1) % 20 == 0:
            progress(i + 1, time.time() - t0)
    return (torch.stack(out) if out else torch.zeros(0, sketch.dim)), used
