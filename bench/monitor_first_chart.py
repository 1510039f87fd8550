"""Time to the Monitor's first chart in a real browser: open the page, click the Monitor tab,
wait for the first plotted line. A runs folder is made up for it (no training): a finished
SFT run with `--rows` logged steps and, newer than it, a label-candidates `sample` run.
Prints JSON.

    python bench/monitor_first_chart.py [--rows 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_runs(runs: Path, rows: int, candidates: bool = True) -> None:
    from backends.core.runs.launcher import Launcher
    from backends.core.spec.config import validate_config

    launcher = Launcher(runs)
    sft = launcher.create_run(validate_config({"name": "sft", "method": "sft"}, "bench"))
    t0 = time.time() - rows
    for step in range(1, rows + 1):
        loss = 3 * math.exp(-step / rows) + 0.1 * math.sin(step)
        row = {"step": step, "time": t0 + step, "split": "train", "loss": loss, "learning_rate": 2e-4}
        row |= {"grad_norm": 1.0, "mean_token_accuracy": 0.5, "num_tokens": 400.0 * step}
        sft.append_metrics(row)
        if step % 50 == 0:
            sft.append_metrics({"step": step, "time": t0 + step, "split": "eval", "loss": loss + 0.2})
    sft.update_status(state="running", step=rows, total_steps=rows)
    sft.update_status(state="succeeded")
    if not candidates:
        return
    time.sleep(1.1)  # run ids sort by their second: the sample run is the newer one
    cand = launcher.create_run(validate_config({"name": "label-candidates", "method": "sample"}, "bench"))
    cand.update_status(state="running")
    cand.update_status(state="succeeded")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-candidates", action="store_true", help="only the SFT run")
    ap.add_argument("--wait", type=float, default=3.0, help="seconds on the first tab before the click")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from studio.app import launch_app
    from studio.context import StudioContext

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        make_runs(runs, args.rows, not args.no_candidates)
        ctx = StudioContext.create(runs_dir=runs, presets_dir=ROOT / "presets", data_dir=Path(tmp) / "data")
        port = free_port()
        app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
        times, shown = [], []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
                )
                for _ in range(args.repeat):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.get_by_role("tab", name="Monitor").wait_for()
                    page.wait_for_timeout(args.wait * 1000)  # a person looks at the first tab first
                    t = time.perf_counter()
                    page.get_by_role("tab", name="Monitor").click()
                    page.locator("#monitor-plot .js-line").first.wait_for(timeout=60_000)
                    times.append(round(time.perf_counter() - t, 2))
                    legend = page.locator("#monitor-plot .legendtext")
                    shown.append(legend.first.text_content() if legend.count() else "(no line)")
                    page.close()
                browser.close()
        finally:
            ctx.stop_scheduler()
            app.close()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "wait_before_click_s": args.wait,
                "seconds_to_first_chart": times,
                "first_legend": shown,
                "cores": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
