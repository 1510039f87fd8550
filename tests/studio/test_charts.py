"""The Monitor's charts as data: the options change the figure (log y per chart, x by step,
wall time or tokens seen), the PNG download is plotly's own mode-bar button, the CSV has every
point, the newest run shown is a training run, and the tab title names its state and step."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from backends.core.runs.launcher import Launcher
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import validate_config
from studio.logic.charts import MAX_POINTS, figure_json, make_figure, missing_x_notes, thin, write_csv
from studio.logic.monitoring import MonitorState
from studio.logic.runs import default_runs, pick_newest, title_text


def sft_run(launcher: Launcher, steps: int = 5, tokens: bool = True, name: str = "sft") -> RunDir:
    run = launcher.create_run(validate_config({"name": name, "method": "sft"}, "test"))
    for step in range(1, steps + 1):
        row = {
            "step": step,
            "time": 1000.0 + 30 * step,
            "split": "train",
            "loss": 10.0 / step,
            "grad_norm": 1.0,
        }
        if tokens:
            row["num_tokens"] = 250.0 * step
        run.append_metrics(row)
    run.append_metrics({"step": steps, "time": 1000.0 + 30 * steps, "split": "eval", "loss": 3.0})
    return run


def shown(runs_dir: Path, *runs: RunDir) -> MonitorState:
    st = MonitorState()
    st.select(runs_dir, [r.run_id for r in runs])
    st.poll(runs_dir)
    return st


def test_the_options_change_the_figure(runs_dir: Path) -> None:
    run = sft_run(Launcher(runs_dir))
    st = shown(runs_dir, run)
    linear = make_figure(st, ["loss", "grad_norm"], 0.0, ["train", "eval"])
    assert linear.layout.yaxis.type in (None, "linear") and linear.layout.yaxis2.type in (None, "linear")
    logged = make_figure(st, ["loss", "grad_norm"], 0.0, ["train", "eval"], log_y=["grad_norm"])
    assert logged.layout.yaxis2.type == "log" and logged.layout.yaxis.type in (None, "linear")  # per chart
    train = [t for t in linear.data if t.name and t.name.endswith("· train")][0]
    assert list(train.x) == [1, 2, 3, 4, 5]
    by_time = make_figure(st, ["loss"], 0.0, ["train", "eval"], x="time")
    assert list(by_time.data[0].x) == [0.0, 0.5, 1.0, 1.5, 2.0]  # minutes since the first row
    assert by_time.layout.xaxis.title.text == "wall time (minutes)"
    by_tokens = make_figure(st, ["loss"], 0.0, ["train", "eval"], x="tokens")
    assert list(by_tokens.data[0].x) == [250.0, 500.0, 750.0, 1000.0, 1250.0]
    assert list(by_tokens.data[1].x) == [1250.0]  # the eval row: tokens seen by its step
    assert by_tokens.layout.xaxis.title.text == "tokens seen"


def test_a_run_without_token_counts_is_left_off_the_tokens_axis_and_named(runs_dir: Path) -> None:
    launcher = Launcher(runs_dir)
    with_tokens, without = sft_run(launcher), sft_run(launcher, tokens=False, name="dpo-like")
    st = shown(runs_dir, with_tokens, without)
    fig = make_figure(st, ["loss"], 0.0, ["train"], x="tokens")
    assert [t.name for t in fig.data] == [f"{with_tokens.run_id} · train"]
    (note,) = missing_x_notes(st, "tokens")
    assert without.run_id in note and "num_tokens" in note
    assert missing_x_notes(st, "step") == []


def test_x_titles_sit_only_under_the_lowest_chart_of_each_column(runs_dir: Path) -> None:
    st = shown(runs_dir, sft_run(Launcher(runs_dir)))
    fig = make_figure(st, ["loss", "grad_norm", "learning_rate"], 0.0, ["train"])
    titles = {name: fig.layout[name].title.text for name in ("xaxis", "xaxis2", "xaxis3")}
    # loss (row 1, col 1) has learning_rate below it; grad_norm (col 2) is its column's lowest
    assert titles == {"xaxis": None, "xaxis2": "step", "xaxis3": "step"}
    # rows are 300 px apart by 90 px: a subplot title never lands on the x axis above it
    top_row, next_row = fig.layout.yaxis.domain, fig.layout.yaxis3.domain
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert (top_row[0] - next_row[1]) * plot_px >= 85


def test_long_runs_are_thinned_for_the_page_but_not_in_the_csv(runs_dir: Path, tmp_path: Path) -> None:
    run = sft_run(Launcher(runs_dir), steps=5000)
    st = shown(runs_dir, run)
    fig = make_figure(st, ["loss"], 0.6, ["train"])
    assert all(len(t.x) <= MAX_POINTS + 1 for t in fig.data) and fig.data[-1].x[-1] == 5000
    xs, ys = thin(list(range(10)), list(range(10)), 4)
    assert xs == [0, 3, 6, 9] and ys == xs
    path = write_csv(tmp_path / "out", st, ["loss"], ["train", "eval"])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "split", "metric", "step", "wall_time_s", "tokens", "value"]
    assert len(rows) == 1 + 5000 + 1  # every train point and the eval point
    assert rows[1] == [run.run_id, "train", "loss", "1", "0.0", "250.0", "10.0"]
    assert rows[2][4] == "30.0"  # seconds since the first row


def test_the_png_download_is_on_in_plotlys_own_mode_bar(runs_dir: Path) -> None:
    st = shown(runs_dir, sft_run(Launcher(runs_dir)))
    data = json.loads(figure_json(make_figure(st, ["loss"], 0.0, ["train"]), "tiny-sft-step"))
    config = data["config"]
    assert config["displayModeBar"] is True and "toImage" not in config["modeBarButtonsToRemove"]
    assert config["toImageButtonOptions"] == {"format": "png", "filename": "tiny-sft-step", "scale": 2}


def test_the_newest_run_shown_is_a_training_run(runs_dir: Path) -> None:
    launcher = Launcher(runs_dir)
    sft = sft_run(launcher)
    sft.update_status(state="running")
    sft.update_status(state="succeeded", step=5, total_steps=5)
    candidates = launcher.create_run(
        validate_config({"name": "label-candidates", "method": "sample"}, "test")
    )  # newer, and a sample run
    assert default_runs(runs_dir) == [sft.run_id]
    assert title_text(runs_dir) == "✓ sft 5/5"
    candidates.update_status(state="running")
    assert default_runs(runs_dir) == [sft.run_id]  # a live sample run does not win either
    methods = {"a": "sample", "b": "sample", "c": "sft", "d": "dpo"}
    assert pick_newest([("b", "running"), ("a", "succeeded")], methods.get) == ["b"]
    assert pick_newest([("b", "succeeded"), ("d", "failed")], methods.get) == ["d"]
    assert pick_newest([("c", "running (training)"), ("d", "pending")], methods.get) == ["c", "d"]
    assert pick_newest([], methods.get) == []
    candidates.update_status(state="succeeded")
    sft2 = sft_run(launcher, name="tiny-sft")
    sft2.update_status(state="running", step=12, total_steps=50)
    assert title_text(runs_dir) == "▶ tiny-sft 12/50"
    sft2.update_status(step=50, phase="saving")  # past its last step, writing the model
    assert title_text(runs_dir) == "▶ tiny-sft 50/50 saving"


def test_a_run_keeps_its_colour_when_another_run_is_added_or_removed(runs_dir: Path) -> None:
    launcher = Launcher(runs_dir)
    a, b, c = (sft_run(launcher, name=n) for n in ("a", "b", "c"))

    def colours(st: MonitorState) -> dict[str, str]:
        fig = make_figure(st, ["loss"], 0.0, ["train"])
        return {t.name.split(" · ")[0]: t.line.color for t in fig.data if t.name}

    st = shown(runs_dir, a)
    first = colours(st)[a.run_id]
    st.select(runs_dir, [c.run_id, b.run_id, a.run_id])  # the Monitor puts a new run first
    st.poll(runs_dir)
    after = colours(st)
    assert after[a.run_id] == first and len(set(after.values())) == 3
    st.select(runs_dir, [c.run_id, a.run_id])
    st.poll(runs_dir)
    assert colours(st)[a.run_id] == first and colours(st)[c.run_id] == after[c.run_id]
