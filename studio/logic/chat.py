"""The Chat tab's logic: one conversation with one or two models side by side, streamed from
their generation servers (backends/core/runs/genservers.py), and the last two answers handed to
people as a preference pair. No gradio import; the studio process loads no model.

A conversation is a list of {"role", "content"} per model (each model sees its own earlier
answers and the same user turns); the system prompt is put in front of each when it is sent.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from backends.core.access.paths import PathRefused
from backends.core.pipelines.policy import check_value
from backends.core.runs.genservers import ServerError, chat_stream
from studio.context import StudioContext

LOADING = "…"  # an answer's placeholder while its server loads the model


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        return {
            "max_tokens": int(self.max_tokens),
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "seed": int(self.seed),
        }


def chosen_models(ctx: StudioContext, a: str | None, b: str | None) -> list[str]:
    """The models to talk to, each checked by the studio's path policy (a typed folder must be
    under the served folders); PathRefused names the one refused."""
    out = []
    for slot, text in (("model A", a), ("model B", b)):
        text = (text or "").strip()
        if not text or text == "none":
            continue
        try:
            out.append(check_value(text, "model", ctx.policy))
        except PathRefused as e:
            raise PathRefused(f"{slot}: {e}") from None
    if not out:
        raise PathRefused("pick a model for A (B is optional)")
    return out


def content_text(content: Any) -> str:
    """A chat message's text: the page sends it back as text or as a list of typed parts
    (Gradio 6's Chatbot: [{"type": "text", "text": ...}])."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(content_text(part) for part in content)
    return "" if content is None else str(content)


def with_system(system: str, history: list[dict[str, Any]]) -> list[dict[str, str]]:
    turns = [{"role": m["role"], "content": content_text(m["content"])} for m in history]
    return ([{"role": "system", "content": system.strip()}] if system and system.strip() else []) + turns


def stream_turn(
    ctx: StudioContext,
    models: list[str],
    histories: list[list[dict[str, str]]],
    user: str,
    system: str,
    sampling: Sampling,
) -> Iterator[list[list[dict[str, str]]]]:
    """Put the user's turn in every conversation and stream each model's answer into its own,
    all at once; yields the conversations each time any answer grew. A model that fails says
    why in its answer; the others go on."""
    histories = [[*with_system("", h), {"role": "user", "content": user}] for h in histories]
    sent = [with_system(system, h) for h in histories]
    for h in histories:
        h.append({"role": "assistant", "content": LOADING})
    pieces: queue.Queue[tuple[int, str | None, str | None]] = queue.Queue()

    def one(i: int, model: str) -> None:
        try:
            info = ctx.servers.ensure(model)
            if info.state != "ready":
                info = ctx.servers.wait_ready(model)
            for piece in chat_stream(info, sent[i], **sampling.settings()):
                pieces.put((i, piece, None))
            pieces.put((i, None, None))
        except ServerError as e:
            pieces.put((i, None, str(e)))

    for i, model in enumerate(models):
        threading.Thread(target=one, args=(i, model), daemon=True).start()
    running, text = set(range(len(models))), ["" for _ in models]
    yield histories
    while running:
        i, piece, error = pieces.get()
        if piece is not None:
            text[i] += piece
        else:
            running.discard(i)
            if error:
                text[i] = (text[i] + "\n\n" if text[i] else "") + f"**Error:** {error}"
        histories[i][-1] = {"role": "assistant", "content": text[i]}
        yield histories


def to_labeling(
    ctx: StudioContext,
    name: str,
    models: list[str],
    histories: list[list[dict[str, str]]],
    system: str,
    owner: str = "",
) -> str:
    """A labeling session of one pair: the conversation up to the last user turn and the two
    models' last answers to it."""
    if len(histories) < 2 or not all(h and h[-1]["role"] == "assistant" for h in histories[:2]):
        return "**Not created:** talk to two models first; the pair is their last two answers."
    a, b = (content_text(h[-1]["content"]) for h in histories[:2])
    if not a.strip() or not b.strip() or a == LOADING or b == LOADING:
        return "**Not created:** an answer is still empty; wait until both have answered."
    prompt = with_system(system, histories[0][:-1])
    name = (name or "").strip() or f"chat-{time.strftime('%Y%m%d-%H%M%S')}"
    item = {"prompt": prompt, "responses": [a, b], "meta": {"models": models[:2], "source": "chat"}}
    try:
        ctx.store.create_session(name, [item], source="chat", owner=owner)
    except ValueError as e:
        return f"**Not created:** {e}"
    return f"Labeling session `{name}` created with this pair: open the Label tab and pick it."


def stop_servers(ctx: StudioContext) -> str:
    """The Chat tab's Stop: every server, but those a running run (`eval.warm`) generates through,
    which it would fail."""
    kept = ctx.servers.stop_all(keep_leased=True)
    if not kept:
        return "Every generation server was stopped."
    return f"Stopped the others; kept {len(kept)} that a running run generates through: {', '.join(kept)}."


def server_rows(ctx: StudioContext) -> list[list[Any]]:
    now = time.time()
    rows = []
    for s in ctx.servers.servers():
        mem = s.memory_mb()
        rows.append(
            [
                s.model,
                s.state
                + (f" ({s.error})" if s.error else "")
                + (", a run uses it" if ctx.servers.in_use(s.model) else ""),
                s.engine,
                s.device,
                f"{mem:.0f} MB" if mem else "",
                f"{now - s.last_used:.0f} s" if s.last_used else "",
            ]
        )
    return rows
