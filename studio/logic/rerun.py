"""Edit and rerun, Resume, and the config diff of runs, from the studio. No gradio import.

A rerun starts from the run's resolved config.yaml (every field as the run had it), under a
new name, through the same route as any form (`forms.build_config`). Resume does what
`launch.py --resume` does (`backends/core/runs/resume.py`): a new run from the last checkpoint,
with the old curve carried over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from backends.core.pipelines.pipeline import is_pipeline
from backends.core.runs.launcher import Launcher
from backends.core.runs.resume import create_resumed, resumable_in_ui, resume_config
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError
from backends.core.spec.rawconfig import load_yaml
from studio.logic import forms
from studio.logic.runs import resolve_run


def rerun_name(name: str | None, fallback: str) -> str:
    """`tiny-sft` -> `tiny-sft-rerun` -> `tiny-sft-rerun2` -> ..."""
    base = name or fallback
    m = re.fullmatch(r"(.*)-rerun(\d*)", base)
    if m:
        return f"{m.group(1)}-rerun{int(m.group(2) or 1) + 1}"
    return f"{base}-rerun"


def find_run(runs_dir: Path, run_id: str | None) -> RunDir:
    """The run of this id (a name under the runs folder, never a path), or ConfigError."""
    run = resolve_run(runs_dir, run_id)
    if run is None:
        raise ConfigError([f"run {run_id!r} is not a run in {runs_dir}; pick one from the list"])
    return run


def rerun_base(run: RunDir) -> dict[str, Any]:
    """The run's config as a preset for a new run: every value it ran with, a new name, and
    no `resume_from` (a rerun starts from scratch; Resume continues)."""
    try:
        raw = load_yaml(run.config_path.read_text(encoding="utf-8"), str(run.config_path))
    except OSError as e:
        raise ConfigError([f"run {run.run_id} has no readable config.yaml ({e})"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{run.config_path} is not a mapping of keys to values"])
    raw.pop("resume_from", None)
    raw["name"] = rerun_name(raw.get("name"), str(raw.get("method") or "run"))
    return raw


def rerun_form(run: RunDir) -> tuple[dict[str, Any], list[Any] | None]:
    """(the base, the Train form's values) for rerunning `run`; a pipeline has no form values
    (its YAML goes to the pipeline editor). ConfigError when its config no longer validates."""
    base = rerun_base(run)
    if is_pipeline(base):
        return base, None
    return base, forms.form_values(base, f"{run.config_path} (rerun)")


def pipeline_text(base: dict[str, Any]) -> str:
    return yaml.safe_dump(base, sort_keys=False, allow_unicode=True)


def resume_run(launcher: Launcher, run: RunDir) -> RunDir:
    """A new run continuing a failed or stopped `run` from its last checkpoint, queued. The
    launcher (the studio's) checks its config against the studio's policy like any run."""
    problem = resumable_in_ui(run)
    if problem:
        raise ConfigError([problem])
    return create_resumed(launcher, resume_config(run), run)


def resume_hint(runs_dir: Path, run_id: str | None) -> str:
    """A line under the run's buttons: whether Resume applies, and why not."""
    run = resolve_run(runs_dir, run_id)
    if run is None:
        return ""
    try:
        problem = resumable_in_ui(run)
    except (OSError, ValueError, KeyError) as e:
        return f"Resume: the run's files are unreadable ({type(e).__name__})"
    if problem is None:
        ckpt = run.last_checkpoint()
        return f"Resume continues it from `{ckpt.name if ckpt else '?'}` in a new run."
    return f"Resume: {problem.removeprefix(f'run {run.run_id}: ')}"
