"""build_app(ctx) -> gr.Blocks: the studio's tabs wired together. Nothing is built at import."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from fastapi import HTTPException
from starlette.middleware import Middleware

from backends.core.access.accounts import Accounts
from backends.core.access.logins import ClientAddress, LoginGuard, LoginPageOnly, LoginThrottled, end_sessions
from backends.core.labels.store import StoreError
from backends.core.pipelines.pipeline import is_pipeline
from backends.core.runs.rundir import list_runs
from backends.core.spec.config import ConfigError, read_preset
from studio.access import guard, role_controls
from studio.context import StudioContext
from studio.logic import forms
from studio.logic.handoff import TrainRequest, preset_for, preset_method, request_values
from studio.tabs.arena import build_arena_tab
from studio.tabs.chat import build_chat_tab
from studio.tabs.data import build_data_tab
from studio.tabs.label import KEYBOARD_JS, build_label_tab
from studio.tabs.monitor import build_monitor_tab, chart_exports_dir, preload_plotly_js
from studio.tabs.runs_panel import build_title, title_js
from studio.tabs.train import build_train_tab

TITLE = "Alignment Studio"
MAX_UPLOAD = "20mb"  # Gradio's upload route is open to every logged-in user; nothing here needs more


def build_app(ctx: StudioContext, initial_preset: str | None = None) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"## {TITLE}\nRuns live in `{ctx.runs_dir}`; closing this page never stops them.")
        role_line = gr.Markdown(visible=False, elem_id="role-banner")
        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data"):
                data = build_data_tab(ctx)
            with gr.Tab("Train", id="train"):
                train = build_train_tab(ctx, initial_preset)
            with gr.Tab("Monitor", id="monitor") as monitor_tab:
                monitor = build_monitor_tab(ctx)
            with gr.Tab("Label", id="label") as label_tab:
                label = build_label_tab(ctx)
            with gr.Tab("Arena", id="arena") as arena_tab:
                arena = build_arena_tab(ctx)
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(ctx)
        build_title(ctx)  # the browser tab's title follows the newest run

        def on_launched(run_id: str, selected: list[str] | None) -> Any:
            """A run launched from the Train tab is added to the Monitor's selection."""
            ids = [r.run_id for r in list_runs(ctx.runs_dir)]
            if not run_id:
                return gr.skip()
            return gr.Dropdown(
                choices=ids, value=[run_id, *[s for s in selected or [] if s != run_id and s in ids]]
            )

        app.load(monitor.on_page_load, None, monitor.runs, api_visibility="private")
        app.load(label.on_page_load, None, label.sessions, api_visibility="private")
        app.load(data.on_page_load, None, data.source, api_visibility="private")
        app.load(arena.on_page_load, None, [arena.models, arena.comparison], api_visibility="private")
        # shown again: runs finished and sessions made since the page loaded are in the lists
        arena_tab.select(arena.on_page_load, None, [arena.models, arena.comparison], api_visibility="private")
        label_tab.select(lambda: label.on_show(), None, label.sessions, api_visibility="private")

        def open_session(run_id: str | None) -> list[Any]:
            """After "Judge by people": the Label tab, on the session the Arena just made."""
            try:
                sid = ctx.store.session_id(f"arena-{run_id}")
            except StoreError:  # not made (the message above says why)
                return [gr.skip(), gr.skip()]
            return [gr.Tabs(selected="label"), label.on_show(sid)]

        arena.handoff.then(open_session, arena.comparison, [tabs, label.sessions], api_visibility="private")

        form_fields = [train.fields[k] for k in forms.keys()]

        def on_train_request(request: str, current: str | None) -> list[Any]:
            """ "Train on this" in the Data tab: a preset of the fitting method, and the form
            filled with the dataset, its layout and mapping, and a run name after both."""
            if not request:
                return [gr.skip()] * (7 + len(form_fields))
            req = TrainRequest.from_text(request)
            presets = ctx.list_presets()
            name = preset_for(req.method, presets, current, lambda p: preset_method(ctx.preset_path(p)))
            raw = read_preset(ctx.preset_path(name)) if name else {}
            try:
                values = request_values(req, {} if is_pipeline(raw) else raw, f"preset {name}")
            except ConfigError as e:
                gr.Warning(f"Cannot fill the Train form: {e}")
                return [gr.skip()] * (7 + len(form_fields))
            shown = [gr.Column(visible=True), gr.Column(visible=False)]
            # the request is kept after the rerun base is cleared (that clears a carried one)
            return [gr.Tabs(selected="train"), name or gr.skip(), "", "", *shown, request, *values]

        train.refresh(
            data.train_request.change(
                on_train_request,
                [data.train_request, train.preset],
                [
                    tabs,
                    train.preset,
                    *train.rerun_outputs[:2],
                    train.form_box,
                    train.pipeline_box,
                    train.carried,
                    *form_fields,
                ],
                api_visibility="private",
            )
        )
        # "Edit and rerun" in the Monitor fills the Train form, as the Train tab's own button does.
        train.refresh(
            monitor.rerun.click(
                lambda run_id: [gr.Tabs(selected="train"), *train.fill_rerun(run_id)],
                monitor.act_run,
                [tabs, *train.rerun_outputs],
                api_name="monitor_rerun",
            )
        )
        train.launched.change(
            on_launched, [train.launched, monitor.runs], monitor.runs, api_visibility="private"
        )
        # A timer stopped because every shown run had ended comes back when the tab is shown.
        monitor_tab.select(lambda: gr.Timer(active=True), None, monitor.timer, api_visibility="private")
        role_controls(app, ctx, role_line)
    guard(app, ctx)  # last: every event is wired by now
    return app


def login_check(accounts: Accounts) -> Callable[[str, str], bool]:
    """Gradio's login check: the accounts' password check, throttled per name and address."""
    guard = LoginGuard(accounts.verify)

    def check(username: str, password: str) -> bool:
        try:
            return guard.verify(username, password)
        except LoginThrottled as e:
            raise HTTPException(status_code=429, detail=str(e)) from None

    return check


# How long the studio waits for its own page at start-up (gradio waits 3 s, once)
STARTUP_CHECK_S = 60.0


@contextlib.contextmanager
def patient_startup_check(timeout: float = STARTUP_CHECK_S) -> Iterator[None]:
    """gradio's launch asks for its own page once, with a 3 s timeout, and when that times out
    refuses to start ("When localhost is not accessible, a shareable link must be created").
    On a machine whose cores are busy training, the studio's everyday case, the first page can
    take longer (seen with a pipeline and the test suite on 2 cores). Within this block the
    check asks again until `timeout`, and says what it last got when it gives up."""
    import httpx
    from gradio import networking

    original = networking.url_ok

    def url_ok(url: str) -> bool:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                r = httpx.head(url, timeout=10)
            except (httpx.TimeoutException, httpx.ConnectError) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code in (200, 401, 301, 302, 303, 307, 308):
                    return True
                last = f"HTTP {r.status_code}"
            time.sleep(0.5)
        print(f"studio: {url} did not answer within {timeout:.0f} s ({last})", file=sys.stderr)
        return False

    networking.url_ok = url_ok
    try:
        yield
    finally:
        networking.url_ok = original


def launch_app(
    ctx: StudioContext,
    host: str,
    port: int,
    share: bool = False,
    auth: list[tuple[str, str]] | None = None,
    block: bool = True,
    initial_preset: str | None = None,
) -> gr.Blocks:
    """`auth` pairs log in as operators; `ctx.accounts` (a users file) gives each user a role."""
    if auth and ctx.accounts is None:
        ctx.accounts = Accounts(plain=auth)
    app = build_app(ctx, initial_preset)
    ctx.start_scheduler()
    # Gradio 6.31 recomputes a pandas summary of up to 10,000 past events after every event,
    # for its /monitoring page, which the studio does not turn on: 4 ms of CPU per event after
    # 500 events, 8 ms after 10,000 (queueing.py, compute_analytics_summary). Read when the
    # queue is made; once per 1,000 events keeps that page right enough.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    app.queue(default_concurrency_limit=8)
    with patient_startup_check():
        app.launch(
            server_name=host,
            server_port=port,
            share=share,
            auth=login_check(ctx.accounts) if ctx.accounts is not None else None,
            # the client's address, for the login throttle (Gradio's check gets name and password
            # only); the login page without the app's API description (backends/core/access/logins.py)
            app_kwargs={"middleware": [Middleware(ClientAddress), Middleware(LoginPageOnly)]},
            max_file_size=MAX_UPLOAD,
            show_error=True,
            prevent_thread_lock=not block,
            theme=gr.themes.Soft(),
            footer_links=[],
            js=f"() => {{ ({KEYBOARD_JS})(); ({title_js(TITLE)})(); ({preload_plotly_js()})(); }}",
            # reports (report.html) from the runs folder; the Monitor's chart CSVs; label exports
            allowed_paths=[str(ctx.runs_dir), str(chart_exports_dir(ctx)), str(ctx.data_dir / "labels")],
        )
    if ctx.accounts is not None:  # a changed password or role ends that user's sessions
        tokens = app.server_app.tokens
        ctx.accounts.listeners.append(lambda names: end_sessions(tokens, names))
    return app
