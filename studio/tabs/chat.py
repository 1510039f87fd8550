"""Chat tab: a multi-turn conversation with any model the studio knows (the embedded one, a
run's model, a folder under the served folders), streamed token by token, with a system prompt
and sampling controls; a second model side by side on the same user turns; the last two answers
sent to a labeling session as a preference pair. Each model answers from its own generation
server process (studio/logic/chat.py, backends/core/runs/genservers.py): the first message to a
model starts its server (loading takes seconds), later ones reuse it while it is warm.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.context import LocalContext

from studio.context import StudioContext
from studio.logic.arena_actions import model_choices
from studio.logic.chat import Sampling, chosen_models, server_rows, stop_servers, stream_turn, to_labeling

SERVER_HEADERS = ["model", "state", "engine", "device", "memory", "idle for"]


def build_chat_tab(ctx: StudioContext) -> None:
    choices = model_choices(ctx)
    with gr.Row(equal_height=True):
        model_a = gr.Dropdown(
            choices,
            value=choices[0],
            label="Model A",
            allow_custom_value=True,
            scale=3,
            elem_id="chat-model-a",
        )
        model_b = gr.Dropdown(
            ["none", *choices],
            value="none",
            label="Model B (side by side)",
            allow_custom_value=True,
            scale=3,
            elem_id="chat-model-b",
        )
        refresh = gr.Button("Refresh models", scale=1)
    system = gr.Textbox(label="System prompt", lines=2, placeholder="optional", elem_id="chat-system")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            max_tokens = gr.Slider(
                16, 1024, value=256, step=16, label="Max new tokens", elem_id="chat-max-tokens"
            )
            temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature (0: greedy)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
            seed = gr.Number(0, precision=0, label="Seed")
    with gr.Row():
        bot_a = gr.Chatbot(label="A", height=420, elem_id="chat-a")
        bot_b = gr.Chatbot(label="B", height=420, visible=False, elem_id="chat-b")
    with gr.Row(equal_height=True):
        text = gr.Textbox(
            show_label=False, placeholder="Message (Enter sends)", scale=6, elem_id="chat-input"
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
        clear = gr.Button("New conversation", scale=1, elem_id="chat-clear")
    note = gr.Markdown(elem_id="chat-note")
    with gr.Row(equal_height=True):
        session = gr.Textbox(label="Labeling session name", placeholder="chat-<time> when empty", scale=3)
        to_label = gr.Button("Send last two answers to labeling", scale=2, elem_id="chat-to-label")
    with gr.Accordion(
        "Generation servers (one process per model; each stops after 10 idle minutes)", open=False
    ):
        servers = gr.Dataframe(headers=SERVER_HEADERS, interactive=False, elem_id="chat-servers")
        with gr.Row():
            servers_refresh = gr.Button("Refresh", scale=1)
            stop_all = gr.Button("Stop all servers", scale=1, elem_id="chat-stop")

    def on_send(a, b, sys_prompt, n, temp, p, s, hist_a, hist_b, message):
        if not (message or "").strip():
            yield gr.skip(), gr.skip(), gr.skip(), "Type a message first."
            return
        models = chosen_models(ctx, a, b)  # a refused path comes back as the tab's error
        request = LocalContext.request.get(None)
        if ctx.role_of(getattr(request, "username", None)) != "operator":
            cold = [m for m in models if ctx.servers.info(m) is None]
            if cold:  # a labeler talks to servers already up; starting one is an operator's
                yield (
                    gr.skip(),
                    gr.skip(),
                    gr.skip(),
                    (
                        f"**Not sent:** no server is running for {', '.join(cold)}, and starting one needs "
                        "the operator role; pick a model an operator has started (Generation servers below)."
                    ),
                )
                return
        histories = [list(hist_a or []), list(hist_b or [])][: len(models)]
        sampling = Sampling(int(n), float(temp), float(p), int(s or 0))
        waiting = [m for m in models if (i := ctx.servers.info(m)) is None or i.state != "ready"]
        line = f"Starting the server for {', '.join(waiting)} (loading the model) …" if waiting else ""
        for hs in stream_turn(ctx, models, histories, message.strip(), sys_prompt or "", sampling):
            yield hs[0], hs[1] if len(hs) > 1 else gr.skip(), "", line
        yield gr.skip(), gr.skip(), "", ""

    def on_label(name, a, b, sys_prompt, hist_a, hist_b) -> str:
        request = LocalContext.request.get(None)
        models = chosen_models(ctx, a, b)
        return to_labeling(
            ctx,
            name,
            models,
            [hist_a or [], hist_b or []],
            sys_prompt or "",
            owner=getattr(request, "username", None) or "",
        )

    def on_stop() -> tuple[Any, str]:
        said = stop_servers(ctx)
        return gr.Dataframe(value=server_rows(ctx), headers=SERVER_HEADERS), said

    def on_refresh(a: str, b: str) -> tuple[Any, Any]:
        found = model_choices(ctx)
        return gr.Dropdown(choices=found, value=a), gr.Dropdown(choices=["none", *found], value=b)

    inputs = [model_a, model_b, system, max_tokens, temperature, top_p, seed, bot_a, bot_b, text]
    outputs = [bot_a, bot_b, text, note]
    # Send and Enter: one endpoint; a labeler may use it with servers already running
    sent = gr.on(
        [send.click, text.submit], on_send, inputs, outputs, api_name="chat_send", show_progress="hidden"
    )
    sent.then(lambda: server_rows(ctx), None, servers, api_visibility="private")
    model_b.change(
        lambda b: gr.Chatbot(visible=bool(b) and b != "none"), model_b, bot_b, api_visibility="private"
    )
    clear.click(lambda: ([], [], ""), None, [bot_a, bot_b, note], api_visibility="private")
    to_label.click(
        on_label, [session, model_a, model_b, system, bot_a, bot_b], note, api_name="chat_to_label"
    )
    servers_refresh.click(lambda: server_rows(ctx), None, servers, api_name="chat_servers")
    stop_all.click(on_stop, None, [servers, note], api_name="chat_stop")
    refresh.click(on_refresh, [model_a, model_b], [model_a, model_b], api_visibility="private")
