"""The `harness` method: lm-evaluation-harness tasks on one or more models (its `hf` backend
here, `vllm` on a GPU where vLLM is installed), each task's metrics with their standard errors
in the run directory (`harness.json`, one metrics.jsonl row per model), and a comparison table
in the report. Usable as a pipeline stage after training (`harness.models: [base, "@sft"]`).

    method: harness
    harness:
      tasks: [studio_basics, my_task] # lm-evaluation-harness task names (studio_basics: the
                                      # studio's own, backends/core/tasks/harness)
      include_path: tasks/            # a folder of task YAMLs of your own (local data)
      models: [builtin:smollm2-135m-instruct, "@sft"]   # default: model.name_or_path
      limit: 100                      # documents per task (all when empty)
      num_fewshot: 0

Offline, a task whose dataset is neither local nor in the datasets cache is refused before any
model loads, naming the task, the dataset and how to fetch it. lm-evaluation-harness is the
`harness` extra (`pip install -e ".[harness]"`; make setup installs it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import DataPath, ModelPath, Params, ui
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.context import RunContext

HARNESS_FILE = "harness.json"


class HarnessParams(Params):
    """Benchmark (lm-evaluation-harness)"""

    tasks: list[str] = Field(
        default_factory=list,
        title="Tasks",
        description="lm-evaluation-harness task names, e.g. arc_easy, or tasks of your own in `include_path`.",
        json_schema_extra=ui(main=True),
    )
    include_path: DataPath | None = Field(
        None,
        title="Task folder",
        description="A folder of task YAMLs of your own (lm-evaluation-harness's format), with local data.",
        json_schema_extra=ui(main=True),
    )
    models: list[ModelPath] = Field(
        default_factory=list,
        title="Models",
        description="Models to evaluate, side by side; empty: model.name_or_path.",
        json_schema_extra=ui(main=True),
    )
    limit: int | None = Field(None, gt=0, title="Documents per task", description="Empty: every document.")
    num_fewshot: int | None = Field(
        None, ge=0, title="Few-shot examples", description="Empty: the task's own."
    )
    batch_size: int = Field(8, gt=0, title="Batch size")
    apply_chat_template: bool = Field(
        False, title="Chat template", description="Wrap each request in the model's chat template."
    )


def check_tasks(cfg: RunConfig) -> list[str]:
    if not cfg.harness.tasks:
        return ["`harness.tasks` must name at least one lm-evaluation-harness task"]
    return []


def train(ctx: RunContext) -> RunState:
    from backends.worker.harness import run_harness

    return run_harness(ctx)


def harness_report(run: RunDir, label: str) -> list[Any]:
    """One table: task, metric, then each model's value ± standard error."""
    from backends.core.reports.report import Section

    path = run.path / HARNESS_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    models = list(data["models"])
    rows = []
    for task in data["tasks"]:
        metrics = sorted({m for model in models for m in data["models"][model].get(task, {})})
        for metric in metrics:
            cells = []
            for model in models:
                v = data["models"][model].get(task, {}).get(metric)
                if v is None:
                    cells.append("-")
                    continue
                se = v.get("stderr")
                cells.append(f"{v['value']:.3f}" + (f" ± {se:.3f}" if isinstance(se, int | float) else ""))
            rows.append([task, metric, *cells])
    names = [data["labels"].get(m, m) for m in models]
    text = [
        f"lm-evaluation-harness {data['version']}, {data['limit'] or 'all'} document(s) per task; ± is the standard error."
    ]
    return [Section(f"{label}: benchmark", text, [(["task", "metric", *names], rows)])]


METHOD = MethodSpec(
    name="harness",
    help="Benchmark one or more models on lm-evaluation-harness tasks (your own local tasks too): each "
    "task's metrics with standard errors, side by side.",
    run=train,
    formats=PROMPTS,
    section="harness",
    params=HarnessParams,
    charts=("harness/*",),
    resumable=False,
    ignores=("train.*", "lora.*", "data.*", "model.dtype"),
    keeps=("train.seed", "train.device"),
    check=check_tasks,
    generates=True,
    trains=False,
    report=harness_report,
    report_curves=False,
    order=115,
)
