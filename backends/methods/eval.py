"""The `eval` method (the Arena): answers from two or more models on a prompt set, judged by
one or more judges, tallied per pair of models.

Writes, batch after batch so the studio shows live tallies:
  samples.jsonl    every answer: prompt_id, prompt, model, response, length, scores per score judge
  judgments.jsonl  every verdict: prompt_id, a, b, judge, outcome for a (1 / 0.5 / 0)
  winrate.json     the tallies (backends/core/reports/comparison.py)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import JudgeSpec, ModelPath, Params, ui, warm_field
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.context import RunContext


class EvalParams(Params):
    """Comparison"""

    models: list[ModelPath] = Field(
        default_factory=list,
        title="Models",
        description="Two or more: builtin:smollm2-135m-instruct, run model/ folders, local folders.",
        json_schema_extra=ui(main=True),
    )
    judges: list[JudgeSpec] = Field(
        default_factory=lambda: [JudgeSpec()],
        min_length=1,
        title="Judges",
        description="A list: {kind: checkers} | {kind: ifeval} | {kind: reward_model, path: ...} | "
        "{kind: llm, path: ...}",
        json_schema_extra=ui(main=True),
    )
    max_new_tokens: int = Field(96, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(
        0.7,
        ge=0.0,
        title="Temperature",
        description="0: greedy (the same answer every time).",
        json_schema_extra=ui(main=True),
    )
    samples_per_prompt: int = Field(
        1,
        ge=1,
        title="Samples per prompt",
        description="Answers per prompt and model, averaged per prompt before pairing: raise it when sampling "
        "(temperature > 0) and a judge gives many ties; it costs that many times the generation.",
        json_schema_extra=ui(main=True),
    )
    batch_size: int = Field(
        8,
        gt=0,
        title="Generation batch",
        description="Prompts per generate call; tallies update after each batch.",
    )
    warm: bool = warm_field()


def check_models(cfg: RunConfig) -> list[str]:
    e, problems = cfg.eval, []
    if len(set(e.models)) < max(2, len(e.models)):
        problems.append(f"`eval.models` must name two or more different models, got {e.models}")
    if e.samples_per_prompt > 1 and e.temperature == 0:
        problems.append(
            f"`eval.samples_per_prompt` is {e.samples_per_prompt} but `eval.temperature` is 0: greedy answers "
            "are all the same; sample (temperature > 0) or use 1"
        )
    return problems


def train(ctx: RunContext) -> RunState:
    from backends.worker.evaluate import evaluate

    return evaluate(ctx)


def comparison_report(run: RunDir, label: str) -> list[Any]:
    """The report's sections for a finished comparison: verdict, scores, quality, tallies."""
    from backends.core.reports.report_comparison import comparison_sections

    if not run.winrate_path.exists():
        return []
    return comparison_sections(json.loads(run.winrate_path.read_text()), f"{label}: the comparison")


METHOD = MethodSpec(
    name="eval",
    help="Compare two or more models on a prompt set: generate, judge (checkers, reward model, LLM, "
    "people), and tally win rates with confidence intervals.",
    run=train,
    formats=PROMPTS,
    section="eval",
    params=EvalParams,
    charts=("win_rate/*",),
    resumable=False,
    keeps_columns=True,
    ignores=("train.*", "lora.*", "data.eval_fraction", "model.name_or_path", "model.dtype"),
    keeps=("train.seed", "train.device"),
    check=check_models,
    generates=True,
    trains=False,
    report=comparison_report,
    report_curves=False,
    order=110,
)
