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

`python -m backends.core.pipeline PIPELINE_DIR` runs one (the studio starts it detached).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from backends.core import registry
from backends.core.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    config_to_yaml,
    read_preset,
    validate_config,
)
from backends.core.dataplan import DataFormatError
from backends.core.executors import Executor, ExecutorConfig, ExecutorError, make_executor
from backends.core.launcher import Launcher
from backends.core.preflight import preflight
from backends.core.report import write_pipeline_report
from backends.core.rundir import RunDir, RunState, list_runs

REF = re.compile(r"^@([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?$")


def is_pipeline(raw: Any) -> bool:
    return isinstance(raw, dict) and "stages" in raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return [node] if isinstance(node, str) and node.startswith("@") else []


def stage_dicts(
    raw: dict[str, Any], source: str, check: Callable[[RunConfig], Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(stage name, merged raw config) per stage; validates names, references and each config."""
    problems: list[str] = []
    unknown = set(raw) - {"name", "defaults", "stages", "reference"}
    ref = raw.get("reference")
    if ref is not None and (
        not isinstance(ref, dict) or not isinstance(ref.get("win_rate_vs_base", {}), dict)
    ):
        problems.append(
            f"`reference` must be a mapping with `source` and `win_rate_vs_base: {{stage: rate}}` ({source})"
        )
    if unknown:
        problems.append(
            f"pipeline keys {sorted(unknown)} are not known ({source}); use name, defaults, stages, reference"
        )
    stages = raw.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(problems + [f"`stages` must be a non-empty list ({source})"])
    defaults = raw.get("defaults") or {}
    out: list[tuple[str, dict[str, Any]]] = []
    methods: dict[str, str] = {}
    for i, st in enumerate(stages):
        where = f"{source}: stages[{i}]"
        if not isinstance(st, dict) or not isinstance(st.get("stage"), str):
            problems.append(f"{where} needs a `stage` name")
            continue
        name = st["stage"]
        body = {k: v for k, v in st.items() if k != "stage"}
        merged = _merge(defaults, body)
        merged.setdefault("name", f"{raw.get('name', 'pipeline')}-{name}")
        for ref in _refs(merged):
            m = REF.match(ref)
            if not m or m.group(1) not in methods:
                problems.append(
                    f"{where} ({name}): `{ref}` does not name an earlier stage "
                    f"(earlier: {sorted(methods) or 'none'})"
                )
            elif m.group(2) and m.group(2) not in _outputs(methods[m.group(1)]):
                made = _outputs(methods[m.group(1)])
                problems.append(
                    f"{where} ({name}): `{ref}`: stage `{m.group(1)}` ({methods[m.group(1)]}) writes "
                    + (f"the datasets {', '.join(made)}" if made else "no datasets, only a model")
                )
        placeholder = _resolve(merged, {n: Path("/pipeline") / n for n in methods})
        try:
            if check is not None:  # the studio's path policy, before the preflight opens anything
                check(validate_config(merged, f"{where} ({name})"))
            cfg = validate_config(placeholder, f"{where} ({name})")
            if not str((merged.get("data") or {}).get("dataset", "")).startswith("@"):
                preflight(cfg)  # a stage's own data is checked now; `@stage` data when its stage starts
        except ConfigError as e:
            problems += e.problems
        except DataFormatError as e:
            problems.append(f"{where} ({name}): {e}")
        if name in methods:
            problems.append(f"{where}: stage name `{name}` is used twice")
        methods[name] = str(merged.get("method", "sft"))
        out.append((name, merged))
    if problems:
        raise ConfigError(problems)
    return out


def _outputs(method: str) -> tuple[str, ...]:
    try:
        return registry.get(method).outputs
    except KeyError:
        return ()  # an unknown method is reported by the stage's own validation


def _resolve(node: Any, outputs: dict[str, Path]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, outputs) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, outputs) for v in node]
    if isinstance(node, str) and (m := REF.match(node)) and m.group(1) in outputs:
        base = outputs[m.group(1)]
        run = RunDir(base)
        return str(run.data_path(m.group(2))) if m.group(2) else str(run.model_dir)
    return node


def load_pipeline(path: str | os.PathLike[str], overrides: list[str] | None = None) -> dict[str, Any]:
    """Read and check a pipeline preset. `--set stages.<stage>.<key>=v` edits one stage,
    `--set defaults.<key>=v` all of them."""
    raw = read_preset(path)
    if overrides:
        by_stage = {s.get("stage"): s for s in raw.get("stages", []) if isinstance(s, dict)}
        for item in overrides:
            key, _, value = item.partition("=")
            parts = key.split(".")
            if parts[0] == "stages" and len(parts) > 2:
                if parts[1] not in by_stage:
                    raise ConfigError([f"`--set {item}`: no stage `{parts[1]}`; stages: {sorted(by_stage)}"])
                apply_overrides(by_stage[parts[1]], [".".join(parts[2:]) + "=" + value])
            else:
                apply_overrides(raw, [item])
    stage_dicts(raw, str(path))
    return raw


def create_pipeline(raw: dict[str, Any], runs_dir: str | os.PathLike[str]) -> RunDir:
    from backends.core.launcher import new_run_id

    pdir = RunDir(Path(runs_dir).resolve() / new_run_id(f"{raw.get('name', 'pipeline')}-pipeline"))
    pdir.path.mkdir(parents=True)
    pdir.config_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    pdir.init_status()
    stages = stage_dicts(raw, str(pdir.config_path))
    pdir.update_status(
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
        for i, (name, merged) in enumerate(stages):
            cfg: RunConfig = validate_config(_resolve(merged, outputs), f"{self.pdir.config_path}: {name}")
            run = _find_reusable(self.launcher.runs_dir, config_to_yaml(cfg))
            if run is not None:
                print(f"stage {name}: reusing succeeded run {run.run_id} (same config)", flush=True)
                self._set_stage(i, run_id=run.run_id, state="succeeded", reused=True)
                outputs[name] = run.path
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
            if state != RunState.SUCCEEDED:
                reason = run.read_status().get("error") or state.value
                final = RunState.STOPPED if state == RunState.STOPPED else RunState.FAILED
                self.pdir.try_finalize(final, error=f"stage `{name}` {state.value}: {reason}")
                return final
            outputs[name] = run.path
        self.pdir.update_status(state=RunState.SUCCEEDED)
        return RunState.SUCCEEDED

    def _wait(self, run: RunDir) -> RunState:
        while True:
            try:
                if self.pdir.stop_requested() and not run.stop_requested():
                    self.launcher.stop(run)
                self.launcher.reconcile()
                self.launcher.schedule()
            except ExecutorError as e:  # a cluster out of reach for a moment: its runs go on
                print(f"pipeline: {e}", file=sys.stderr, flush=True)
            state = run.state()
            if state.is_finalized:
                return state
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.core.pipeline")
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
    """Start `python -m backends.core.pipeline PDIR` detached (the studio's way); return its pid."""
    from backends.core.launcher import pipeline_command, start_detached

    proc = start_detached(pipeline_command(python, pdir), pdir.log_path)
    pdir.update_status(pid=proc.pid, claimed=True)
    return proc.pid
