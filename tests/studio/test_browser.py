"""Real browser (Debian chromium via Playwright): load the page, launch the tiny preset from
the Train tab, and watch the Monitor chart fill in. Screenshots land in the test's tmp dir
(and in $SCREENSHOT_DIR when set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("button", name="Launch").wait_for()
    choose(page, "Preset", "tiny/sft.yaml")
    model = page.locator("#field-model-name_or_path textarea, #field-model-name_or_path input").first
    page.wait_for_function(
        "() => [...document.querySelectorAll('#field-model-name_or_path textarea, "
        "#field-model-name_or_path input')].some(e => e.value === 'builtin:tiny-llama')"
    )
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
    # every column of the runs table shows inside the panel (the long run ids pushed step,
    # elapsed, ETA and device off to the right)
    page.wait_for_function(
        f"() => document.querySelector('#runs-table').innerText.includes('{run_id[:15]}')", timeout=30_000
    )
    overflow = page.evaluate(
        """() => {
            const table = document.querySelector('#runs-table');
            const right = table.getBoundingClientRect().right;
            return [...table.querySelectorAll('thead th')]
                .filter(th => th.getBoundingClientRect().right > right + 1).map(th => th.innerText.trim());
        }"""
    )
    assert overflow == [], f"runs table columns cut off: {overflow}"

    page.get_by_role("tab", name="Monitor").click()
    status = page.locator("#monitor-status")
    # live: the row count grows while the run is still running (read in the page the moment it
    # shows: the run may end before a second read)
    first_seen = page.wait_for_function(
        """() => {
            const m = /running, ([1-9][0-9]*) rows/.exec(document.querySelector('#monitor-status').innerText);
            return m && Number(m[1]);
        }""",
        timeout=120_000,
    ).json_value()
    page.locator("#monitor-plot .js-line").first.wait_for(timeout=30_000)
    shot(page, tmp_path, "monitor-live.png")
    status.get_by_text("succeeded").wait_for(timeout=180_000)
    final = int(status.inner_text().split("succeeded, ")[1].split(" rows")[0])
    assert final > first_seen and final >= 60
    assert page.locator("#monitor-plot .legendtext", has_text=run_id[:20]).count() >= 1
    shot(page, tmp_path, "monitor-tab.png")


def test_label_pairs_with_the_keyboard_and_export(studio, page, tmp_path: Path) -> None:
    import json

    from backends.core.tasks.taskgen import pair_rows

    rows = pair_rows("train", 8, seed=1)[:3]
    sid = studio.ctx.store.create_session(
        "kbd", [{"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"]]} for r in rows]
    )
    page.goto(studio.url)
    page.get_by_role("tab", name="Label").click()
    choose(page, "Labeling session", "kbd (3 items)")
    progress = page.locator("#label-progress")
    progress.get_by_text("0 of 3 labeled").wait_for(timeout=30_000)
    shot(page, tmp_path, "label-pair.png")
    page.locator("#label-prompt").click()  # focus the page, not a text box
    for key, done in (("1", 1), ("2", 2), ("u", 1), ("3", 2), ("4", 3)):
        page.keyboard.press(key)
        progress.get_by_text(f"{done} of 3 labeled").wait_for(timeout=30_000)
    shot(page, tmp_path, "label-tab.png")
    votes = studio.ctx.store.votes(sid)
    assert [v.choice for v in votes] == ["left", "tie", "both_bad"]  # the "right" vote was undone
    page.get_by_text("Export and train").click()
    page.locator("#label-export").click()
    page.locator("#label-export-msg").get_by_text("Exported 1 pairs").wait_for(timeout=30_000)
    exported = (studio.ctx.data_dir / "labels" / f"kbd-{sid}-majority.jsonl").read_text().splitlines()
    assert len(exported) == 1 and json.loads(exported[0])["votes"] == 1
    # the export is offered for download too
    with page.expect_download(timeout=30_000) as got:
        page.locator("#label-download").click()
    assert Path(got.value.path()).read_text().splitlines() == exported


def test_run_a_comparison_in_the_arena_and_see_the_tally(
    studio, page, tiny_model: str, tmp_path: Path
) -> None:
    page.goto(studio.url)
    page.get_by_role("tab", name="Arena").click()
    models = page.locator("#arena-models")
    models.locator(".remove-all").click()  # clear the default (the embedded model) selection
    box = models.locator("input")
    for name in ("builtin:tiny-llama", tiny_model):
        box.click()
        box.fill(name)
        box.press("Enter")
    page.keyboard.press("Escape")
    # typed prompts, with the checkers ticked (the default): judged by their own constraints
    # (the Arena judged typed prompts by the LLM instead, silently, and left the tables empty)
    typed = [
        "Describe tea. Use exactly 2 sentences.",
        "Name three birds. Write everything in lowercase letters.",
        "Explain rain. Do not use any commas.",
        "Tell me about owls. Use exactly 3 sentences.",
    ]
    page.locator("#arena-typed textarea").fill("\n".join(typed))
    page.locator("#arena-start").click()
    page.locator("#arena-msg").get_by_text("started").wait_for(timeout=30_000)
    page.locator("#arena-status").get_by_text("succeeded").wait_for(timeout=240_000)
    tallies = page.locator("#arena-tallies")
    page.wait_for_function(
        "() => document.querySelector('#arena-tallies').innerText.includes('checkers')", timeout=30_000
    )
    assert "tiny-llama" in tallies.inner_text() and "[0." in tallies.inner_text()  # a 95% interval is shown
    scores = page.locator("#arena-scores").inner_text()
    assert "checkers" in scores and "tiny-llama" in scores, scores  # the score table is filled
    shot(page, tmp_path, "arena-tab.png")
    overflow = page.evaluate(
        "() => { const box = document.querySelector('#arena-tallies');"
        " const t = box.querySelector('table'); return t.getBoundingClientRect().right"
        " - box.getBoundingClientRect().right; }"
    )
    assert overflow <= 1, f"the tallies table runs {overflow:.0f} px past its box"
    # "Judge by people" opens the Label tab on the session it made
    page.get_by_role("button", name="Judge by people (Label tab)").click()
    page.locator("#label-progress").get_by_text("0 of 4 labeled").wait_for(timeout=30_000)
    assert page.get_by_role("tab", name="Label", selected=True).is_visible()
    shot(page, tmp_path, "arena-to-label.png")


def test_a_session_made_after_the_page_loaded_shows_when_the_label_tab_is_opened(studio, page) -> None:
    page.goto(studio.url)
    page.get_by_role("tab", name="Arena").click()  # the page is up, on another tab
    page.locator("#arena-models").wait_for(timeout=30_000)
    # what the Arena's "Judge by people" does: a session appears in the store, not in this page
    studio.ctx.store.create_session("made-later", [{"prompt": "p", "responses": ["a", "b"]}])
    page.get_by_role("tab", name="Label").click()
    choose(page, "Labeling session", "made-later (1 items)")  # in the list without a reload


def test_the_tab_title_is_the_studio_s_and_never_flickers(studio, page) -> None:
    from backends.core.runs.rundir import RunDir

    run = RunDir(studio.runs_dir / "20990101-000000-title-test-abcd")  # the newest run: the title shows it
    run.path.mkdir(parents=True)
    (run.path / "config.yaml").write_text("method: sft\n")
    (run.path / "status.json").write_text('{"state": "succeeded", "step": 5, "total_steps": 5}')
    page.goto(studio.url)
    page.wait_for_function("() => document.title.includes('title-test 5/5')", timeout=30_000)
    # every change of the title over a few timer ticks (the Arena's runs every 2 s, the title's 3 s)
    page.evaluate(
        "() => { window.__titles = []; new MutationObserver(() => window.__titles.push(document.title))"
        ".observe(document.head, {childList: true, subtree: true, characterData: true}); }"
    )
    page.get_by_role("tab", name="Arena").click()
    page.wait_for_timeout(7000)
    seen = page.evaluate("() => window.__titles")
    assert all("title-test 5/5 · Alignment Studio" in t for t in seen), seen


def test_a_bad_value_marks_its_field_and_is_named_by_its_label_once(studio, page, tmp_path: Path) -> None:
    page.goto(studio.url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("button", name="Launch").wait_for()
    choose(page, "Preset", "tiny/sft.yaml")
    # the preset's values have arrived (else they land on top of the value typed below)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#field-model-name_or_path textarea, "
        "#field-model-name_or_path input')].some(e => e.value === 'builtin:tiny-llama')",
        timeout=30_000,
    )
    lr = page.locator("#field-train-learning_rate input").first
    lr.fill("-0.001")
    lr.press("Tab")
    errors = page.locator("#train-errors")
    errors.get_by_text("Learning rate").wait_for(timeout=30_000)
    text = errors.inner_text()
    assert text.count("Learning rate") == 1 and "Train form (preset tiny/sft.yaml)" in text, text
    assert text.count("(Train form") == 1, text  # the source is said once, in the heading
    marked = "() => [...document.querySelectorAll('.field-problem')].map(e => e.id)"
    page.wait_for_function(f"() => ({marked})().includes('field-train-learning_rate')", timeout=10_000)
    assert page.evaluate(marked) == ["field-train-learning_rate"]
    # seen, not only classed: the input is drawn with a red border
    border = lr.evaluate("e => getComputedStyle(e).borderTopColor")
    assert border == "rgb(220, 38, 38)", border
    shot(page, tmp_path, "train-field-marked.png")
    lr.fill("0.001")
    lr.press("Tab")
    page.wait_for_function(f"() => ({marked})().length === 0", timeout=30_000)
    assert "Fix before launching" not in errors.inner_text()
