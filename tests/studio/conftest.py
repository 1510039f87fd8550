"""A real studio server on localhost for the client and browser tests."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    runs_dir: Path
    ctx: object  # StudioContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def studio(tmp_path: Path, tiny_model: str) -> Iterator[Server]:
    from studio.app import launch_app
    from studio.context import StudioContext

    runs = tmp_path / "runs"
    ctx = StudioContext.create(
        runs_dir=runs,
        presets_dir=ROOT / "presets",
        data_dir=tmp_path / "data",
        servers_folder=tmp_path / "servers",  # its own: the machine's is shared by the session's tests
    )
    port = free_port()
    app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", runs, ctx)
    finally:
        ctx.stop_scheduler()
        app.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's chromium driven by Playwright, started once per test process (each test gets a
    context of its own: no cookies or storage shared between tests)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(chromium) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()
