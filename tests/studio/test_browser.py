"""Real browser (Debian chromium via Playwright): load the page, launch the tiny preset from
the Train tab, and watch the Monitor chart fill in. Screenshots land in the test's tmp dir
(and in $SCREENSHOT_DIR when set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


@pytest.fixture()
def page(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield pg
        browser.close()


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("SCREENSHOT_DIR"):
        Path(os.environ["SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(os.environ["SCREENSHOT_DIR"]) / name)


def choose(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def test_launch_tiny_sft_and_watch_the_chart(studio, page, tmp_path: Path) -> None:
    page.goto(studio.url)
    page.get_by_role("button", name="Launch").wait_for()
    choose(page, "Preset", "tiny/sft.yaml")
    model = page.locator("#field-model-name_or_path textarea, #field-model-name_or_path input").first
    page.wait_for_function("() => [...document.querySelectorAll('#field-model-name_or_path textarea, "
                           "#field-model-name_or_path input')].some(e => e.value === 'builtin:tiny-llama')")  # fmt: skip
    assert model.input_value() == "builtin:tiny-llama"
    steps = page.locator("#field-train-max_steps input")
    steps.fill("60")  # long enough (~10 s) to watch the chart grow while the run is live
    steps.press("Tab")
    page.get_by_role("button", name="Launch").click()
    message = page.locator("#launch-message")
    message.get_by_text("Watch it in the Monitor tab").wait_for(timeout=30_000)
    run_id = next(p.name for p in studio.runs_dir.iterdir())
    assert run_id in message.inner_text()
    shot(page, tmp_path, "train-tab.png")

    page.get_by_role("tab", name="Monitor").click()
    status = page.locator("#monitor-status")
    # live: the row count grows while the run is still running
    page.wait_for_function("() => /running, [1-9][0-9]* rows/.test(document.querySelector('#monitor-status').innerText)",
                           timeout=120_000)  # fmt: skip
    first_seen = int(status.inner_text().split("running, ")[1].split(" rows")[0])
    page.locator("#monitor-plot .js-line").first.wait_for(timeout=30_000)
    shot(page, tmp_path, "monitor-live.png")
    status.get_by_text("succeeded").wait_for(timeout=180_000)
    final = int(status.inner_text().split("succeeded, ")[1].split(" rows")[0])
    assert final > first_seen and final >= 60
    assert page.locator("#monitor-plot .legendtext", has_text=run_id[:20]).count() >= 1
    shot(page, tmp_path, "monitor-tab.png")
