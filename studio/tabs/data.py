"""Data tab: open any dataset, see the layout found and how it will be read (a row as stored
beside the row as training reads it), edit the column mapping, see lengths and problems
before training on it; build mixtures; send it, mapping and all, to the Train tab."""

from __future__ import annotations

import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from backends.core.access.paths import PathRefused
from backends.core.data.layouts import LAYOUTS, LayoutName
from backends.core.pipelines.policy import check_value
from backends.core.runs.rundir import list_runs
from backends.core.spec import registry
from backends.core.spec.config import EMBEDDED_DATA
from backends.core.spec.places import builtin_model_dir
from studio.context import StudioContext
from studio.logic.datastats import (
    as_text,
    compute_stats,
    describe,
    filter_sample,
    histogram,
    load_tokenizer,
    row_json,
    search,
)
from studio.logic.dataview import DataView, open_dataset
from studio.logic.handoff import parse_mapping, request_for
from studio.logic.mixtures import mix, parse_spec
from studio.logic.templates import load_template
from studio.tabs.data_actions import build_data_actions

PAGE = 20


@dataclass
class DataTab:
    source: gr.Dropdown
    train_request: gr.Textbox  # a TrainRequest as JSON when the user asks to train on what is open
    on_page_load: Any


def known_sources(ctx: StudioContext) -> list[str]:
    """Datasets the studio knows about: the embedded generator, files in the data folder,
    and what runs produced (sampled pairs, best-of-N sets, RL samples)."""
    out = [EMBEDDED_DATA + ":" + m for m in registry.embedded_shapes()]
    for p in sorted(ctx.data_dir.rglob("*")):
        if p.suffix.lower() in (".jsonl", ".json", ".csv", ".parquet"):
            out.append(str(p))
    for run in list_runs(ctx.runs_dir)[:50]:
        out += [str(p) for p in run.data_outputs()]
        if run.samples_path.exists():
            out.append(str(run.samples_path))
    return out


def tokenizer_dir(ctx: StudioContext, model: str) -> Path | None:
    """A model's tokenizer folder if it is on disk (no download, no conversion from here).
    Only folders the studio serves (and the model cache) are read, like any typed path."""
    if model.startswith("builtin:"):
        p = builtin_model_dir(model)
        return p if p is not None and p.exists() else None
    try:
        p = ctx.paths.resolve_model(model, "tokenizer folder")
    except PathRefused:
        return None
    return p if (p / "tokenizer.json").exists() else None


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

    # --- handlers ----------------------------------------------------------------------
    def view_of(src: str, lay: str = "auto", cols: str = "") -> DataView:
        src = (src or "").strip()
        if not src:
            raise ValueError("pick or type a dataset first")
        columns = parse_mapping(cols)
        if src.startswith(EMBEDDED_DATA):
            return open_dataset(src, None, layout=lay or "auto", mapping=columns)
        value = check_value(src, "data", ctx.policy)  # the one path policy; PathRefused if not
        if not Path(value).is_absolute():
            return open_dataset(src, None, layout=lay or "auto", mapping=columns)  # a hub id
        return open_dataset(src, Path(value), layout=lay or "auto", mapping=columns)

    def rows_table(view: DataView, rows: list[dict[str, Any]], tok_dir: Path | None) -> Any:
        """Rows as training reads them. Prompts and whole conversations go through the chat
        template (what the model will see); answers are shown as their text."""
        template = load_template(tok_dir)
        cols = list(view.read_columns)
        if any("__error__" in r for r in rows):
            cols.append("problem")
        data = [
            [
                r.get("__error__", "")
                if c == "problem"
                else as_text(r.get(c), template if c in ("prompt", "messages") else None)[:2000]
                for c in cols
            ]
            for r in rows
        ]
        width = f"{100 / max(len(cols), 1):.0f}%"
        return gr.Dataframe(
            value={"headers": cols, "data": data}, headers=cols, column_widths=[width] * len(cols)
        )

    def row_pair(view: DataView, n: int) -> tuple[str, str]:
        numbered = view.numbered_page(max(1, n) - 1, 1)
        if not numbered:
            return f"// row {n} is past the end ({view.rows_total} rows)", ""
        if view.plan is None:
            return row_json(numbered[0][1]), "// no layout fits: map the columns (see above), then Open"
        return row_json(numbered[0][1]), row_json(view.read(numbered)[0])

    def on_open(src: str, mdl: str, mx: float, lay: str, cols: str) -> tuple[Any, ...]:
        t0 = time.time()
        try:
            view = view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            empty = gr.Dataframe(value={"headers": [], "data": []})
            return f"**Cannot open:** {e}", "", None, empty, "", "", 1
        opened = time.time() - t0
        tok_dir = tokenizer_dir(ctx, mdl)
        lines = describe(view, opened)
        if tok_dir is None:
            lines.append(
                f"_No tokenizer on disk for `{mdl}` yet: lengths are in words, conversations shown raw._"
            )
        stats = compute_stats(view, load_tokenizer(tok_dir), load_template(tok_dir), int(mx or 256))
        probs = [
            f"Sampled {stats.sampled} rows:",
            f"- {stats.over_max} ({100 * stats.over_max / max(stats.sampled, 1):.0f}%) exceed max_length {int(mx)} {stats.unit}",
            f"- {stats.duplicate_prompts} duplicate prompts",
        ]
        probs += [f"- empty `{c}`: {n} rows" for c, n in stats.empty.items()]
        probs += [f"- {b}" for b in stats.broken]
        rows = view.read(view.numbered_page(0, PAGE))
        return (
            "\n\n".join(lines),
            "\n".join(probs),
            histogram(stats.lengths, stats.unit, int(mx or 256)),
            rows_table(view, rows, tok_dir),
            *row_pair(view, 1),
            1,
        )

    def on_row(src: str, lay: str, cols: str, n: float) -> tuple[str, str]:
        try:
            view = view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip(), gr.skip()
        return row_pair(view, int(n or 1))

    def on_show(src: str, mdl: str, page: float, q: str, only: str, mx: float, lay: str, cols: str) -> Any:
        try:
            view = view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip()
        tok_dir = tokenizer_dir(ctx, mdl)
        if only and only != "all rows":
            rows = filter_sample(view, only, load_tokenizer(tok_dir), load_template(tok_dir), int(mx or 256))
        elif q and q.strip():
            rows = search(view, q)
        else:
            rows = view.read(view.numbered_page((int(page or 1) - 1) * PAGE, PAGE))
        if not rows:
            gr.Info("No rows match." if q else "That page is past the end.")
        return rows_table(view, rows, tok_dir)

    def on_train(src: str, lay: str, cols: str) -> str:
        try:
            view = view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip()
        dataset = EMBEDDED_DATA if src.startswith(EMBEDDED_DATA) else src
        req = request_for(view, dataset)
        if req is None:
            why = view.plan_error or f"no method takes {view.fmt.describe() if view.fmt else 'this format'}"
            gr.Warning(f"Nothing to train on yet: {why}")
            return gr.skip()
        return req.to_text()

    def on_source() -> tuple[str, str]:
        """Another dataset: its layout is found afresh, with no mapping left from the last one."""
        return "auto", ""

    def on_mix(text: str, name: str, seed: float) -> str:
        try:
            parts = parse_spec(text)
            views = [(p, view_of(p.source)) for p in parts]
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "mixture"))
            out = ctx.data_dir / "mixtures" / f"{safe}.jsonl"
            n, notes = mix(views, out, int(seed or 0))
        except (PathRefused, ValueError, OSError) as e:
            return f"**Not built:** {e}"
        return f"Wrote {n} rows to `{out}` (column `source` names each row's dataset)." + "".join(
            f"\n\n_{x}_" for x in notes
        )

    def on_page_load() -> Any:
        return gr.Dropdown(choices=known_sources(ctx))

    # --- wiring ------------------------------------------------------------------------
    open_inputs = [source, model, max_len, layout, mapping]
    open_outputs = [summary, problems, hist, table, raw_row, read_row, row_no]
    open_btn.click(on_open, open_inputs, open_outputs, api_name="data_open")
    mapping.submit(on_open, open_inputs, open_outputs, api_visibility="private")
    layout.input(on_open, open_inputs, open_outputs, api_visibility="private")
    # picking another dataset from the list starts it afresh (a typed path keeps the mapping typed)
    source.select(on_source, None, [layout, mapping], api_visibility="private")
    row_no.submit(on_row, [source, layout, mapping, row_no], [raw_row, read_row], api_name="data_row")
    show_inputs = [source, model, page_no, query, show_only, max_len, layout, mapping]
    go_btn.click(on_show, show_inputs, table, api_name="data_rows")
    query.submit(on_show, show_inputs, table, api_visibility="private")
    show_only.change(on_show, show_inputs, table, api_visibility="private")
    train_btn.click(on_train, [source, layout, mapping], train_request, api_name="data_train")
    mix_btn.click(on_mix, [spec, mix_name, mix_seed], mix_msg, api_name="data_mix")
    return DataTab(source, train_request, on_page_load)
