"""Real browser: a labeler's page hides what only an operator may do, an operator's shows it;
the Train tab shows its headless command in full, with `--runs-dir`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.core.access.accounts import Accounts, add_user
from tests.studio.conftest import ROOT, Server, free_port
from tests.studio.test_browser import shot

OPERATOR_BUTTONS = ("#launch-button", "#arena-start", "#data-train")


@pytest.fixture()
def studio_with_accounts(tmp_path: Path, tiny_model: str) -> Iterator[Server]:
    from studio.app import launch_app
    from studio.context import StudioContext

    users = tmp_path / "users.txt"
    add_user(users, "lena", "labeler", "labeler-pass-1")
    add_user(users, "olga", "operator", "operator-pass-1")
    ctx = StudioContext.create(
        tmp_path / "runs", ROOT / "presets", tmp_path / "data", accounts=Accounts(users)
    )
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", tmp_path / "runs", ctx)
    finally:
        ctx.stop_scheduler()
        app.close()


def login(page, url: str, user: str, password: str) -> None:  # noqa: F811
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.locator("#role-banner").get_by_text(f"Signed in as {user}").wait_for(timeout=30_000)


def test_a_labeler_sees_no_operator_controls(studio_with_accounts, page, tmp_path: Path) -> None:  # noqa: F811
    login(page, studio_with_accounts.url, "lena", "labeler-pass-1")
    assert "(labeler)" in page.locator("#role-banner").inner_text()
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Preset", exact=True).wait_for()
    for sel in OPERATOR_BUTTONS:
        assert page.locator(sel).count() == 0 or not page.locator(sel).is_visible(), sel
    assert (
        page.get_by_role("button", name="Stop").count() == 0
        or not page.get_by_role("button", name="Stop").is_visible()
    )
    shot(page, tmp_path, "roles-labeler-train.png")
    page.get_by_role("tab", name="Label").click()
    assert page.locator("#label-left").is_visible()  # labeling itself is there
    assert not page.get_by_role("button", name="Generate in the background").is_visible()


def test_an_operator_sees_them(studio_with_accounts, page, tmp_path: Path) -> None:  # noqa: F811
    login(page, studio_with_accounts.url, "olga", "operator-pass-1")
    page.get_by_role("tab", name="Train").click()
    page.locator("#launch-button").wait_for()
    assert page.locator("#launch-button").is_visible()


def test_train_tab_shows_the_whole_headless_command(studio, page, tmp_path: Path) -> None:  # noqa: F811
    page.goto(studio.url)
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Resolved config and commands").click()
    cmd = page.locator("#headless-command")
    cmd.locator(".cm-content").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#headless-command .cm-content').innerText.includes('--runs-dir')"
    )
    text = cmd.locator(".cm-content").inner_text()
    assert f"--runs-dir {studio.runs_dir}" in text and text.startswith("python launch.py --preset")
    # nothing is cut off: the editor wraps instead of scrolling sideways
    overflow = page.evaluate(
        "() => { const s = document.querySelector('#headless-command .cm-scroller');"
        " return s.scrollWidth - s.clientWidth; }"
    )
    assert overflow <= 1, overflow
    cmd.scroll_into_view_if_needed()
    cmd.screenshot(path=str(tmp_path / "train-headless-command.png"))
    shot(page, tmp_path, "train-tab-command.png")
