"""GRPO with TRL's GRPOTrainer: a group of samples per prompt, rewarded, pushed toward the
above-average ones; no value model. Rewards come from the checkers, a reward-model run, a
function, or a weighted mix; a few completions per step go to samples.jsonl.

The `rl` section is shared with RLOO (rloo.py) and PPO (ppo.py). On a GPU with vLLM
installed, generation uses vLLM (colocated); otherwise transformers' generate, and the log
says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from backends.core.spec.params import Params, RewardSpec, ui
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.context import RunContext

GROUP = ("grpo", "rloo")
# every `loss_type` TRL 1.16's GRPOTrainer computes (trl/trainer/grpo_trainer.py, _compute_loss)
GRPOLoss = Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"]
# passed to TRL as they are, to the methods each field's ui(only=...) names
TRL_OPTIONS = (
    "loss_type",
    "importance_sampling_level",
    "scale_rewards",
    "epsilon",
    "epsilon_high",
    "mask_truncated_completions",
)


class RLParams(Params):
    """Reinforcement learning"""

    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec()],
        min_length=1,
        title="Rewards",
        description="A list: {kind: checkers} | {kind: quality} | {kind: reward_model, path: runs/<id>/model} "
        "| {kind: function, path: module:fn}, each with an optional weight.",
        json_schema_extra=ui(main=True),
    )
    num_generations: int = Field(
        4,
        ge=2,
        title="Group size",
        description="Completions per prompt.",
        json_schema_extra=ui(main=True, only=GROUP),
    )
    max_completion_length: int = Field(48, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(1.0, gt=0.0, title="Temperature", json_schema_extra=ui(main=True))
    beta: float = Field(
        0.04,
        ge=0.0,
        title="KL coef. (beta)",
        description="Penalty toward the reference model (0: no reference).",
        json_schema_extra=ui(main=True),
    )
    # TRL's GRPO variants (TRL 1.16 GRPOConfig; RLOOConfig has the clipping and masking only).
    # Defaults are TRL's.
    loss_type: GRPOLoss = Field(
        "dapo",
        title="Loss",
        description="How token losses are summed. dapo: over the batch's tokens (no length bias); "
        "grpo: per sequence, then averaged (prefers short right answers); dr_grpo: over a constant "
        "(max new tokens; Dr. GRPO); bnpo: over the local batch's tokens; cispo: clips the importance "
        "weights (MiniMax-M1; epsilon_high ~5); sapo: a soft gate instead of clipping; luspo: "
        "length-unbiased GSPO (use importance sampling `sequence`); vespo: smooth sequence-level weights "
        "(use `token`).",
        json_schema_extra=ui(main=True, only=("grpo",)),
    )
    importance_sampling_level: Literal["token", "sequence"] = Field(
        "token",
        title="Importance sampling",
        description="token: one policy ratio per token (GRPO); sequence: one per answer, the mean "
        "log-ratio of its tokens (GSPO; pair it with loss grpo, as the paper does).",
        json_schema_extra=ui(only=("grpo",)),
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group",
        title="Reward scaling",
        description="Advantages divided by the std of rewards in the group, in the whole batch "
        "(PPO Lite), or not at all (Dr. GRPO: scaling favours too easy and too hard prompts).",
        json_schema_extra=ui(only=("grpo",)),
    )
    epsilon: float = Field(
        0.2,
        gt=0.0,
        title="Clip epsilon",
        description="The policy ratio is clipped to [1 - epsilon, 1 + epsilon_high].",
        json_schema_extra=ui(only=GROUP),
    )
    epsilon_high: float | None = Field(
        None,
        gt=0.0,
        title="Clip epsilon (upper)",
        description="Upper clip bound; empty: the same as epsilon. DAPO's clip-higher uses 0.28.",
        json_schema_extra=ui(only=GROUP),
    )
    mask_truncated_completions: bool = Field(
        False,
        title="Mask truncated answers",
        description="Leave answers cut off at max new tokens out of the loss (DAPO); with a short "
        "max new tokens most answers may be cut, and few then teach anything.",
        json_schema_extra=ui(only=GROUP),
    )
    rollouts: Literal["auto", "policy"] = Field(
        "auto",
        title="Rollouts from",
        description="auto: on a CPU with bf16 instructions, answers are sampled from a bf16 copy of the "
        "policy (adapter merged) made before each generation, about twice as fast as sampling under "
        "autocast; elsewhere, and with `policy`, from the training model itself.",
    )
    samples_per_log: int = Field(
        4,
        ge=0,
        title="Samples logged per step",
        description="Completions written to samples.jsonl per logging step.",
    )
    # PPO only (written here, see backends/worker/ppo.py)
    ppo_epochs: int = Field(
        2,
        gt=0,
        title="PPO epochs",
        description="Optimisation epochs per rollout batch.",
        json_schema_extra=ui(main=True, only=("ppo",)),
    )
    num_mini_batches: int = Field(
        1, gt=0, title="Minibatches", description="Per PPO epoch.", json_schema_extra=ui(only=("ppo",))
    )
    cliprange: float = Field(
        0.2,
        gt=0.0,
        title="Clip range",
        description="Policy ratio clip.",
        json_schema_extra=ui(main=True, only=("ppo",)),
    )
    cliprange_value: float = Field(0.2, gt=0.0, title="Value clip range", json_schema_extra=ui(only=("ppo",)))
    vf_coef: float = Field(
        0.1, ge=0.0, title="Value loss coef.", json_schema_extra=ui(main=True, only=("ppo",))
    )
    entropy_coef: float = Field(0.0, ge=0.0, title="Entropy bonus", json_schema_extra=ui(only=("ppo",)))
    gamma: float = Field(1.0, gt=0.0, le=1.0, title="Discount (gamma)", json_schema_extra=ui(only=("ppo",)))
    lam: float = Field(0.95, ge=0.0, le=1.0, title="GAE lambda", json_schema_extra=ui(only=("ppo",)))
    adaptive_kl: bool = Field(
        False,
        title="Adaptive KL",
        description="Adapt the KL coefficient toward target_kl.",
        json_schema_extra=ui(main=True, only=("ppo",)),
    )
    target_kl: float = Field(6.0, gt=0.0, title="Target KL", json_schema_extra=ui(only=("ppo",)))
    whiten_advantages: bool = Field(True, title="Whiten advantages", json_schema_extra=ui(only=("ppo",)))

    @field_validator("scale_rewards", mode="before")
    @classmethod
    def _scale_rewards_bool(cls, v: object) -> object:
        """TRL also takes True / False for `scale_rewards` (its GRPOConfig maps them so)."""
        return {True: "group", False: "none"}.get(v, v) if isinstance(v, bool) else v


def check_group(cfg: RunConfig) -> list[str]:
    if cfg.train.per_device_train_batch_size % cfg.rl.num_generations:
        return [
            f"`train.per_device_train_batch_size` ({cfg.train.per_device_train_batch_size}) counts "
            f"completions for {cfg.method} and must be a multiple of `rl.num_generations` "
            f"({cfg.rl.num_generations})"
        ]
    return []


def trl_options(rl: RLParams, method: str) -> dict[str, Any]:
    """The TRL_OPTIONS that `method` reads, by each field's `ui(only=...)` (RLOOConfig has no
    loss_type, importance sampling level or reward scaling; PPO is written here and reads none)."""

    def readers(name: str) -> tuple[str, ...]:
        extra = RLParams.model_fields[name].json_schema_extra
        return tuple(extra.get("ui_only") or GROUP) if isinstance(extra, dict) else GROUP  # type: ignore[arg-type]

    return {name: getattr(rl, name) for name in TRL_OPTIONS if method in readers(name)}


def fit_group(ctx: RunContext, trainer_cls: Any, config_cls: Any) -> RunState:
    """GRPO's and RLOO's shared path: rewards, TRL config, train, save."""
    from backends.worker import rollouts
    from backends.worker.rewards import SampleRecorder, StepForRecorder, build_reward, reward_names
    from backends.worker.trainers import fit, prepare, trainer_kwargs, use_vllm

    inputs = prepare(ctx)
    cfg, rl = ctx.cfg, ctx.cfg.rl
    recorder = SampleRecorder(ctx.run, rl.samples_per_log, ctx.main_process)
    funcs = [
        recorder.wrap(build_reward(s), n) for s, n in zip(rl.rewards, reward_names(rl.rewards), strict=True)
    ]
    vllm = use_vllm(ctx.runtime)
    args = config_cls(
        **trainer_kwargs(ctx),
        num_generations=rl.num_generations,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        beta=rl.beta,
        reward_weights=[s.weight for s in rl.rewards],
        use_vllm=vllm,
        vllm_mode="colocate",
        **trl_options(rl, cfg.method),
    )
    # TRL samples with the model's own `generate` (transformers path): on a CPU with bf16, from
    # a bf16 copy of the policy instead (backends/worker/rollouts.py)
    fast = not vllm and rollouts.wanted(ctx.runtime, rl.rollouts)
    return fit(
        trainer_cls,
        ctx,
        inputs,
        args,
        callbacks=[StepForRecorder(recorder)],
        before_train=(lambda trainer: rollouts.install(trainer.model)) if fast else None,
        reward_funcs=funcs,
    )


def train(ctx: RunContext) -> RunState:
    from trl import GRPOConfig, GRPOTrainer

    return fit_group(ctx, GRPOTrainer, GRPOConfig)


RL_CHARTS = ("reward", "kl", "completions/mean_length", "reward_std")


def kl_reference(cfg: RunConfig) -> bool:
    """A KL penalty (`rl.beta` > 0) needs the reference model's log-probs: a frozen copy
    unless LoRA (the adapter switched off). GRPO, RLOO and PPO share this."""
    return float(cfg.rl.beta or 0.0) > 0


METHOD = MethodSpec(
    name="grpo",
    help="GRPO: sample a group per prompt, reward each, and push toward the above-average ones; no value model.",
    run=train,
    formats=PROMPTS,
    section="rl",
    params=RLParams,
    charts=RL_CHARTS,
    keeps_columns=True,
    # No early stopping: its eval is generation and rewards, with no eval loss to watch.
    ignores=("train.max_length", "train.early_stopping_*", "train.metric_for_best_model"),
    check=check_group,
    generates=True,
    multi_process=True,
    reference_model=kl_reference,
    order=70,
)
