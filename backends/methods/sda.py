"""Synthetic data augmentation of a preference set (the `sda` stage).

From a preference set (`data.dataset`), take a seed share of its prompts; let a model (the
stage's, or `sda.writer_model`) write new prompts in their style by continuing a numbered list
of a few seeds, Self-Instruct's way;
drop empty or malformed ones and near-duplicates of a seed or of a prompt already kept
(cosine similarity of sentence embeddings above `sda.similarity_threshold`); answer each
kept prompt `sda.num_samples` times and let the judge pick chosen (best) and rejected
(worst). With the checkers as judge, a new prompt's constraints are read back out of its
text (backends/core/tasks/taskparse.py), so the embedded tasks' checker judges it.

Writes data/synthetic.jsonl (the new pairs), data/pairs.jsonl (the original rows plus the
new ones when `sda.merge`, with a `source` column saying which), data/written.jsonl (every
prompt the model wrote, the instruction read from it and its fate: malformed and why,
near-duplicate, kept, pair or no contrast), and summary.json (counts that add up: generated =
malformed + duplicate + kept; kept = pairs + no contrast; malformed by reason; and the
similarity of each candidate to its nearest neighbour, for the chart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import ModelPath, Params, RewardSpec, ui, warm_field
from backends.core.spec.registry import PREFERENCE, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.context import RunContext


class SDAParams(Params):
    """Synthetic augmentation"""

    seed_fraction: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        title="Seed share",
        description="Share of the preference set's prompts shown to the model as examples of style.",
        json_schema_extra=ui(main=True),
    )
    new_prompts: int = Field(
        64,
        gt=0,
        title="Prompts to write",
        description="New prompts asked of the model.",
        json_schema_extra=ui(main=True),
    )
    shots: int = Field(
        3, ge=1, le=8, title="Examples per request", description="Seed prompts shown in each request."
    )
    writer_model: ModelPath | None = Field(
        None,
        title="Prompt writer",
        description="The model that writes the new prompts by continuing a numbered list of seeds (empty: "
        "the stage's model). A base or instruct model does this best; one fine-tuned only to answer "
        "tends to answer the seeds instead.",
    )
    prompt_temperature: float = Field(1.0, gt=0.0, title="Writing temperature")
    prompt_max_new_tokens: int = Field(96, gt=0, title="Prompt length (tokens)")
    similarity_threshold: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        title="Duplicate threshold",
        description="A new prompt whose cosine similarity to a seed or a kept prompt is above this is dropped.",
        json_schema_extra=ui(main=True),
    )
    embedding_model: str = Field(
        "builtin:all-minilm-l6-v2",
        title="Embedding model",
        description="all-MiniLM-L6-v2, shipped offline. A folder of another sentence-embedding model from the "
        "command line only: the web keeps the default (the path policy knows no embedder folders).",
        json_schema_extra=ui(form=False),
    )
    num_samples: int = Field(4, ge=2, title="Answers per prompt", json_schema_extra=ui(main=True))
    max_new_tokens: int = Field(64, gt=0, title="Answer length (tokens)")
    temperature: float = Field(0.9, gt=0.0, title="Answer temperature")
    judge: RewardSpec = Field(
        default_factory=RewardSpec,
        title="Judge",
        description="Picks chosen / rejected: {kind: checkers} (prompts with embedded-task constraints) or "
        "{kind: reward_model, path: ...}",
        json_schema_extra=ui(main=True),
    )
    merge: bool = Field(
        True, title="Merge with the original", description="pairs.jsonl = original rows + new pairs."
    )
    batch_size: int = Field(16, gt=0, title="Generation batch")
    warm: bool = warm_field()


def checkers_can_judge(cfg: RunConfig, rows: list[dict[str, Any]]) -> list[str]:
    """With the checkers as judge a new prompt must spell the embedded tasks' constraint
    sentences. Seed prompts with none give new prompts with none: every one would be dropped
    as malformed after minutes of writing, so such a set is refused before the run."""
    if cfg.sda.judge.kind != "checkers" or not rows:
        return []
    from backends.core.tasks.taskparse import instruction_of, parse_constraints

    if any(parse_constraints(instruction_of(r.get("prompt", ""))) for r in rows):
        return []
    return [
        f"`sda.judge` is checkers, but none of the first {len(rows)} prompts carries a constraint the "
        'checkers can read (the embedded tasks\' sentences, e.g. "Use exactly 3 sentences."), so no written '
        "prompt would either; judge with a reward model: `sda.judge: {kind: reward_model, path: <a reward "
        "run's model/ folder>}`"
    ]


def train(ctx: RunContext) -> RunState:
    from backends.worker.augment import augment

    return augment(ctx)


def augmentation_report(run: RunDir, label: str) -> list[Any]:
    """The report's section on what the augmentation wrote (kept, dropped, judged pairs)."""
    from backends.core.reports.report import augmentation_section

    sec = augmentation_section(run, f"{label}: what the augmentation wrote")
    return [sec] if sec else []


METHOD = MethodSpec(
    name="sda",
    help="Synthetic data augmentation: the model writes new prompts like a preference set's, near-duplicates "
    "are dropped, answers are judged into new pairs, merged with the original set.",
    run=train,
    formats=PREFERENCE,
    section="sda",
    params=SDAParams,
    charts=("generated", "kept", "pairs", "reward"),
    resumable=False,
    keeps_columns=True,
    outputs=("pairs", "synthetic", "written"),
    # the checkers judge new prompts by the constraints read from their own text, so the
    # preference set needs no `constraints` column
    column_needs=lambda cfg: {},
    check_rows=checkers_can_judge,
    ignores=("train.*", "lora.*", "data.eval_fraction"),
    keeps=("train.seed", "train.device"),
    generates=True,
    trains=False,
    report=augmentation_report,
    order=105,
)
