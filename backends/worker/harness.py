"""The `harness` stage's work (backends/methods/harness.py says what it does and writes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from backends.core.data.online import hub_offline
from backends.core.reports.comparison import short
from backends.core.runs.rundir import RunState, atomic_write_text
from backends.worker.context import RunContext

LOCAL_BUILDERS = ("json", "csv", "parquet", "text", "arrow")
# the studio's own tasks (local data), always on the list beside the library's and the user's
STUDIO_TASKS = Path(__file__).resolve().parents[1] / "core" / "tasks" / "harness"


def task_manager(tasks: list[str], include_path: str | None) -> Any:
    """lm-evaluation-harness's task index: the folder of one's own tasks alone when it holds
    every task asked for (indexing the library's own ~15k tasks takes ~20 s here), else both."""
    from lm_eval.tasks import TaskManager

    paths = [str(STUDIO_TASKS), *([include_path] if include_path else [])]
    own = TaskManager(include_path=paths, include_defaults=False)
    if all(t in own.all_tasks for t in tasks):
        return own
    tm = TaskManager(include_path=paths)
    missing = [t for t in tasks if t not in tm.all_tasks]
    if missing:
        where = f" nor in {include_path}" if include_path else " (a folder of your own: harness.include_path)"
        raise ValueError(f"harness.tasks: {', '.join(missing)} is not a task of lm-evaluation-harness{where}")
    return tm


def offline_problem(name: str, config: dict[str, Any], include_path: str | None) -> str | None:
    """Why the task's data cannot be read on this machine, or None."""
    path = config.get("dataset_path")
    if not path:
        return None  # a group of tasks: its members are checked on their own
    kwargs = config.get("dataset_kwargs") or {}
    local = [Path(path)] + ([Path(include_path) / path] if include_path else [])
    if any(p.exists() for p in local) or (path in LOCAL_BUILDERS and kwargs.get("data_files")):
        return None
    if not hub_offline():
        return None  # online: the library downloads it
    import datasets

    try:
        datasets.load_dataset_builder(path, config.get("dataset_name"))
        return None  # in the datasets cache
    except Exception:  # noqa: BLE001 - any failure here means: not on this machine
        ds = f"{path!r}" + (f", {config['dataset_name']!r}" if config.get("dataset_name") else "")
        return (
            f"task `{name}` reads the dataset {path}"
            + (f" ({config['dataset_name']})" if config.get("dataset_name") else "")
            + f" from the Hugging Face Hub, which is not on this machine ({hub_offline()}): fetch it where "
            f'there is a network (`python -c "import datasets; datasets.load_dataset({ds})"`) and copy '
            "~/.cache/huggingface/datasets here, or give a task of your own with local data (harness.include_path)"
        )


def metric_rows(task_result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """{metric: {value, stderr}} from one task's results ("acc,none", "acc_stderr,none", ...)."""
    out: dict[str, dict[str, float | None]] = {}
    for key, value in task_result.items():
        metric, _, filt = key.partition(",")
        if not filt or "_stderr" in metric or not isinstance(value, int | float):
            continue
        name = metric if filt == "none" else f"{metric} ({filt})"
        se = task_result.get(f"{metric}_stderr,{filt}")
        out[name] = {"value": float(value), "stderr": float(se) if isinstance(se, int | float) else None}
    return out


def model_args(name: str, device: str) -> tuple[str, dict[str, Any]]:
    """(lm-evaluation-harness backend, its model_args) for a builtin name, folder or adapter."""
    from backends.core.spec.config import ModelConfig
    from backends.worker.generation import generation_dtype, vllm_available
    from backends.worker.models import adapter_base, merged_copy, resolve_model_path

    path = resolve_model_path(name)
    dtype, _ = generation_dtype(ModelConfig(name_or_path=name), device)
    if vllm_available(device):
        if adapter_base(path) is not None:
            path = str(merged_copy(ModelConfig(name_or_path=name), "sdpa"))
        return "vllm", {"pretrained": path, "dtype": dtype}
    args: dict[str, Any] = {"pretrained": path, "dtype": dtype}
    if (base := adapter_base(path)) is not None:
        args = {"pretrained": base, "peft": path, "dtype": dtype}
    return "hf", args


def run_harness(ctx: RunContext) -> RunState:
    h, run, progress = ctx.cfg.harness, ctx.run, ctx.progress
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import lm_eval

    models = list(h.models) or [ctx.cfg.model.name_or_path]
    progress.begin("loading", len(models))
    tm = task_manager(list(h.tasks), h.include_path)
    configs = {t: tm.task_index[t].cfg or {} for t in h.tasks}
    problems = [p for t, c in configs.items() if (p := offline_problem(t, c, h.include_path))]
    if problems:  # before any model loads
        raise ValueError("; ".join(problems))
    out: dict[str, Any] = {
        "version": lm_eval.__version__,
        "limit": h.limit,
        "num_fewshot": h.num_fewshot,
        "tasks": list(h.tasks),
        "models": {},
        "labels": {},
    }
    progress.begin("evaluating", len(models))
    for i, name in enumerate(models, 1):
        backend, args = model_args(name, ctx.runtime.device)
        print(
            f"harness: {short(name)} on {', '.join(h.tasks)} ({backend} backend, {args['dtype']})", flush=True
        )
        result = lm_eval.simple_evaluate(
            model=backend,
            model_args=args,
            tasks=list(h.tasks),
            num_fewshot=h.num_fewshot,
            batch_size=h.batch_size,
            device=ctx.runtime.device,
            limit=h.limit,
            task_manager=tm,
            log_samples=False,
            apply_chat_template=h.apply_chat_template,
            bootstrap_iters=1000,
            random_seed=ctx.cfg.train.seed,
        )
        per_task = {t: metric_rows(r) for t, r in (result or {}).get("results", {}).items()}
        out["models"][name], out["labels"][name] = per_task, short(name)
        atomic_write_text(run.path / "harness.json", json.dumps(out, indent=2))
        flat = {f"harness/{t}/{m}": v["value"] for t, ms in per_task.items() for m, v in ms.items()}
        progress.step(i, flat, model=short(name))
        if progress.should_stop():
            return RunState.STOPPED
    return RunState.SUCCEEDED
