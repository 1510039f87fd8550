"""Per-method settings: one section per method family, TRL's field names where TRL has them.

A preset names its method and fills that method's section; other sections keep their
defaults (and are ignored by the trainer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SFTParams(_Strict):
    completion_only_loss: bool = Field(
        True, description="Loss on the completion only (prompt-completion data)."
    )
    packing: bool = Field(False, description="Pack several sequences into one row.")


class RewardParams(_Strict):
    center_rewards_coefficient: float | None = Field(
        None, ge=0.0, description="Pull mean reward toward 0 (Eisenstein et al. 2023); None: off."
    )


DPOLoss = Literal[
    "sigmoid",
    "ipo",
    "robust",
    "hinge",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
]


class DPOParams(_Strict):
    """DPO and its loss variants (TRL DPOTrainer), SimPO (TRL CPOTrainer, loss `simpo`) and ORPO."""

    beta: float = Field(
        0.1, gt=0.0, description="KL strength (DPO), regulariser (IPO), 1/scale (SimPO), lambda (ORPO)."
    )
    loss_type: DPOLoss = Field("sigmoid", description="sigmoid = DPO; ipo; robust; hinge; ... (DPO only).")
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5, description="Assumed label noise (robust / cDPO).")
    simpo_gamma: float = Field(0.5, ge=0.0, description="SimPO target reward margin.")


class KTOParams(_Strict):
    beta: float = Field(0.1, gt=0.0)
    desirable_weight: float = Field(1.0, gt=0.0)
    undesirable_weight: float = Field(1.0, gt=0.0)


class RewardSpec(_Strict):
    """One reward function of an RL run; several are summed with their weights."""

    kind: Literal["checkers", "reward_model", "function"] = Field(
        "checkers",
        description="checkers: the embedded tasks' constraint checkers (needs a `constraints` "
        "column); reward_model: a reward-model run's model/ folder (or `@stage`); function: `module:callable`.",
    )
    path: str | None = Field(None, description="reward_model: folder or @stage; function: module:callable.")
    weight: float = 1.0

    @model_validator(mode="after")
    def _needs_path(self) -> RewardSpec:
        if self.kind != "checkers" and not self.path:
            raise ValueError(f"a `{self.kind}` reward needs `path`")
        return self


class RLParams(_Strict):
    """GRPO, RLOO and PPO: on-policy generation scored by reward functions."""

    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec()], min_length=1)
    num_generations: int = Field(4, ge=2, description="Completions per prompt (the group of GRPO / RLOO).")
    max_completion_length: int = Field(48, gt=0, description="New tokens per completion.")
    temperature: float = Field(1.0, gt=0.0)
    beta: float = Field(0.04, ge=0.0, description="KL penalty to the reference model (0: no reference).")
    samples_per_log: int = Field(
        4, ge=0, description="Completions written to samples.jsonl per logging step."
    )
    # PPO only (hand-written, see backends/methods/ppo.py)
    ppo_epochs: int = Field(2, gt=0, description="PPO: optimisation epochs per rollout batch.")
    num_mini_batches: int = Field(1, gt=0, description="PPO: minibatches per epoch.")
    cliprange: float = Field(0.2, gt=0.0, description="PPO: policy ratio clip.")
    cliprange_value: float = Field(0.2, gt=0.0, description="PPO: value clip.")
    vf_coef: float = Field(0.1, ge=0.0, description="PPO: value loss weight.")
    entropy_coef: float = Field(0.0, ge=0.0, description="PPO: entropy bonus weight.")
    gamma: float = Field(1.0, gt=0.0, le=1.0, description="PPO: discount.")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="PPO: GAE lambda.")
    adaptive_kl: bool = Field(False, description="PPO: adapt the KL coefficient toward target_kl.")
    target_kl: float = Field(6.0, gt=0.0, description="PPO: target KL for the adaptive controller.")
    whiten_advantages: bool = True


class JudgeSpec(_Strict):
    """One judge of a comparison. Score judges (checkers, reward_model, function) score each
    answer; `llm` asks an instruct model which of two answers is better, in both orders."""

    kind: Literal["checkers", "reward_model", "function", "llm"] = "checkers"
    path: str | None = Field(
        None,
        description="reward_model: folder or @stage; function: module:callable; "
        "llm: the judge model (default: the embedded model).",
    )
    tie_margin: float = Field(0.0, ge=0.0, description="Score differences up to this are ties.")

    @model_validator(mode="after")
    def _needs_path(self) -> JudgeSpec:
        if self.kind in ("reward_model", "function") and not self.path:
            raise ValueError(f"a `{self.kind}` judge needs `path`")
        return self


class EvalParams(_Strict):
    """The `eval` method: generate from two or more models on a prompt set and judge them."""

    models: list[str] = Field(default_factory=list, description="Models to compare (two or more).")
    judges: list[JudgeSpec] = Field(default_factory=lambda: [JudgeSpec()], min_length=1)
    max_new_tokens: int = Field(96, gt=0)
    temperature: float = Field(0.7, ge=0.0, description="0: greedy.")
    batch_size: int = Field(
        8, gt=0, description="Prompts per generate call; tallies update after each batch."
    )
