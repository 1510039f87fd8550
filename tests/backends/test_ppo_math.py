"""PPO arithmetic against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from backends.worker import ppo_math as pm
from backends.worker.ppo_math import response_mask

T = torch.tensor


def test_gae_gamma_lambda_one_gives_monte_carlo_returns() -> None:
    adv, ret = pm.gae(T([[0.0, 0.0, 1.0]]), T([[0.5, 0.5, 0.5]]), T([[1.0, 1.0, 1.0]]), 1.0, 1.0)
    assert adv.tolist() == [[0.5, 0.5, 0.5]]
    assert ret.tolist() == [[1.0, 1.0, 1.0]]


def test_gae_discounted() -> None:
    adv, _ = pm.gae(T([[0.0, 0.0, 1.0]]), T([[0.5, 0.5, 0.5]]), T([[1.0, 1.0, 1.0]]), 0.9, 0.5)
    # t2: 1 - .5 = .5 ; t1: 0 + .9*.5 - .5 + .45*.5 = .175 ; t0: -.05 + .45*.175 = .02875
    assert adv[0].tolist() == pytest.approx([0.02875, 0.175, 0.5])


def test_gae_ignores_padding() -> None:
    # the value on the padded position (9.0) must not leak into the last real token
    adv, ret = pm.gae(T([[0.0, 1.0, 0.0]]), T([[0.5, 0.5, 9.0]]), T([[1.0, 1.0, 0.0]]), 1.0, 1.0)
    assert adv.tolist() == [[0.5, 0.5, 0.0]]
    assert ret.tolist() == [[1.0, 1.0, 0.0]]


def test_per_token_rewards_kl_and_score_on_last_real_token() -> None:
    rewards, kl = pm.per_token_rewards(
        T([2.0]), T([[-1.0, -2.0, -3.0]]), T([[-1.5, -2.0, -2.0]]), T([[1.0, 1.0, 0.0]]), 0.1
    )
    assert kl.tolist() == [[0.5, 0.0, 0.0]]
    assert rewards[0].tolist() == pytest.approx([-0.05, 2.0, 0.0])


def test_clipped_policy_loss() -> None:
    old = T([[0.0, 0.0]])
    new = T([[math.log(1.5), math.log(0.5)]])
    loss, clipfrac, approx_kl = pm.policy_loss(new, old, T([[1.0, 1.0]]), T([[1.0, 1.0]]), 0.2)
    # token 0: ratio 1.5 -> clipped to 1.2 (-1.2 > -1.5); token 1: ratio 0.5, unclipped -0.5 wins
    assert float(loss) == pytest.approx((-1.2 - 0.5) / 2)
    assert float(clipfrac) == pytest.approx(0.5)
    assert float(approx_kl) == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2) / 2)


def test_policy_loss_masks_padding() -> None:
    loss, _, _ = pm.policy_loss(T([[0.0, 5.0]]), T([[0.0, 0.0]]), T([[2.0, 100.0]]), T([[1.0, 0.0]]), 0.2)
    assert float(loss) == pytest.approx(-2.0)


def test_clipped_value_loss() -> None:
    loss, clipfrac = pm.value_loss(T([[1.0, 0.0]]), T([[0.5, 0.5]]), T([[2.0, 0.0]]), T([[1.0, 1.0]]), 0.2)
    # clipped values (0.7, 0.3): squared errors max((1, 0), (1.69, 0.09)) -> 0.5 * mean(1.69, 0.09)
    assert float(loss) == pytest.approx(0.445)
    assert float(clipfrac) == 1.0


def test_masked_whiten() -> None:
    out = pm.masked_whiten(T([[1.0, 2.0, 3.0, 100.0]]), T([[1.0, 1.0, 1.0, 0.0]]))
    assert out[0].tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0], abs=1e-4)


def test_entropy_of_uniform_logits() -> None:
    assert float(pm.entropy_from_logits(torch.zeros(1, 8))) == pytest.approx(math.log(8))


def test_adaptive_kl_controller_moves_toward_target() -> None:
    ctl = pm.AdaptiveKLController(0.1, target=6.0, horizon=10000)
    assert ctl.update(12.0, 100) == pytest.approx(0.1 * (1 + 0.2 * 100 / 10000))  # error clipped to +0.2
    before = ctl.value
    assert ctl.update(3.0, 100) < before


def test_response_mask_stops_after_first_eos() -> None:
    assert response_mask(T([[5, 2, 7, 0], [5, 6, 7, 8]]), eos_id=2, pad_id=0).tolist() == [
        [1, 1, 0, 0],
        [1, 1, 1, 1],
    ]
    # pad == eos (SmolLM2): the first eos counts, later ones do not
    assert response_mask(T([[5, 2, 2, 2]]), eos_id=2, pad_id=2).tolist() == [[1, 1, 0, 0]]
