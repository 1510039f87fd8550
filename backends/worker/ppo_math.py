"""The arithmetic of PPO for language models, as pure torch functions (unit-tested by hand).

Tensors are [batch, response_len]; `mask` is 1 on real response tokens and 0 on padding
after the end of a response. Conventions follow Ziegler et al. 2019 / InstructGPT and the
PPO implementation details of Huang et al. 2022 ("The N+ implementation details of RLHF
with PPO"): per-token KL penalty, score on the last real token, GAE, whitened advantages,
clipped policy and value losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the masked entries."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mean) ** 2, mask)
    return var * n / (n - 1).clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over the masked entries; padding stays 0."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def per_token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards[t] = -kl_coef * (logp - logp_ref)[t], plus the sequence score on the last real token.

    Returns (rewards, per-token kl), both zero on padding."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation along each response; returns (advantages, returns).

    The value after the last real token is 0 (the episode ends there)."""
    values = values * mask
    adv = torch.zeros_like(rewards)
    last_gae = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * lam * last_gae
        last_gae = last_gae * mask[:, t]  # padding carries nothing back
        adv[:, t] = last_gae
    return adv, (adv + values) * mask


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate; returns (loss, clip fraction, approx KL old->new)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clipfrac, approx_kl


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss 0.5 * max((v - R)^2, (clip(v) - R)^2); returns (loss, clip fraction)."""
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    l1 = (values - returns) ** 2
    l2 = (clipped_values - returns) ** 2
    return 0.5 * masked_mean(torch.max(l1, l2), mask), masked_mean((l2 > l1).float(), mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@dataclass
class AdaptiveKLController:
    """Ziegler et al. 2019: move the KL coefficient so the observed KL tracks a target."""

    value: float
    target: float
    horizon: int = 10000

    def update(self, current_kl: float, n_steps: int) -> float:
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


class PolicyWithValue(nn.Module):
    """A causal LM plus a scalar value head on its last hidden state."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        hidden = lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.normal_(self.value_head.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, ids: torch.Tensor, attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = (attn.long().cumsum(-1) - 1).clamp(min=0)
        out = self.lm(input_ids=ids, attention_mask=attn, position_ids=pos, output_hidden_states=True)
        values = self.value_head(out.hidden_states[-1].float()).squeeze(-1)
        return out.logits, values


def response_logprobs(logits: torch.Tensor, ids: torch.Tensor, p_len: int) -> torch.Tensor:
    """Log-probs of the response tokens ids[:, p_len:] under `logits` of the whole sequence."""
    resp_logits = logits[:, p_len - 1 : -1].float()
    return torch.gather(torch.log_softmax(resp_logits, -1), 2, ids[:, p_len:].unsqueeze(-1)).squeeze(-1)


def response_mask(resp: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """1 up to and including the first EOS; 0 after it (and on padding)."""
    is_eos = resp == eos_id
    after = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    mask = (~after).float()
    if pad_id != eos_id:
        mask = mask * (resp != pad_id).float()
    return mask
