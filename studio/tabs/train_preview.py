"""What the Train form shows beside itself, for the form's current values: the problems (each
field by its label; the page marks the fields they name), the resolved config.yaml, the
headless command that repeats the run, the method's help and the resources line. No gradio.
"""

from __future__ import annotations

from typing import Any

from backends.core.pipelines.pipeline import is_pipeline
from backends.core.runs.launcher import REPO_ROOT
from backends.core.spec import registry
from backends.core.spec.config import PIPELINE_HELP, ConfigError, config_to_yaml, read_preset
from studio.context import StudioContext
from studio.logic import forms
from studio.logic.rerun import find_run, rerun_base
from studio.logic.resources import placement, resources


def read_text(ctx: StudioContext, name: str | None) -> str:
    return ctx.preset_path(name).read_text(encoding="utf-8") if name else ""


def errors_md(problems: list[str], source: str = "") -> str:
    """The problems as people read them: each once, a key named by its form label, and where
    they came from said once in the heading instead of after every line."""
    return (
        "**Fix before launching"
        + (f" ({source})" if source else "")
        + ":**\n"
        + "\n".join(f"- {p}" for p in forms.readable_problems(problems, source))
    )


# `errors` holds "**Learning rate** (`train.learning_rate`): ..."; each form field's element id
# is `field-` and its key with dashes for dots (studio/tabs/form.py)
MARK_FIELDS_JS = """
(md) => {
  if (!document.getElementById("field-problem-style")) {
    const style = document.createElement("style");
    style.id = "field-problem-style";
    style.textContent = ".field-problem { box-shadow: inset 0 0 0 2px #dc2626 !important; }"
      + " .field-problem input, .field-problem textarea { border: 1px solid #dc2626 !important;"
      + " background: #fef2f2 !important; }";
    document.head.appendChild(style);
  }
  document.querySelectorAll(".field-problem").forEach((e) => e.classList.remove("field-problem"));
  for (const m of (md || "").matchAll(/`([A-Za-z_][\\w.]*)`/g)) {
    const el = document.getElementById("field-" + m[1].replaceAll(".", "-"));
    if (el) el.classList.add("field-problem");
  }
}
"""


def method_help(method: str) -> str:
    try:
        return registry.get(method).help
    except KeyError:
        return ""


def preset_arg(ctx: StudioContext, name: str) -> str:
    """The preset as the headless command names it: relative to the repository when inside it."""
    path = ctx.preset_path(name)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def checked_config(ctx: StudioContext, raw: dict[str, Any], values: list[Any], source: str) -> Any:
    """The form's run config through the one route (studio policy, then the data preflight);
    ConfigError otherwise."""
    return forms.form_to_config(raw, values, source, ctx.policy)[0]


def base_config(ctx: StudioContext, name: str | None, rerun_id: str | None) -> dict[str, Any]:
    """What the form's values go onto: the rerun run's config, else the preset."""
    if rerun_id:
        return rerun_base(find_run(ctx.runs_dir, rerun_id))
    return read_preset(ctx.preset_path(name)) if name else {}


def headless_command(
    ctx: StudioContext, name: str | None, raw: dict[str, Any], values: list[Any], rerun_id: str | None = None
) -> str:
    """The headless command for the form as it is; shown even when the studio refuses the
    run (a preset with trust_remote_code runs only from the command line). A rerun names the
    old run's config.yaml as its preset."""
    if rerun_id:
        run = find_run(ctx.runs_dir, rerun_id)
        preset = str(run.config_path)
        raw = read_preset(run.config_path)
    elif name:
        preset = preset_arg(ctx, name)
    else:
        return ""
    try:
        sets = [] if is_pipeline(raw) else forms.overrides(raw, values)
    except ConfigError:
        sets = []
    if rerun_id and raw.get("resume_from"):
        sets.append("resume_from=null")  # a rerun starts from scratch
    where = ctx.executor.config.cli_args()
    return forms.headless_command(preset, sets, str(ctx.runs_dir), where)


def elsewhere(ctx: StudioContext) -> str | None:
    """Where runs go when not on this machine (a cluster), for the resources line."""
    return None if ctx.executor.config.kind == "local" else ctx.executor.where()


def placement_line(ctx: StudioContext, values: list[Any]) -> str:
    return placement(ctx.executor, dict(zip(forms.keys(), values, strict=False)))


def preview(
    ctx: StudioContext, name: str | None, values: list[Any], rerun_id: str | None = None
) -> tuple[str, str, str, str]:
    """(errors, config YAML, headless command, method help) for the form's current values."""
    try:
        raw = base_config(ctx, name, rerun_id)
    except ConfigError as e:
        return errors_md(e.problems), "", "", ""
    cmd = headless_command(ctx, name, raw, values, rerun_id)
    if is_pipeline(raw):
        return "", "", cmd, PIPELINE_HELP
    help_line = method_help(values[0])
    source = f"Train form (rerun of {rerun_id})" if rerun_id else f"Train form (preset {name})"
    try:
        cfg = checked_config(ctx, raw, values, source)
    except ConfigError as e:
        return errors_md(e.problems, source), "", cmd, help_line
    needs, too_big = resources(cfg, ctx.launcher.gpus, elsewhere(ctx))
    errors = errors_md([needs.split("**Memory:** ", 1)[-1]]) if too_big else ""
    return errors, config_to_yaml(cfg), cmd, f"{help_line}\n\n{needs}"
