"""Data tab: open any dataset, see the layout found and how it will be read (a row as stored
beside the row as training reads it), edit the column mapping, see lengths and problems
before training on it; build mixtures; send it, mapping and all, to the Train tab. Layout and
wiring here; what the events do is data_handlers.py."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backends.core.data.layouts import LAYOUTS, LayoutName
from studio.context import StudioContext
from studio.tabs.data_actions import build_data_actions
from studio.tabs.data_handlers import DataHandlers, known_sources


@dataclass
class DataTab:
    source: gr.Dropdown
    train_request: gr.Textbox  # a TrainRequest as JSON when the user asks to train on what is open
    on_page_load: Any


def build_data_tab(ctx: StudioContext) -> DataTab:
    with gr.Row():
        source = gr.Dropdown(
            known_sources(ctx),
            label="Dataset",
            allow_custom_value=True,
            scale=4,
            elem_id="data-source",
            info="builtin:tasks:<method>, a file under the data or runs folder, a saved dataset folder, "
            "or a hub id (when online).",
        )
        model = gr.Textbox("builtin:smollm2-135m-instruct", label="Tokenizer / chat template of", scale=2)
        max_len = gr.Number(256, label="Max length (tokens)", precision=0, scale=1)
        open_btn = gr.Button("Open", variant="primary", scale=1, elem_id="data-open")
    with gr.Row():
        layout = gr.Dropdown(
            list(typing.get_args(LayoutName)),
            value="auto",
            label="Layout",
            info="auto: found from the columns; or name one: " + ", ".join(LAYOUTS),
            scale=1,
            elem_id="data-layout",
        )
        mapping = gr.Textbox(
            "",
            label="Column mapping (data.columns)",
            placeholder="{prompt: question, completion: answer}",
            info="The layout's field -> your column; Open again to read the file with it.",
            scale=3,
            elem_id="data-mapping",
        )
    summary = gr.Markdown(elem_id="data-summary")
    with gr.Row():
        problems = gr.Markdown(elem_id="data-problems")
        hist = gr.Plot(elem_id="data-hist")
    with gr.Row(equal_height=True):
        row_no = gr.Number(1, label="Row", precision=0, minimum=1, scale=0, min_width=100, elem_id="data-row")
        raw_row = gr.Code(language="json", label="As stored", max_lines=18, elem_id="data-raw-row")
        read_row = gr.Code(
            language="json", label="As training reads it", max_lines=18, elem_id="data-read-row"
        )
    with gr.Row():
        page_no = gr.Number(1, label="Page", precision=0, minimum=1, scale=1)
        query = gr.Textbox(label="Search (text contains)", scale=3, elem_id="data-search")
        show_only = gr.Dropdown(
            ["all rows", "problems", "over max length", "duplicate prompts"],
            value="all rows",
            label="Filter (sampled rows)",
            scale=2,
        )
        go_btn = gr.Button("Show", scale=1)
    table = gr.Dataframe(interactive=False, wrap=True, max_height=600, elem_id="data-rows")
    train_btn = gr.Button("Train on this", elem_id="data-train")
    with gr.Accordion("Mixture: combine datasets of one format", open=False):
        spec = gr.Textbox(
            lines=4,
            label="One `dataset: rows` or `dataset: fraction` per line",
            placeholder="builtin:tasks:sft: 300\nruns/<id>/data/sft.jsonl: 1.0",
        )
        with gr.Row():
            mix_name = gr.Textbox("mixture", label="Name")
            mix_seed = gr.Number(0, label="Seed", precision=0)
            mix_btn = gr.Button("Build mixture")
        mix_msg = gr.Markdown()
    build_data_actions(ctx, source, layout, mapping)
    train_request = gr.Textbox(visible=False)

    h = DataHandlers(ctx)

    # --- wiring ------------------------------------------------------------------------
    open_inputs = [source, model, max_len, layout, mapping]
    open_outputs = [summary, problems, hist, table, raw_row, read_row, row_no]
    open_btn.click(h.on_open, open_inputs, open_outputs, api_name="data_open")
    mapping.submit(h.on_open, open_inputs, open_outputs, api_visibility="private")
    layout.input(h.on_open, open_inputs, open_outputs, api_visibility="private")
    # picking another dataset from the list starts it afresh (a typed path keeps the mapping typed)
    source.select(h.on_source, None, [layout, mapping], api_visibility="private")
    row_no.submit(h.on_row, [source, layout, mapping, row_no], [raw_row, read_row], api_name="data_row")
    show_inputs = [source, model, page_no, query, show_only, max_len, layout, mapping]
    go_btn.click(h.on_show, show_inputs, table, api_name="data_rows")
    query.submit(h.on_show, show_inputs, table, api_visibility="private")
    show_only.change(h.on_show, show_inputs, table, api_visibility="private")
    train_btn.click(h.on_train, [source, layout, mapping], train_request, api_name="data_train")
    mix_btn.click(h.on_mix, [spec, mix_name, mix_seed], mix_msg, api_name="data_mix")
    return DataTab(source, train_request, h.on_page_load)
