"""`launch.py --preset PIPELINE --headless`: run a pipeline preset as a child `python -m
backends.core.pipelines.pipeline` with a warm fork server for its stages, follow each stage with a
progress bar, and print the stages' table and the comparison at the end. Ctrl-C stops the
current stage (it saves); a second one kills the pipeline.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from contextlib import nullcontext
from typing import Any

from tqdm import tqdm

from backends.core.pipelines.headless import evaluation_line, follow, reports_line
from backends.core.pipelines.pipeline import create_pipeline
from backends.core.pipelines.sweep import SWEEP_FILE, sweep_table
from backends.core.runs.executors import ExecutorConfig
from backends.core.runs.forkserver import warm_server
from backends.core.runs.launcher import REPO_ROOT, Launcher, RunDir, pipeline_command, start_detached
from backends.core.runs.rundir import RunState
from backends.core.spec.config import ConfigError


def run_pipeline_headless(raw: dict, runs_dir: str, executor: ExecutorConfig | None = None) -> int:
    """Run a pipeline preset as a child `python -m backends.core.pipelines.pipeline` and follow each stage."""
    from backends.core.pipelines.policy import check_pipeline

    try:
        raw = check_pipeline(raw, None, "pipeline preset")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pdir = create_pipeline(raw, runs_dir)
    pdir.update_status(stage_executor=(executor or ExecutorConfig()).as_dict())  # where its stages run
    launcher = Launcher(runs_dir)
    cmd = pipeline_command(launcher.python, pdir)
    print(f"pipeline {pdir.run_id}\n  cd {REPO_ROOT} && {shlex.join(cmd)}")
    # its stages fork from a warm server instead of importing torch again each (on a cluster
    # they start there)
    local = (executor or ExecutorConfig()).kind == "local"
    with warm_server(runs_dir, launcher.python) if local else nullcontext():
        proc = start_detached(cmd, pdir.log_path)
        return _follow_pipeline(pdir, proc)


def _follow_pipeline(pdir: RunDir, proc: Any) -> int:
    interrupts = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        pdir.request_stop()
        tqdm.write("stopping the pipeline: the current stage saves and stops (Ctrl-C again to kill)")
        if interrupts > 1:
            proc.terminate()

    previous = signal.signal(signal.SIGINT, on_sigint)
    followed: set[str] = set()
    try:
        while proc.poll() is None:
            stages = pdir.read_status().get("stages", [])
            current = next(
                (
                    s
                    for s in stages
                    if s.get("run_id") and s["run_id"] not in followed and not s.get("reused")
                ),
                None,
            )
            if current is None:
                time.sleep(0.5)
                continue
            followed.add(current["run_id"])
            run = RunDir(pdir.path.parent / current["run_id"])
            follow(
                run,
                lambda run=run: run.state().is_finalized or proc.poll() is not None,
                label=f"{current['stage']} ({current['method']})",
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    st = pdir.read_status()
    for s_ in st.get("stages", []):
        print(
            f"  {s_['stage']:<12} {s_['method']:<8} {s_['state']:<10} {s_.get('run_id') or ''}"
            + (" (reused)" if s_.get("reused") else "")
        )
    for s_ in st.get("stages", []):
        winrate = RunDir(pdir.path.parent / (s_.get("run_id") or "-")).winrate_path
        if winrate.exists():
            from backends.core.reports.report import pipeline_reference, stage_labels
            from backends.core.reports.verdicts import VS_BASE_HEADERS, tally_table, text_table, vs_base_rows

            wr = json.loads(winrate.read_text())
            print(f"\n{s_['stage']}:\n" + tally_table(wr))
            labels, reference = stage_labels(pdir), pipeline_reference(pdir)
            print(f"\neach model against {labels.get(wr['models'][0], wr['models'][0])}:")
            print(text_table(VS_BASE_HEADERS, vs_base_rows(wr, labels, reference.get("win_rate_vs_base"))))
            if reference.get("source"):
                print(f"published: {reference['source']}")
        stage_run = RunDir(pdir.path.parent / (s_.get("run_id") or "-"))
        if stage_run.exists():
            print(evaluation_line(stage_run, f"{s_['stage']}: "), end="")
    if (pdir.path / SWEEP_FILE).exists():
        print(
            "\nsweep (best first; every trial in sweep.json):\n"
            + sweep_table(json.loads((pdir.path / SWEEP_FILE).read_text()))
        )
    print(reports_line(pdir), end="")
    if st["state"] == RunState.SUCCEEDED.value:
        print(f"pipeline succeeded\nrun directory: {pdir.path}")
        return 0
    print(
        f"pipeline {st['state']}: {st.get('error') or 'see ' + str(pdir.log_path)}\n"
        f"log tail:\n{pdir.log_tail(1500)}",
        file=sys.stderr,
    )
    return 1
