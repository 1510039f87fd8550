"""The Monitor in a real browser: time to first draw when the tab opens, and the time from a
metric line written to metrics.jsonl to the chart showing it; prints JSON.

    python bench/monitor_latency.py [--rows 30] [--interval 0.5] [--rounds 3]

A studio server runs in this process on a free localhost port over a temporary runs folder
holding one finished run (200 rows) and one live run. The live run's rows come from a
stand-in writer process (no training: it appends one row every `--interval` seconds, with the
time it wrote it); its argv names `backends.worker` so the studio treats it as a live worker.
Debian chromium (Playwright) opens the page; a 50 ms poller in the page records when each
step first appears in the chart's data. Targets (issue 12): both <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import load_avg, machine  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WRITER = """
import json, os, sys, time
path, rows, interval, go = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
while not os.path.exists(go):  # rows start once the page watches the chart
    time.sleep(0.05)
for step in range(4, rows + 4):
    time.sleep(interval)
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, "time": time.time(), "split": "train", "loss": 3.0 / step}) + "\\n")
time.sleep(3600)
"""
POLLER = """
() => { window.__seen = {}; setInterval(() => {
  const plot = document.querySelector('#monitor-plot .js-plotly-plot');
  if (!plot || !plot.data) return;
  for (const tr of plot.data) for (const x of (tr.x || [])) {
    const k = tr.name + '|' + x; if (!(k in window.__seen)) window.__seen[k] = Date.now() / 1000; }
}, 50); }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_run(runs: Path, name: str, rows: int, state: str) -> Any:
    from backends.core.runs.rundir import RunDir
    from backends.core.spec.config import config_to_yaml, validate_config

    run = RunDir(runs / name)
    run.path.mkdir(parents=True)
    cfg = validate_config({"method": "sft", "model": {"name_or_path": "builtin:tiny-llama"}}, "bench")
    run.config_path.write_text(config_to_yaml(cfg))
    run.init_status()
    now = time.time()
    for step in range(1, rows + 1):
        run.append_metrics({"step": step, "time": now - rows + step, "split": "train", "loss": 3.0 / step})
    if state != "pending":
        run.update_status(state="running", started_at=now)
    if state == "succeeded":
        run.update_status(state="succeeded")
    return run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=30)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3, help="page loads for time to first draw")
    args = ap.parse_args()
    load_before = load_avg()
    from playwright.sync_api import sync_playwright

    from studio.app import launch_app
    from studio.context import StudioContext

    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    runs = tmp / "runs"
    make_run(runs, "20260101-000000-done", 200, "succeeded")
    live = make_run(runs, "20260101-000001-live", 3, "running")  # steps 1-3; the writer adds 4..
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            "backends.worker",
            str(live.metrics_path),
            str(args.rows),
            str(args.interval),
            str(tmp / "go"),
        ]
    )
    live.update_status(pid=writer.pid, phase="training")
    ctx = StudioContext.create(runs_dir=runs, presets_dir=ROOT / "presets", data_dir=tmp / "data")
    port = free_port()
    app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
    url = f"http://127.0.0.1:{port}/"
    first_draw: list[dict[str, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for _ in range(args.rounds):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t_nav = time.perf_counter()
                page.goto(url)
                page.get_by_role("tab", name="Monitor").wait_for()
                t_click = time.perf_counter()
                page.get_by_role("tab", name="Monitor").click()
                page.locator("#monitor-plot .js-line").first.wait_for(timeout=60_000)
                t_draw = time.perf_counter()
                first_draw.append(
                    {
                        "from_tab_click_s": round(t_draw - t_click, 2),
                        "from_page_open_s": round(t_draw - t_nav, 2),
                    }
                )
                page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Monitor").click()
            page.locator("#monitor-plot .js-line").first.wait_for(timeout=60_000)
            page.evaluate(POLLER)
            (tmp / "go").touch()
            time.sleep(args.rows * args.interval + 4)
            seen: dict[str, float] = page.evaluate("() => window.__seen")
            browser.close()
    finally:
        writer.terminate()
        ctx.stop_scheduler()
        app.close()
    written = {r["step"]: r["time"] for r in map(json.loads, live.metrics_path.read_text().splitlines())}
    shown: dict[int, float] = {}
    for key, t in seen.items():
        name, _, x = key.rpartition("|")
        if "live" in name and x.lstrip("-").replace(".", "").isdigit():
            step = int(float(x))
            shown[step] = min(t, shown.get(step, t))
    lat = sorted(shown[s] - written[s] for s in written if s in shown and s > 3)
    missing = [s for s in written if s not in shown]
    print(
        json.dumps(
            {
                "first_draw": first_draw,
                "first_draw_from_click_median_s": statistics.median(
                    d["from_tab_click_s"] for d in first_draw
                ),
                "metric_to_chart_s": {
                    "n": len(lat),
                    "p50": round(statistics.median(lat), 2) if lat else None,
                    "p95": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 2) if lat else None,
                    "max": round(lat[-1], 2) if lat else None,
                },
                "rows_never_shown": missing,
                "target_s": 2.0,
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_avg(),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
