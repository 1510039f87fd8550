"""The run context's Progress: the one writer of a run's phase, step count and metric rows, and
the one reader of its STOP file, for every method's loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir
from backends.worker.context import PHASES, Progress


def _run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.init_status()
    return run


def test_progress_writes_the_phase_the_count_and_one_row_a_step(tmp_path: Path) -> None:
    run = _run(tmp_path)
    p = Progress(run)
    p.begin("generating", 4, first=1)
    st = run.read_status()
    assert (st["phase"], st["total_steps"], st["step"], st["first_step"]) == ("generating", 4, 1, 1)
    p.step(2, {"reward": 0.5}, generation_engine="transformers")
    p.step(3)  # a step without a row still moves the count
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [(r["step"], r["split"], r["reward"]) for r in rows] == [(2, "train", 0.5)]
    st = run.read_status()
    assert (st["step"], st["generation_engine"]) == (3, "transformers")
    p.phase("saving")
    assert run.read_status()["phase"] == "saving"


def test_a_phase_outside_the_list_is_refused_with_the_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown phase 'warming'.*loading, training"):
        Progress(_run(tmp_path)).begin("warming", 3)  # type: ignore[arg-type]
    assert "training" in PHASES and "saving" in PHASES


def test_only_the_main_process_writes_and_every_process_sees_stop(tmp_path: Path) -> None:
    run = _run(tmp_path)
    other = Progress(run, main_process=False)
    other.begin("training", 5)
    other.step(1, {"loss": 1.0})
    assert "total_steps" not in run.read_status() and not run.metrics_path.exists()
    assert not other.should_stop()
    run.request_stop()
    assert other.should_stop() and other.stopped
