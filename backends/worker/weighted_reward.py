"""A reward model trained on weighted pairs (`reward.weighting: per_prompt`): each pair's
Bradley-Terry loss is multiplied by its weight, so the C(K, 2) pairs of one ranking count
as much as one prompt (InstructGPT, Ouyang et al. 2022, eq. 1). TRL 1.16's RewardTrainer
has no per-example weight; this subclass adds one. Worker process only (torch, trl)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from trl import RewardTrainer

from backends.core.labels.ranking import per_prompt_weights

WEIGHT = "weight"


def weighted_bradley_terry(
    chosen: torch.Tensor, rejected: torch.Tensor, weight: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """mean_i( w_i * -log sigmoid(r_chosen_i - r_rejected_i [- margin_i]) )."""
    diff = chosen - rejected if margin is None else chosen - rejected - margin
    return -(weight.to(diff.dtype) * nn.functional.logsigmoid(diff)).mean()


def with_prompt_weights(ds: Any, split: str) -> Any:
    """The dataset with a `weight` column: every prompt's pairs share one weight (mean 1)."""
    columns = [c for c in ("prompt", "chosen", "rejected") if c in ds.column_names]
    rows = ds.select_columns(columns).to_list()
    weights = per_prompt_weights(rows)
    if weights:
        print(
            f"reward.weighting per_prompt ({split}): {len(rows)} pairs, weights "
            f"{min(weights):.3f} to {max(weights):.3f}",
            flush=True,
        )
    return ds.add_column(WEIGHT, weights)


class _WithWeights:
    """TRL's preference collator, plus the batch's pair weights."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(examples)
        if examples and WEIGHT in examples[0]:
            batch[WEIGHT] = torch.tensor([float(e[WEIGHT]) for e in examples])
        return batch


class WeightedRewardTrainer(RewardTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = _WithWeights(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if WEIGHT not in self._signature_columns:  # else Trainer drops the column as unused
            self._signature_columns = [*self._signature_columns, WEIGHT]

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        weight = inputs.pop(WEIGHT, None)
        # The parent runs the forward pass and records its metrics (accuracy, margin, rewards);
        # only its unweighted loss is replaced, from the same outputs.
        _, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if weight is None:
            raise ValueError("reward.weighting is per_prompt but a batch came without pair weights")
        chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        loss = weighted_bradley_terry(chosen, rejected, weight.to(chosen.device), inputs.get("margin"))
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["mean_weight"].append(weight.mean().item())
        return (loss, outputs) if return_outputs else loss
