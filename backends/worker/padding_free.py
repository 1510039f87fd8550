"""Padding-free SFT batches: the rows of a batch joined into one sequence, no pad tokens.

A padded batch of 4 rows spends compute on the padding up to its longest row (18 % of the
tokens on the embedded 400-row set, docs/BENCHMARKS.md). TRL's collator can instead join
the rows into one sequence whose `position_ids` restart at 0 for each row; transformers 5
turns those restarts into a block-diagonal causal mask (masking_utils, packed sequences), so
no row sees another and the loss is the padded batch's. TRL only allows this without a
max_length (it would not truncate), so the trainer keeps its config and truncation and only
the collator is swapped after the dataset was tokenized.

Where it pays: flash-attention's varlen kernels attend within each row, so the joined batch
costs only its real tokens. With sdpa the joined rows go through one masked attention over
all of them, quadratic in the batch's total length: on the embedded SFT job the matmuls fell
14 % but attention and mask copies grew more, and the step was ~10 % slower
(docs/BENCHMARKS.md). Eager attention (the CPU's default for training) also attends over the
whole joined batch; it was not measured with padding-free. So `auto` turns it on with
flash-attention only; `true` forces it.

A model whose attention ignores `position_ids` would let the rows see each other without any
error. With `true` and no flash-attention, `probe` checks it on the model itself first: two
short rows joined must give the logits each gives alone, or the run is refused.
"""

from __future__ import annotations

from typing import Any

# Largest logit difference between a joined row and the row alone that still counts as equal
# (fp32 on the CPU gives ~1e-5; the probe runs without autocast).
TOLERANCE = 1e-3


def probe(model: Any) -> tuple[bool, str]:
    """(joined rows give each row's own logits, a line saying what was found)."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(3, vocab, (1, 7), generator=gen)
    b = torch.randint(3, vocab, (1, 5), generator=gen)
    device = next(model.parameters()).device
    joined = torch.cat([a, b], dim=1).to(device)
    positions = torch.cat([torch.arange(7), torch.arange(5)])[None, :].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            # no cache, as in training (TRL's SFT loss passes use_cache=False): transformers
            # looks for joined rows in position_ids only then
            alone = torch.cat([model(input_ids=x.to(device), use_cache=False).logits for x in (a, b)], dim=1)
            together = model(input_ids=joined, position_ids=positions, use_cache=False).logits
    finally:
        model.train(was_training)
    diff = float((alone.float() - together.float()).abs().max())
    ok = diff <= TOLERANCE
    verdict = "rows stay apart" if ok else "rows see each other"
    return ok, f"joined rows vs alone: max logit difference {diff:.2g} ({verdict})"


def decide(
    setting: bool | str, packing: bool, per_device_batch: int, model: Any, attn_implementation: str
) -> tuple[bool, str]:
    """Whether this run's batches are padding-free, and the log line that says why."""
    if setting is False:
        return False, "padding-free off (sft.padding_free: false): rows padded to the longest in the batch"
    if packing:
        return False, "padding-free not used: sft.packing joins rows already"
    if per_device_batch < 2:
        return False, "padding-free not used: one row per batch has no padding"
    varlen = attn_implementation.startswith("flash_attention")
    if setting == "auto" and not varlen:
        return False, (
            f"padding-free not used: with {attn_implementation} attention a joined batch attends over "
            "all its rows at once, which cost more than the padding saved (docs/BENCHMARKS.md); "
            "`auto` turns it on with flash-attention"
        )
    if varlen:
        # flash-attention's varlen kernels take the rows' bounds from TRL's collator
        return (
            True,
            f"padding-free batches: rows joined, no pad tokens ({attn_implementation} keeps them apart)",
        )
    ok, found = probe(model)
    if ok:
        return True, f"padding-free batches: rows joined, no pad tokens ({found})"
    raise ValueError(
        f"sft.padding_free: true, but this model's attention does not keep joined rows apart "
        f"({found}); set sft.padding_free to auto or false"
    )


def collator(tokenizer: Any) -> Any:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)


def trainer_class(base: Any) -> Any:
    """`base` (TRL's SFTTrainer) with the padding-free collator put in after the dataset was
    tokenized and truncated to max_length by the trainer itself."""

    class PaddingFreeSFTTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.data_collator = collator(self._tokenizer)

    return PaddingFreeSFTTrainer
