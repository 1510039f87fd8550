"""What a run will take before it starts: its processes (and the command that starts them), its
memory estimate, and where it goes with what request, as Markdown for the Train form. No
gradio, no torch."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from backends.core.runs.executors import Executor, Request, request_for
from backends.core.runs.memory import estimate_run
from backends.core.runs.processes import plan_for_config, rank_command
from backends.core.spec.config import RunConfig
from backends.core.spec.rawconfig import ConfigError

VERDICT = {
    "fits": "fits",
    "tight": "**tight**: over 80 % of the free memory; lower the batch or max length if it fails",
    "too_big": "**will not fit**: lower `train.per_device_train_batch_size` or `train.max_length`, "
    "turn on activation checkpointing, use LoRA, or fewer processes",
    "unknown": "free memory unknown on this device",
}


def resources(
    cfg: RunConfig, gpus: list[str] | None = None, elsewhere: str | None = None
) -> tuple[str, bool]:
    """(Markdown, too_big): the processes, the ranks' command, and the memory verdict. With
    `elsewhere` (a cluster), the plan and the estimate are this machine's, not the node's the
    run lands on, so they inform and never refuse."""
    try:
        plan = plan_for_config(cfg, gpus)
    except ConfigError as e:  # more processes than this machine's GPUs
        if not elsewhere:
            return f"**Processes:** refused: {'; '.join(e.problems)}", True
        gpus = None  # a cluster node has GPUs of its own: plan and estimate as on this CPU
        plan = plan_for_config(cfg, gpus)
    lines = [f"**Processes:** {plan.processes} ({plan.why})"]
    if plan.processes > 1:
        cmd = rank_command("runs/<run_id>", plan, cfg.launch.accelerate_config, python="python")
        lines.append(f"`{shlex.join(cmd)}`")
    est = estimate_run(cfg, gpus)
    if est is None:
        lines.append("**Memory:** unknown (the model's config.json is not available here)")
        return "\n\n".join(lines), False
    lines.append(f"**Memory:** {est.summary()}: {VERDICT[est.verdict]}")
    if elsewhere:
        lines.append(f"(as on this machine; the run goes to {elsewhere}, whose node may differ)")
        return "\n\n".join(lines), False
    return "\n\n".join(lines), est.verdict == "too_big"


def _count(value: Any) -> int | None:
    """A form's optional count: None when empty; ValueError when it is not a whole number."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def form_request(values: Mapping[str, Any]) -> Request | None:
    """The cluster request of the Train form's values (`launch.processes`, `launch.cpus`,
    `launch.gpus`, `train.device`); None while one of them does not read (the form's
    errors name it)."""
    try:
        processes = values.get("launch.processes") or "auto"
        if isinstance(processes, str):
            processes = processes.strip() or "auto"
        processes = processes if processes == "auto" else int(processes)
        return request_for(
            processes,
            _count(values.get("launch.cpus")),
            _count(values.get("launch.gpus")),
            str(values.get("train.device") or "auto"),
        )
    except (TypeError, ValueError):
        return None


def placement(executor: Executor, values: Mapping[str, Any]) -> str:
    """One line for the Train form: where a run of these values goes and what it asks for."""
    request = form_request(values)
    return executor.placement(request) if request else f"**Runs on:** {executor.where()}"
