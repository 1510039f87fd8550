"""Real browser: the Monitor's papercuts are gone and its chart options work; "Edit and rerun"
fills the Train form with a run's values, from the Train tab and from the Monitor. The runs
are written by hand (no training), so each test is about the page."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from backends.core.runs.rundir import RunDir
from backends.core.spec.config import load_preset, validate_config
from tests.studio.conftest import ROOT
from tests.studio.test_browser import shot

PLOT = "document.querySelector('#monitor-plot .js-plotly-plot')"


def finished(run: RunDir, steps: int) -> RunDir:
    run.update_status(state="running")
    run.update_status(state="succeeded", step=steps, total_steps=steps)
    return run


def write_runs(ctx) -> dict[str, RunDir]:
    """An RL run with samples, an SFT run (with one broken metrics line) and, newest, a
    label-candidates sample run with no metrics at all."""
    rl = ctx.launcher.create_run(load_preset(ROOT / "presets/tiny/grpo.yaml"))
    for step in range(1, 6):
        rl.append_metrics(
            {"step": step, "time": 50.0 + step, "split": "train", "reward": step / 5, "kl": 0.01}
        )
    with open(rl.samples_path, "w") as f:
        for step in range(1, 6):
            row = {
                "step": step,
                "prompt": "Say hi",
                "completion": "hi " * step,
                "reward": step / 5,
                "length": step,
            }
            f.write(json.dumps(row) + "\n")
    finished(rl, 5)
    time.sleep(1.1)  # run ids order by their second
    sft = ctx.launcher.create_run(load_preset(ROOT / "presets/tiny/sft.yaml", ["train.max_steps=40"]))
    for step in range(1, 41):
        loss = 6.0 / step**0.5
        sft.append_metrics(
            {
                "step": step,
                "time": 1000.0 + 6 * step,
                "split": "train",
                "loss": loss,
                "mean_token_accuracy": 0.1 + step / 100,
                "learning_rate": 5e-3,
                "grad_norm": 10.0 / step,
                "num_tokens": 250.0 * step,
            }
        )
        if step == 7:
            with open(sft.metrics_path, "a") as f:
                f.write('{"step": 7, "loss": \n')  # a line cut short
        if step % 10 == 0:
            sft.append_metrics({"step": step, "time": 1000.0 + 6 * step, "split": "eval", "loss": loss + 0.3})
    finished(sft, 40)
    time.sleep(1.1)
    cand = ctx.launcher.create_run(validate_config({"name": "label-candidates", "method": "sample"}, "test"))
    finished(cand, 0)
    return {"rl": rl, "sft": sft, "candidates": cand}


def boxes(page, selector: str) -> list[dict]:  # noqa: F811
    return page.eval_on_selector_all(
        f"#monitor-plot {selector}",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height, t: e.textContent}; })",
    )


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_monitor_opens_on_the_newest_training_run_and_its_options_work(studio, page, tmp_path: Path) -> None:  # noqa: F811
    runs = write_runs(studio.ctx)
    sft = runs["sft"]
    page.goto(studio.url)
    page.get_by_role("tab", name="Monitor").click()
    page.locator("#monitor-plot .js-line").first.wait_for(timeout=30_000)
    # the newest training run, not the newer label-candidates sample run
    legend = page.locator("#monitor-plot .legendtext").all_text_contents()
    assert legend and all(sft.run_id[:20] in t for t in legend), legend
    status = page.locator("#monitor-status")
    assert "metrics.jsonl has broken lines" in status.inner_text() and "line 8" in status.inner_text()
    # an SFT run has no samples: the panel is not shown
    assert not page.locator("#monitor-samples-box").is_visible()
    # subplot titles (annotations) never sit on an x axis' title or tick labels
    page.wait_for_function(f"() => {PLOT}._fullLayout.annotations.length >= 4")
    titles = [b for b in boxes(page, ".annotation-text") if not b["t"].startswith("Skipped")]
    axis_text = boxes(page, ".xtitle") + boxes(page, ".xtick text")
    assert len(titles) == 4 and axis_text
    assert not [(t["t"], a["t"]) for t in titles for a in axis_text if overlaps(t, a)]
    shot(page, tmp_path, "monitor-papercuts.png")

    # log scale on one chart: its y axis turns log, the other stays linear
    page.locator("#monitor-log").get_by_label("mean_token_accuracy").check()
    page.wait_for_function(f"() => {PLOT}._fullLayout.yaxis2.type === 'log'", timeout=30_000)
    assert page.evaluate(f"() => {PLOT}._fullLayout.yaxis.type") == "linear"
    # x by tokens seen: the same points, now at 250 tokens a step
    page.locator("#monitor-x").get_by_label("tokens seen").check()
    page.wait_for_function(f"() => {PLOT}.data.some(t => t.x[0] === 250)", timeout=30_000)
    assert page.evaluate(f"() => {PLOT}._fullLayout.xaxis3.title.text") == "tokens seen"  # lowest row
    page.locator("#monitor-x").get_by_label("wall time").check()
    page.wait_for_function(f"() => {PLOT}.data.some(t => t.x[1] === 0.1)", timeout=30_000)  # 6 s
    shot(page, tmp_path, "monitor-options.png")

    # the figure as PNG: plotly's own mode-bar button, drawn by the browser
    png = page.locator('#monitor-plot .modebar-btn[data-title="Download plot as a PNG"]')
    with page.expect_download(timeout=30_000) as dl:
        png.click()
    data = Path(dl.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and dl.value.suggested_filename.endswith(".png")
    # the chart's points as CSV
    with page.expect_download(timeout=30_000) as dl:
        page.locator("#monitor-csv").click()
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text())))
    assert rows[0] == ["run", "split", "metric", "step", "wall_time_s", "tokens", "value"]
    charts = {"loss", "mean_token_accuracy", "learning_rate", "grad_norm"}  # SFT's first charts
    assert {r[2] for r in rows[1:]} == charts and len(rows) == 1 + 4 * 40 + 4  # + the eval points

    # the browser tab's title: the newest run's state and step
    page.wait_for_function("() => document.title === '✓ tiny-sft 40/40 · Alignment Studio'", timeout=30_000)

    # a run keeps its colour when another run is added beside it, and when that one is removed
    def colours(run: RunDir) -> list[str]:
        return page.evaluate(
            f"() => [...new Set({PLOT}.data.filter(t => (t.legendgroup || '').startsWith('{run.run_id}'))"
            ".map(t => t.line.color))]"
        )

    runs_box = page.locator("#monitor-runs")
    rl = runs["rl"]
    sft_colour = colours(sft)
    assert len(sft_colour) == 1, sft_colour
    runs_box.locator("input").fill(rl.run_id)
    page.get_by_role("option", name=rl.run_id, exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {PLOT}.data.some(t => (t.legendgroup || '').startsWith('{rl.run_id}'))")
    rl_colour = colours(rl)
    assert colours(sft) == sft_colour and len(rl_colour) == 1 and rl_colour != sft_colour
    runs_box.locator(".token", has_text=sft.run_id).locator(".token-remove").click()
    page.wait_for_function(f"() => !{PLOT}.data.some(t => (t.legendgroup || '').startsWith('{sft.run_id}'))")
    assert colours(rl) == rl_colour

    # an RL run with samples: the panel shows them
    runs_box.locator(".remove-all").click()
    runs_box.locator("input").fill(rl.run_id)
    page.get_by_role("option", name=rl.run_id, exact=True).click()
    page.keyboard.press("Escape")
    page.locator("#monitor-samples-box").wait_for(state="visible", timeout=30_000)
    assert "hi hi" in page.locator("#monitor-samples").inner_text()
    shot(page, tmp_path, "monitor-samples.png")


def field(page, key: str):  # noqa: F811
    sel = "#field-" + key.replace(".", "-")
    return page.locator(f"{sel} input, {sel} textarea").first


def test_edit_and_rerun_fills_the_form_with_the_runs_values(studio, page, tmp_path: Path) -> None:  # noqa: F811
    ctx = studio.ctx
    old = ctx.launcher.create_run(
        load_preset(
            ROOT / "presets/tiny/sft.yaml",
            ["train.learning_rate=0.0042", "train.max_steps=17", "lora.enabled=true", "lora.r=4"],
        )
    )
    finished(old, 17)
    time.sleep(1.1)
    other = finished(ctx.launcher.create_run(load_preset(ROOT / "presets/tiny/sft.yaml")), 20)
    page.goto(studio.url)
    page.get_by_role("tab", name="Train").click()
    box = page.locator("#run-select input")
    box.click()
    box.fill(old.run_id)
    page.get_by_role("option", name=old.run_id, exact=True).click()
    events: list[str] = []  # every event the page sends to the studio from here on
    page.on("request", lambda r: events.append(r.post_data or "") if "/queue/join" in r.url else None)
    page.locator("#train-rerun").click()
    page.locator("#rerun-note").get_by_text("Editing a rerun of").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#field-train-learning_rate input').value === '0.0042'", timeout=30_000
    )
    assert field(page, "train.max_steps").input_value() == "17"
    assert field(page, "lora.r").input_value() == "4"
    assert field(page, "name").input_value() == "tiny-sft-rerun"
    page.get_by_text("Resolved config and commands").click()
    page.wait_for_function(
        "() => document.querySelector('#headless-command')?.innerText.includes('config.yaml')", timeout=30_000
    )
    command = page.locator("#headless-command").inner_text()
    assert f"{old.run_id}/config.yaml" in command and "name=tiny-sft-rerun" in command
    # The fill of 128 fields is one event and the preview after it, not an event per field
    # changed (which kept the page's core busy for ~20 s); the timers add a few.
    assert len(events) < 12, len(events)
    shot(page, tmp_path, "train-rerun.png")

    # edit one value and launch: the new run has the old run's values, the edit and the new name
    steps = page.locator("#field-train-max_steps input")
    steps.fill("2")
    steps.press("Tab")
    page.locator("#launch-button").click()
    page.locator("#launch-message").get_by_text("Watch it in the Monitor tab").wait_for(timeout=30_000)
    new = next(p for p in studio.runs_dir.iterdir() if "rerun" in p.name)
    cfg = (new / "config.yaml").read_text()
    assert "learning_rate: 0.0042" in cfg and "max_steps: 2" in cfg and "name: tiny-sft-rerun" in cfg
    assert "r: 4" in cfg

    # from the Monitor: two runs selected show their config diff, and Edit and rerun fills the form
    page.get_by_role("tab", name="Monitor").click()
    runs_box = page.locator("#monitor-runs")
    runs_box.locator(".remove-all").click()
    page.locator("#monitor-status").get_by_text("Select one or more runs.").wait_for(timeout=30_000)
    events.clear()
    for run in (old, other):
        runs_box.locator("input").fill(run.run_id)
        page.get_by_role("option", name=run.run_id, exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_text("Rerun, resume, compare configs").click()
    diff = page.locator("#monitor-diff")
    diff.get_by_text("train.learning_rate").wait_for(timeout=30_000)
    # the act-on run's resume hint came with the selection; each selection is one event that
    # draws the chart, the diff, the hint and the sweep panel (four events, ~3 s each, before)
    page.locator("#monitor-resume-hint").get_by_text("is succeeded").wait_for(timeout=30_000)
    assert len(events) <= 5, [e[-80:] for e in events]
    headers = diff.locator("thead").inner_text()
    assert "train.max_steps" in headers and "lora.enabled" in headers and "train.seed" not in headers
    shot(page, tmp_path, "monitor-diff.png")
    act = page.locator("#monitor-act-run input")
    act.click()
    act.fill(old.run_id)
    page.get_by_role("option", name=old.run_id, exact=True).click()
    page.locator("#monitor-rerun").click()
    page.locator("#launch-button").wait_for(state="visible", timeout=30_000)  # the Train tab is shown
    page.wait_for_function(
        "() => document.querySelector('#field-train-max_steps input').value === '17'", timeout=30_000
    )
    assert field(page, "train.learning_rate").input_value() == "0.0042"
