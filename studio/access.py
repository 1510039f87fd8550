"""Roles, enforced in one place: `guard(app, ctx)` wraps every event function of the built app
so an operator-only endpoint refuses a labeler, whether the page or the Gradio API calls it,
and `role_controls` hides those endpoints' buttons from a labeler when the page loads.

Refusals from the studio's policy (a path outside the served folders, an unregistered reward
function: ConfigError / PathRefused) raised by any handler come back as `gr.Error` with their
message, so every tab shows why, never a bare "Error".
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from backends.core.access.paths import PathRefused
from backends.core.spec.config import ConfigError
from studio.context import StudioContext
from studio.logic.access import LABELER_OK, OPERATOR_ONLY, may_call, operator_only, role_banner


def _current_request() -> gr.Request | None:
    """The request of the event being handled. Gradio (6.31) sets it in a context variable
    before calling the function (utils.get_function_with_locals); reading it here lets one
    wrapper serve handlers of any signature, `*values` ones included, which could not take a
    `gr.Request` parameter after their varargs. Without a request the caller counts as a
    labeler whenever the studio has accounts (see StudioContext.role_of)."""
    return LocalContext.request.get(None)


def _refuse_if_labeler(ctx: StudioContext, api_name: str | None, public: bool) -> None:
    request = _current_request()
    user = getattr(request, "username", None)
    role = ctx.role_of(user)
    if not may_call(role, api_name, public):
        raise gr.Error(
            f"`{api_name}` needs the operator role; {user or 'this session'} is a {role}. "
            "Ask an operator to start it.",
            title="Not allowed",
        )


def _policy_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise the policy's refusals as gr.Error, which Gradio shows with its message."""

    def message(e: ValueError) -> str:
        return "\n".join(e.problems) if isinstance(e, ConfigError) else str(e)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except (ConfigError, PathRefused) as e:
                raise gr.Error(message(e), title="Refused") from e

        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, PathRefused) as e:
            raise gr.Error(message(e), title="Refused") from e

    return call


def _guarded(fn: Callable[..., Any], ctx: StudioContext, api_name: str | None, public: bool) -> Any:
    inner = _policy_errors(fn)
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"endpoint {api_name}: async handlers are not guarded yet; make it sync")
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            _refuse_if_labeler(ctx, api_name, public)
            yield from inner(*args, **kwargs)

        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        _refuse_if_labeler(ctx, api_name, public)
        return inner(*args, **kwargs)

    return call


def guard(app: gr.Blocks, ctx: StudioContext) -> None:
    """Wrap every event function of `app` (call once, after all events are wired)."""
    for block_fn in app.fns.values():
        if block_fn.fn is None or getattr(block_fn.fn, "_studio_guarded", False):
            continue
        public = block_fn.api_visibility == "public"
        listed = block_fn.api_name in OPERATOR_ONLY or block_fn.api_name in LABELER_OK
        if public and not listed:
            print(f"roles: endpoint `{block_fn.api_name}` is not classified; operators only", file=sys.stderr)
        block_fn.fn = _guarded(block_fn.fn, ctx, block_fn.api_name, public)
        block_fn.fn._studio_guarded = True  # type: ignore[attr-defined]


def operator_buttons(app: gr.Blocks) -> list[gr.Button]:
    """The buttons that trigger operator-only endpoints (found from the events themselves)."""
    out: dict[int, gr.Button] = {}
    for block_fn in app.fns.values():
        if not operator_only(block_fn.api_name, block_fn.api_visibility == "public"):
            continue
        for block_id, _event in block_fn.targets:
            block = app.blocks.get(block_id) if block_id is not None else None
            if isinstance(block, gr.Button):
                out[block_id] = block
    return list(out.values())


def role_controls(app: gr.Blocks, ctx: StudioContext, banner: gr.Markdown) -> None:
    """On page load: say who is signed in, and hide operator-only buttons from a labeler."""
    buttons = operator_buttons(app)

    def on_role_load(request: gr.Request) -> list[Any]:
        user = getattr(request, "username", None)
        role = ctx.role_of(user)
        text = role_banner(user, role, ctx.accounts is not None)
        hidden = [gr.Button(visible=False) if role == "labeler" else gr.skip() for _ in buttons]
        return [gr.Markdown(text, visible=bool(text)), *hidden]

    app.load(on_role_load, None, [banner, *buttons], api_visibility="private")
