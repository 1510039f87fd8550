"""The Label tab in a real browser (Debian chromium via Playwright): ranking three answers
with the keyboard, and the papercuts a new user hit: a reload opens the session, skips
survive a reload, undo after a skip brings the skipped pair back, the vote buttons are off
without something to vote on. Screenshots in the test's tmp dir (and $SCREENSHOT_DIR)."""

from __future__ import annotations

from pathlib import Path

from tests.studio.test_browser import shot


def pairs(n: int) -> list[dict]:
    return [
        {"prompt": f"Question number {i}?", "responses": [f"Answer yes {i}", f"Answer no {i}"]}
        for i in range(n)
    ]


def open_label_tab(page, studio, progress_text: str):
    page.goto(studio.url)
    page.get_by_role("tab", name="Label").click()
    progress = page.locator("#label-progress")
    progress.get_by_text(progress_text).wait_for(timeout=30_000)
    page.locator("#label-prompt").click()  # focus the page, not a text box
    return progress


def prompt_text(page) -> str:
    return page.locator("#label-prompt").inner_text()


def test_rank_three_answers_with_the_keyboard(studio, page, tmp_path: Path) -> None:
    store = studio.ctx.store
    items = [
        {"prompt": f"Name a colour ({i})", "responses": [f"red {i}", f"green {i}", f"blue {i}"]}
        for i in range(2)
    ]
    sid = store.create_session(
        "colours", items, kind="ranking", guidelines="Rank by **how warm** the colour is.", owner="me"
    )
    progress = open_label_tab(page, studio, "0 of 2 labeled")
    assert "how warm" in page.locator("#label-guidelines").inner_text()  # above the answers
    assert page.locator("#label-left").is_hidden()  # no pair buttons in a ranking
    texts = [page.locator(f"#label-answer-{i}").inner_text().split("\n")[-1].strip() for i in range(3)]
    order = page.locator("#label-rank-order input, #label-rank-order textarea").first
    for key in ("b", "a", "d", "c"):  # d: there is no fourth answer, ignored
        page.keyboard.press(key)
    assert order.input_value() == "B > A > C"
    shot(page, tmp_path, "label-rank.png")
    page.keyboard.press("Enter")
    progress.get_by_text("1 of 2 labeled").wait_for(timeout=30_000)
    (first,) = store.rankings(sid)
    tier_of = {store.items(sid)[0].responses[r]: t for r, t in enumerate(first.ranks)}
    assert [tier_of[t] for t in texts] == [1, 0, 2]  # B best, then A, then C

    for key in ("c", "=", "a", "b", "Backspace", "b"):  # C tied with A, then B
        page.keyboard.press(key)
    assert order.input_value() == "C = A > B"
    page.keyboard.press("Enter")
    progress.get_by_text("2 of 2 labeled").wait_for(timeout=30_000)
    second = store.rankings(sid)[1]
    assert sorted(second.ranks) == [0, 0, 1]
    page.keyboard.press("u")  # undo shows the item again with the order it had
    progress.get_by_text("1 of 2 labeled").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#label-rank-order input, #label-rank-order textarea').value === 'A = C > B'"
    )  # the same order, tied letters alphabetical
    assert len(store.rankings(sid)) == 1


def test_a_reload_opens_the_session_and_keeps_skips(studio, page, tmp_path: Path) -> None:
    sid = studio.ctx.store.create_session("kept", pairs(3))
    progress = open_label_tab(page, studio, "0 of 3 labeled")  # selected without picking it
    assert "kept (3 items)" in page.locator("#label-session").inner_text() or page.locator(
        "#label-session input"
    ).input_value().startswith("kept")
    skipped = prompt_text(page)
    page.keyboard.press("s")
    progress.get_by_text("1 skipped").wait_for(timeout=30_000)
    assert prompt_text(page) != skipped
    page.reload()
    page.get_by_role("tab", name="Label").click()
    progress.get_by_text("0 of 3 labeled, 1 skipped").wait_for(timeout=30_000)
    assert prompt_text(page) != skipped  # the skipped pair does not come back
    shot(page, tmp_path, "label-reloaded.png")
    assert studio.ctx.store.progress(sid, "me").my_skips == 1


def test_undo_after_a_skip_brings_the_skipped_pair_back(studio, page) -> None:
    sid = studio.ctx.store.create_session("undo", pairs(3))
    progress = open_label_tab(page, studio, "0 of 3 labeled")
    page.keyboard.press("1")
    progress.get_by_text("1 of 3 labeled").wait_for(timeout=30_000)
    skipped = prompt_text(page)
    page.keyboard.press("s")
    progress.get_by_text("1 skipped").wait_for(timeout=30_000)
    page.keyboard.press("u")
    page.wait_for_function(
        "(t) => document.querySelector('#label-prompt').innerText === t && "
        "!document.querySelector('#label-progress').innerText.includes('skipped')",
        arg=skipped,
    )
    assert "1 of 3 labeled" in progress.inner_text()
    assert [v.choice for v in studio.ctx.store.votes(sid)] == ["left"]  # the vote before it stays


def test_vote_buttons_are_off_without_a_session(studio, page, tmp_path: Path) -> None:
    page.goto(studio.url)
    page.get_by_role("tab", name="Label").click()
    page.locator("#label-progress").get_by_text("Pick or create a labeling session").wait_for(timeout=30_000)
    for button in ("#label-left", "#label-right", "#label-tie", "#label-bad", "#label-skip"):
        assert page.locator(button).is_disabled()
    shot(page, tmp_path, "label-empty.png")
    studio.ctx.store.create_session("one", pairs(1))
    progress = open_label_tab(page, studio, "0 of 1 labeled")
    assert page.locator("#label-left").is_enabled() and page.locator("#label-right").is_enabled()
    page.keyboard.press("2")
    progress.get_by_text("1 of 1 labeled").wait_for(timeout=30_000)
    page.keyboard.press("1")  # nothing left: refused with a warning, nothing stored
    page.get_by_text("Nothing to vote on").wait_for(timeout=30_000)
    assert len(studio.ctx.store.votes(studio.ctx.store.session_id("one"))) == 1
    open_label_tab(page, studio, "1 of 1 labeled")  # a session with nothing left: buttons off
    page.wait_for_function("() => document.querySelector('#label-left').disabled")
    assert page.locator("#label-right").is_disabled() and page.locator("#label-undo").is_enabled()


def test_a_session_ordered_by_a_reward_model_says_so_and_serves_by_it(studio, page, tmp_path: Path) -> None:
    store = studio.ctx.store
    sid = store.create_session("ordered", pairs(3))
    ids = [it.id for it in store.items(sid)]
    scores = {i: [0.0, float(3 - n)] for n, i in enumerate(ids)}  # the last pair is the closest call
    store.set_ordering(
        sid, "order-run", "/x/runs/rm-run/model", scores, {i: 1 / (1 + s[1]) for i, s in scores.items()}
    )
    progress = open_label_tab(page, studio, "most uncertain first")
    assert "reward model rm-run" in progress.inner_text()
    assert prompt_text(page) == "Question number 2?"
    page.keyboard.press("1")
    progress.get_by_text("1 of 3 labeled").wait_for(timeout=30_000)
    assert prompt_text(page) == "Question number 1?"
    shot(page, tmp_path, "label-ordered.png")
