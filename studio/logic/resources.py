"""What a run will take before it starts: its processes (and the command that starts them) and
its memory estimate, as Markdown for the Train form. No gradio, no torch."""

from __future__ import annotations

import shlex

from backends.core.config import RunConfig
from backends.core.memory import estimate_run
from backends.core.processes import plan_for_config, rank_command

VERDICT = {
    "fits": "fits",
    "tight": "**tight**: over 80 % of the free memory; lower the batch or max length if it fails",
    "too_big": "**will not fit**: lower `train.per_device_train_batch_size` or `train.max_length`, "
    "turn on activation checkpointing, use LoRA, or fewer processes",
    "unknown": "free memory unknown on this device",
}


def resources(cfg: RunConfig, gpus: list[str] | None = None) -> tuple[str, bool]:
    """(Markdown, too_big): the processes, the ranks' command, and the memory verdict."""
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
    return "\n\n".join(lines), est.verdict == "too_big"
