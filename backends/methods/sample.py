"""The `sample` stage: on-policy preference data from a model's own samples.

Generate `sample.num_samples` responses per prompt (batched), score each with the judge
(the checkers, a reward-model run, or a function), and write
  data/pairs.jsonl   best vs worst response where their scores differ (preference format)
  data/sft.jsonl     the best response when it scores >= sample.sft_threshold (rejection sampling)
  samples.jsonl      every response with its score
A pipeline refers to them as `@stage.pairs` and `@stage.sft`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from backends.core.spec.params import Params, RewardSpec, ui, warm_field
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.worker.context import RunContext


class SampleParams(Params):
    """Sampling"""

    num_samples: int = Field(4, ge=2, title="Samples per prompt", json_schema_extra=ui(main=True))
    max_new_tokens: int = Field(64, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(0.9, gt=0.0, title="Temperature")
    batch_size: int = Field(16, gt=0, title="Generation batch", description="Prompts per generate call.")
    warm: bool = warm_field()
    judge: RewardSpec = Field(
        default_factory=RewardSpec,
        title="Judge",
        description="What scores each response: {kind: checkers} or {kind: reward_model, path: ...}",
        json_schema_extra=ui(main=True),
    )
    sft_threshold: float = Field(
        1.0,
        title="Best-of-N threshold",
        description="Best responses scoring at least this go to the SFT set.",
        json_schema_extra=ui(main=True),
    )


def train(ctx: RunContext) -> RunState:
    from backends.worker.sample import sample

    return sample(ctx)


METHOD = MethodSpec(
    name="sample",
    help="Sample N responses per prompt, score them with a judge, write best-vs-worst pairs and a "
    "best-of-N SFT set (on-policy preference data).",
    run=train,
    formats=PROMPTS,
    section="sample",
    params=SampleParams,
    charts=("reward", "best_reward", "pairs", "sft_rows"),
    resumable=False,
    keeps_columns=True,
    outputs=("pairs", "sft"),
    ignores=("train.*", "lora.*", "data.eval_fraction"),
    keeps=("train.seed", "train.device"),
    generates=True,
    trains=False,
    order=100,
)
