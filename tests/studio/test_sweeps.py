"""The Monitor's sweep view from sweep.json alone: rows best first, the chart's axes, and what
an unfinished or broken sweep says."""

from __future__ import annotations

import json
from pathlib import Path

from studio.logic.sweeps import selected_sweeps, sweep_figure, sweep_line, sweep_rows

SUMMARY = {
    "metric": "eval_loss",
    "goal": "minimize",
    "strategy": "random",
    "parameters": ["train.learning_rate", "train.lr_scheduler_type"],
    "best": "t02",
    "trials": [
        {
            "trial": "t02",
            "overrides": {"train.learning_rate": 3e-4, "train.lr_scheduler_type": "cosine"},
            "run_id": "r2",
            "state": "succeeded",
            "metric": 1.23456,
        },
        {
            "trial": "t01",
            "overrides": {"train.learning_rate": 1e-4, "train.lr_scheduler_type": "linear"},
            "run_id": "r1",
            "state": "succeeded",
            "metric": 2.5,
        },
        {
            "trial": "t03",
            "overrides": {"train.learning_rate": 1e-3, "train.lr_scheduler_type": "linear"},
            "run_id": "r3",
            "state": "failed",
            "metric": None,
        },
    ],
}


def test_rows_and_line_name_the_best_trial_and_its_values() -> None:
    headers, rows = sweep_rows(SUMMARY)
    assert headers == ["trial", "train.learning_rate", "train.lr_scheduler_type", "eval_loss", "state", "run"]
    assert [r[0] for r in rows] == ["t02", "t01", "t03"] and rows[0][3] == 1.235
    line = sweep_line("sw", SUMMARY)
    assert "2 of 3 trials done" in line and "**t02**" in line and "train.learning_rate = 0.0003" in line


def test_the_chart_has_a_numeric_and_a_categorical_axis_and_leaves_out_trials_without_the_metric() -> None:
    (trace,) = sweep_figure(SUMMARY).to_dict()["data"]
    lr, sched, metric = trace["dimensions"]
    assert list(lr["values"]) == [3e-4, 1e-4]
    assert list(sched["ticktext"]) == ["cosine", "linear"] and list(sched["values"]) == [0, 1]
    assert metric["label"] == "eval_loss" and list(metric["values"]) == [1.23456, 2.5]
    empty = sweep_figure({**SUMMARY, "trials": [SUMMARY["trials"][2]]}).to_dict()
    assert not empty["data"] and "no trial" in empty["layout"]["annotations"][0]["text"]


def test_a_broken_sweep_file_is_said_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "status.json").write_text(json.dumps({"state": "running", "method": "pipeline"}))
    (tmp_path / "sw" / "sweep.json").write_text("{not json")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "status.json").write_text(json.dumps({"state": "running", "method": "sft"}))
    ((run_id, summary),) = selected_sweeps(tmp_path, ["plain", "sw", "../sw"])
    assert run_id == "sw" and "sweep.json is not readable" in sweep_line(run_id, summary)
