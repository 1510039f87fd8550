"""Continuing a run from its last checkpoint: what `launch.py --resume` and the studio's
"Resume" button share. No torch: both sides import it.

A finished run is never reopened. Resuming creates a new run directory whose config names
the checkpoint (`resume_from`) and which starts with the old run's metrics up to that
checkpoint, so its curve is continuous. The new run is held (claimed, no process) until
those rows are in, so no scheduler starts its worker before its curve exists.
"""

from __future__ import annotations

from pathlib import Path

from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir, RunState
from backends.core.spec import registry
from backends.core.spec.config import ConfigError, RunConfig, config_from_yaml


def checkpoint_step(checkpoint: str | Path) -> int:
    """`.../checkpoint-40` -> 40."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _old_config(old: RunDir) -> RunConfig:
    return config_from_yaml(old.config_path.read_text(encoding="utf-8"), str(old.config_path))


def resume_problem(old: RunDir, what: str, cfg: RunConfig | None = None) -> str | None:
    """Why `old` cannot be resumed (naming it as `what`) with `cfg` (default: its own config),
    or None when it can."""
    if not old.exists():
        return f"{what}: not a run directory (no status.json)"
    if cfg is None:
        try:
            cfg = _old_config(old)
        except (OSError, ConfigError) as e:
            return f"{what}: its config.yaml cannot be read ({e})"
    if not registry.get(cfg.method).resumable:
        return f"{what}: a `{cfg.method}` run cannot resume; start it again"
    if old.last_checkpoint() is None:
        return (
            f"{what}: no checkpoint in {old.checkpoints_dir}; the run saved none "
            "(lower `train.save_steps`, or stop it with Stop, which saves one)"
        )
    return None


def resumable_in_ui(old: RunDir) -> str | None:
    """Why the studio offers no Resume for `old` (None: it does). Besides what `--resume`
    needs, the run must have ended without finishing: failed or stopped."""
    if not old.exists():
        return f"run {old.run_id}: not a run directory (no status.json)"
    state = old.read_status()["state"]
    if state not in (RunState.FAILED.value, RunState.STOPPED.value):
        return (
            f"run {old.run_id} is {state}: Resume continues a failed or stopped run "
            "(Edit and rerun starts a new one from its config)"
        )
    return resume_problem(old, f"run {old.run_id}")


def resume_config(old: RunDir, cfg: RunConfig | None = None, what: str | None = None) -> RunConfig:
    """The config of a new run continuing `old` from its last checkpoint: `old`'s own config
    (or `cfg`, e.g. with overrides) with `resume_from` set. ConfigError says why not."""
    problem = resume_problem(old, what or f"run {old.run_id}", cfg)
    if problem:
        raise ConfigError([problem])
    cfg = cfg or _old_config(old)
    ckpt = old.last_checkpoint()
    assert ckpt is not None  # resume_problem checked it
    return cfg.model_copy(update={"resume_from": str(ckpt)})


def copy_metrics_until(src: RunDir, dst: RunDir, last_step: int) -> None:
    """Carry the old curve over so the resumed run's chart is continuous."""
    tail = src.tail_metrics()
    tail.poll()
    for row in tail.rows:
        if isinstance(row.get("step"), int) and row["step"] <= last_step:
            dst.append_metrics(row)


def create_resumed(launcher: Launcher, cfg: RunConfig, old: RunDir, device: str | None = None) -> RunDir:
    """The new run of a resume config, with `old`'s curve up to the checkpoint. It is created
    claimed, so no scheduler starts it meanwhile: with `device` it stays claimed for the
    caller to start (headless); without, it is released to the queue once its curve is in."""
    if not cfg.resume_from:
        raise ValueError("create_resumed needs a config with `resume_from` (see resume_config)")
    run = launcher.create_run(cfg, claimed=True, device=device or "cpu", resumed_from=old.run_id)
    copy_metrics_until(old, run, checkpoint_step(cfg.resume_from))
    if device is None:
        run.update_status(claimed=False)
    return run
