"""Real browser: the papercuts a newcomer met stay gone. The page follows runs without a
reload (the Resume hint, the tab title while a run saves, the Arena's model list), and the
Label tab takes the `builtin:tasks` source the Data tab opens. Runs are written by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backends.core.spec.config import load_preset
from tests.studio.conftest import ROOT
from tests.studio.test_browser import choose, shot


def test_hints_title_and_model_list_follow_a_run_without_a_reload(studio, page, tmp_path: Path) -> None:  # noqa: F811
    run = studio.ctx.launcher.create_run(load_preset(ROOT / "presets/tiny/sft.yaml", ["train.max_steps=5"]))
    # a live process that passes for the run's worker, so the studio's reconcile leaves it running
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "backends.worker"])
    try:
        run.update_status(state="running", pid=worker.pid, phase="training", step=3, total_steps=5)
        follow_the_run(page, studio.url, run, tmp_path)
    finally:
        worker.kill()
        worker.wait()


def follow_the_run(page, url: str, run, tmp_path: Path) -> None:  # noqa: F811
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    choose(page, "Run", run.run_id)
    hint = page.locator("#train-run-hint")
    hint.get_by_text("is running").wait_for(timeout=30_000)
    page.wait_for_function("() => document.title.includes('3/5')", timeout=30_000)

    # past its last step the run saves: the title says so instead of sitting at 5/5
    run.update_status(step=5, phase="saving")
    page.wait_for_function("() => document.title.includes('5/5 saving')", timeout=30_000)

    # it ends: the hint follows on the panel's next tick, and the Arena offers its model
    run.model_dir.mkdir()
    (run.model_dir / "config.json").write_text("{}")
    run.update_status(state="succeeded", phase="done")
    page.wait_for_function(
        "() => { const t = document.querySelector('#train-run-hint').innerText;"
        " return t.includes('succeeded') && !t.includes('is running'); }",
        timeout=30_000,
    )
    page.wait_for_function("() => !document.title.includes('saving')", timeout=30_000)
    page.get_by_role("tab", name="Arena").click()
    box = page.locator("#arena-models input")
    box.click()
    page.get_by_role("option", name=str(run.model_dir), exact=True).wait_for(timeout=30_000)
    shot(page, tmp_path, "arena-models-after-a-run.png")


def test_the_label_tab_takes_the_embedded_tasks(studio, page, tmp_path: Path) -> None:  # noqa: F811
    page.goto(studio.url)
    page.get_by_role("tab", name="Label").click()
    page.locator("#label-source textarea, #label-source input").first.fill("builtin:tasks")
    page.locator("#label-new-name textarea, #label-new-name input").first.fill("embedded")
    page.locator("#label-create").click()
    page.get_by_text("Session created with").wait_for(timeout=60_000)
    (made,) = [s for s in studio.ctx.store.sessions() if s.name == "embedded"]
    # 200 of the embedded pairs, less any the store refuses (a pair with two equal answers)
    assert made.source == "builtin:tasks" and 190 <= made.items <= 200
    assert f"Session created with {made.items} items." in page.locator("body").inner_text()
    shot(page, tmp_path, "label-embedded.png")
