"""Order a labeling session by a reward model's uncertainty (the `uncertainty` stage).

A reward model (a `reward` run's model/ folder) scores every response of the session's items;
an item's uncertainty is its |margin|, the gap between its two responses' scores (with more
responses: the smallest gap between any two). The run writes each item's priority, higher
for a smaller gap, and the scores into the label store in one transaction, so the Label tab
serves the pairs the model is least sure of first, to every annotator, with the session's
holds and K as usual. It also writes data/scores.jsonl (an item per line, most uncertain
first) and summary.json. The studio only starts the run: it never loads the model. The
work is backends/worker/uncertainty.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from backends.core.spec.params import DataPath, ModelPath, Params, ui
from backends.core.spec.registry import PREFERENCE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.context import RunContext


class UncertaintyParams(Params):
    """Uncertainty order"""

    reward_model: ModelPath | None = Field(
        None,
        title="Reward model",
        description="A reward run's model/ folder: its |margin| on each pair decides the order.",
        json_schema_extra=ui(main=True),
    )
    session: str | None = Field(
        None,
        title="Labeling session",
        description="The session's name, as the Label tab lists it.",
        json_schema_extra=ui(main=True),
    )
    store: DataPath | None = Field(
        None,
        title="Label store",
        description="The studio's labels.sqlite. Empty: $ALIGNMENT_STUDIO_DATA/labels.sqlite, else "
        "studio_data/labels.sqlite beside the runs folder (launch.py's defaults).",
    )
    batch_size: int = Field(16, gt=0, title="Scoring batch", description="Responses per forward pass.")


def check(cfg: RunConfig) -> list[str]:
    u = cfg.uncertainty
    problems = []
    if not u.reward_model:
        problems.append("`uncertainty.reward_model` is empty: name a reward run's model/ folder")
    if not (u.session or "").strip():
        problems.append("`uncertainty.session` is empty: name the labeling session to order")
    return problems


def train(ctx: RunContext) -> RunState:
    from backends.worker.uncertainty import order_queue

    return order_queue(ctx)


METHOD = MethodSpec(
    name="uncertainty",
    help="Order a labeling session by a reward model's uncertainty: it scores every pair, and the Label tab "
    "serves the smallest |margin| first.",
    run=train,
    formats=PREFERENCE,
    section="uncertainty",
    params=UncertaintyParams,
    charts=("abs_margin",),
    resumable=False,
    outputs=("scores",),
    column_needs=lambda cfg: {},
    check=check,
    ignores=("train.*", "lora.*", "data.*", "model.*", "launch.*"),  # the model is `uncertainty.reward_model`
    trains=False,
    order=108,
)
