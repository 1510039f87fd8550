"""Pipelines: a preset with `stages:` runs its stages in order, each in its own run directory.

    name: instructgpt
    defaults: {model: {...}, train: {...}}      # merged into every stage
    stages:
      - {stage: sft, method: sft}
      - {stage: pairs, method: sample, model: {name_or_path: "@sft"}}
      - {stage: reward, method: reward, data: {dataset: "@pairs.pairs"}}
      - {stage: ppo, method: ppo, model: {name_or_path: "@sft"},
         rl: {rewards: [{kind: reward_model, path: "@reward"}]}}

`@stage` is that stage's model/ folder; `@stage.<name>` is a dataset it wrote (a method's
`outputs` in the registry: a sample stage writes `pairs` and `sft`), e.g. `@stage.pairs` of a sample
stage's data files. The pipeline has a directory too (kind `pipeline` in its status.json,
with each stage's run id and state). A failed stage stops the pipeline with its reason; a
rerun reuses any earlier succeeded run whose resolved config is identical.

`reference:` (optional) holds published numbers to print beside the final comparison:
`{source: "...", win_rate_vs_base: {stage: 0.627, ...}}`.

`python -m backends.core.pipelines.pipeline PIPELINE_DIR` runs one (the studio starts it detached).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from backends.core.data.dataplan import DataFormatError
from backends.core.data.preflight import preflight
from backends.core.pipelines.stages import (  # noqa: F401 - moved there; imported here for their users
    REF,
    is_pipeline,
    load_pipeline,
    resolve_refs,
    stage_dicts,
    stage_outputs,
)
from backends.core.pipelines.sweep import is_sweep, metric_value, swept_stage, trial_config, write_sweep
from backends.core.reports.report import write_pipeline_report
from backends.core.runs.executor_kinds import make_executor
from backends.core.runs.executors import Executor, ExecutorConfig, ExecutorError
from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir, RunState, list_runs
from backends.core.spec.config import (
    ConfigError,
    RunConfig,
    config_to_yaml,
    validate_config,
)


def create_pipeline(raw: dict[str, Any], runs_dir: str | os.PathLike[str]) -> RunDir:
    from backends.core.runs.launcher import new_run_id

    pdir = RunDir(Path(runs_dir).resolve() / new_run_id(f"{raw.get('name', 'pipeline')}-pipeline"))
    stages = stage_dicts(raw, str(pdir.config_path))  # a bad preset leaves no folder behind
    pdir.path.mkdir(parents=True)
    pdir.config_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    # one write with the kind: a scheduler that saw a pending run without it would claim the
    # pipeline's folder and start it as a training run (it did, under load, in the test suite)
    pdir.init_status(
        kind="pipeline",
        stages=[
            {"stage": n, "method": d.get("method", "sft"), "run_id": None, "state": "pending"}
            for n, d in stages
        ],
    )
    return pdir


def _find_reusable(runs_dir: Path, cfg_yaml: str) -> RunDir | None:
    for run in list_runs(runs_dir):
        try:
            if run.read_status()["state"] == "succeeded" and _same_config(
                run.config_path.read_text(), cfg_yaml
            ):
                return run
        except OSError:
            continue
    return None


def _same_config(earlier: str, cfg_yaml: str) -> bool:
    """An earlier run's config.yaml asks for what `cfg_yaml` asks for: the same text, or the same
    once read by today's code (a run written before a field existed gets its default, so a new
    option with the old behaviour as default does not retrain every stage)."""
    if earlier == cfg_yaml:
        return True
    try:
        return config_to_yaml(validate_config(yaml.safe_load(earlier), "an earlier run")) == cfg_yaml
    except (ConfigError, yaml.YAMLError):
        return False  # a config today's code no longer reads is not the same config


class PipelineRunner:
    def __init__(self, pdir: RunDir, launcher: Launcher | Executor, on_stage: Any = None) -> None:
        self.pdir, self.launcher, self.on_stage = pdir, launcher, on_stage
        self.asked: Any = None

    def _set_stage(self, i: int, **fields: Any) -> None:
        stages = self.pdir.read_status()["stages"]
        stages[i].update(fields)
        self.pdir.update_status(
            stages=stages, step=sum(s["state"] == "succeeded" for s in stages), total_steps=len(stages)
        )

    def run(self) -> RunState:
        raw = yaml.safe_load(self.pdir.config_path.read_text())
        stages = stage_dicts(raw, str(self.pdir.config_path))
        self.pdir.update_status(
            state=RunState.RUNNING, pid=os.getpid(), started_at=time.time(), phase="stages"
        )
        outputs: dict[str, Path] = {}
        group = swept_stage(raw)  # a pipeline stage tried over a grid: its trials, then the best
        trials = set(group[2]) if group else set()
        self.asked = None  # an optuna sweep's study: it picks each trial's values as it starts
        if is_sweep(raw) and raw["sweep"].get("strategy") == "optuna":
            from backends.core.pipelines.optuna_sweep import OptunaTrials

            self.asked = OptunaTrials(raw["sweep"], raw.get("train") or {})
            print(f"optuna: {self.asked.describe()}", flush=True)
        for i, (name, merged) in enumerate(stages):
            sweep = is_sweep(raw) or name in trials
            if group and name == group[2][0]:
                print(
                    f"stage {group[0]}: {len(group[2])} trials, the best by {group[1]['metric']} goes on",
                    flush=True,
                )
            if self.asked is not None:
                values = self.asked.values(i)
                merged = trial_config(merged, values)
                self._set_stage(i, overrides=values)
                print(f"trial {name}: " + ", ".join(f"{k} = {v!r}" for k, v in values.items()), flush=True)
            cfg: RunConfig = validate_config(
                resolve_refs(merged, outputs), f"{self.pdir.config_path}: {name}"
            )
            run = _find_reusable(self.launcher.runs_dir, config_to_yaml(cfg))
            if run is not None:
                print(f"stage {name}: reusing succeeded run {run.run_id} (same config)", flush=True)
                self._set_stage(i, run_id=run.run_id, state="succeeded", reused=True)
                outputs[name] = run.path
                if sweep:
                    self._tell(i, run, RunState.SUCCEEDED)
                    write_sweep(self.pdir, raw)
                if not self._pick_best(group, name, raw, outputs):
                    return RunState.FAILED
                continue
            try:
                preflight(cfg)  # `@stage` data exists now: refuse it before this stage's run exists
            except DataFormatError as e:
                self._set_stage(i, state=RunState.FAILED.value)
                self.pdir.try_finalize(RunState.FAILED, error=f"stage `{name}` refused: {e}")
                return RunState.FAILED
            run = self.launcher.create_run(cfg)
            run.update_status(pipeline=self.pdir.run_id, stage=name)
            self._set_stage(i, run_id=run.run_id, state="pending")
            print(f"stage {i + 1}/{len(stages)} {name} ({cfg.method}): run {run.run_id}", flush=True)
            if self.on_stage:
                self.on_stage(name, run)
            state = self._wait(run)
            self._set_stage(i, state=state.value)
            if sweep:
                shown = self._tell(i, run, state)
                write_sweep(self.pdir, raw)
                if state == RunState.FAILED:  # a sweep's trials are independent: try the next
                    print(f"trial {name} failed: {run.read_status().get('error')}", flush=True)
                    continue
                if shown == "pruned":
                    print(
                        f"trial {name} pruned: its {raw['sweep']['metric']} was behind the median", flush=True
                    )
                    continue
            if state != RunState.SUCCEEDED:
                reason = run.read_status().get("error") or state.value
                final = RunState.STOPPED if state == RunState.STOPPED else RunState.FAILED
                self.pdir.try_finalize(final, error=f"stage `{name}` {state.value}: {reason}")
                return final
            outputs[name] = run.path
            if not self._pick_best(group, name, raw, outputs):
                return RunState.FAILED
        if is_sweep(raw) and not any(s["state"] == "succeeded" for s in self.pdir.read_status()["stages"]):
            self.pdir.try_finalize(RunState.FAILED, error="every trial of the sweep failed")
            return RunState.FAILED
        self.pdir.update_status(state=RunState.SUCCEEDED)
        return RunState.SUCCEEDED

    def _pick_best(self, group: Any, name: str, raw: dict[str, Any], outputs: dict[str, Path]) -> bool:
        """After a swept stage's last trial: later stages' `@stage` is its best trial's run.
        False (and the pipeline failed) when no trial succeeded with the metric."""
        if not group or name != group[2][-1]:
            return True
        summary = write_sweep(self.pdir, raw)
        best = next((t for t in summary["trials"] if t["trial"] == summary["best"]), None)
        if best is None:
            self.pdir.try_finalize(
                RunState.FAILED,
                error=f"stage `{group[0]}`: no trial succeeded with `{group[1]['metric']}` logged",
            )
            return False
        outputs[group[0]] = self.launcher.runs_dir / best["run_id"]
        print(
            f"stage {group[0]}: best trial {best['trial']} ({group[1]['metric']} {best['metric']:.4g})",
            flush=True,
        )
        return True

    def _tell(self, i: int, run: RunDir, state: RunState) -> str:
        """An optuna sweep's study learns how trial i ended; the state its sweep.json shows."""
        if self.asked is None:
            return state.value
        shown = self.asked.tell(state, metric_value(run, self.asked.metric))
        self._set_stage(i, state=shown)
        return shown

    def _wait(self, run: RunDir) -> RunState:
        while True:
            try:
                if self.pdir.stop_requested() and not run.stop_requested():
                    self.launcher.stop(run)
                elif self.asked is not None and self.asked.should_stop(run) and not run.stop_requested():
                    self.launcher.stop(run)  # pruned: the run saves and ends as stopped
                self.launcher.reconcile()
                self.launcher.schedule()
            except ExecutorError as e:  # a cluster out of reach for a moment: its runs go on
                print(f"pipeline: {e}", file=sys.stderr, flush=True)
            state = run.state()
            if state.is_finalized:
                return state
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.core.pipelines.pipeline")
    ap.add_argument("pipeline_dir")
    args = ap.parse_args(argv)
    pdir = RunDir(args.pipeline_dir)
    try:
        # Stages start where the studio (or headless mode) that started the pipeline runs them.
        where = ExecutorConfig.from_dict(pdir.read_status().get("stage_executor"))
        state = PipelineRunner(pdir, make_executor(where, Launcher(pdir.path.parent))).run()
    except BaseException as e:
        pdir.try_finalize(RunState.FAILED, error=f"{type(e).__name__}: {e}"[:500])
        raise
    finally:
        write_pipeline_report(pdir)
        print(f"report: {pdir.report_md_path} and {pdir.report_html_path}", flush=True)
    return 0 if state == RunState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())


def start_pipeline(pdir: RunDir, python: str = sys.executable) -> int:
    """Start `python -m backends.core.pipelines.pipeline PDIR` detached (the studio's way); return its pid."""
    from backends.core.runs.launcher import pipeline_command, start_detached

    proc = start_detached(pipeline_command(python, pdir), pdir.log_path)
    pdir.update_status(pid=proc.pid, claimed=True)
    return proc.pid
