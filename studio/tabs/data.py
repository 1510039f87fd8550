"""Data tab: open any dataset, see its format, rows, lengths and problems before training
on it; build mixtures; send it to the Train tab with a method that fits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from backends.core.config import EMBEDDED_DATA
from backends.core.data import methods_for
from backends.core.paths import PathRefused, builtin_model_dir
from backends.core.policy import check_value
from backends.core.rundir import list_runs
from studio.context import StudioContext
from studio.logic.dataview import (
    DataView,
    as_text,
    column_types,
    compute_stats,
    filter_sample,
    load_tokenizer,
    open_dataset,
    search,
)
from studio.logic.mixtures import mix, parse_spec
from studio.logic.templates import load_template

PAGE = 20


@dataclass
class DataTab:
    source: gr.Dropdown
    train_request: gr.Textbox  # "method|dataset|time" when the user asks to train on what is open
    on_page_load: Any


def known_sources(ctx: StudioContext) -> list[str]:
    """Datasets the studio knows about: the embedded generator, files in the data folder,
    and what runs produced (sampled pairs, best-of-N sets, RL samples)."""
    out = [EMBEDDED_DATA + ":" + m for m in ("sft", "dpo", "kto", "grpo")]
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


def fitting_method(view: DataView) -> str | None:
    return next(iter(methods_for(view.fmt)), None)


def histogram(lengths: dict[str, list[int]], unit: str, max_length: int) -> go.Figure:
    fig = go.Figure()
    for col, values in lengths.items():
        if values:
            fig.add_trace(go.Histogram(x=values, name=col, opacity=0.6, nbinsx=40))
    fig.add_vline(x=max_length, line_dash="dash", annotation_text=f"max_length {max_length}")
    fig.update_layout(
        barmode="overlay",
        height=320,
        template="plotly_white",
        margin=dict(l=40, r=20, t=40, b=40),
        title=f"length per column ({unit}, sampled rows)",
        xaxis_title=unit,
        yaxis_title="rows",
    )
    return fig


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
    summary = gr.Markdown(elem_id="data-summary")
    with gr.Row():
        problems = gr.Markdown(elem_id="data-problems")
        hist = gr.Plot(elem_id="data-hist")
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
    train_request = gr.Textbox(visible=False)

    # --- handlers ----------------------------------------------------------------------
    def view_of(src: str) -> DataView:
        src = (src or "").strip()
        if not src:
            raise ValueError("pick or type a dataset first")
        if src.startswith(EMBEDDED_DATA):
            return open_dataset(src, None)
        value = check_value(src, "data", ctx.policy)  # the one path policy; PathRefused if not
        if not Path(value).is_absolute():
            return open_dataset(src, None)  # a hub id (nothing of that name on this machine)
        return open_dataset(src, Path(value))

    def rows_table(view: DataView, rows: list[dict[str, Any]], tok_dir: Path | None) -> Any:
        """Prompts and whole conversations go through the chat template (what the model will
        see); answers are shown as their text."""
        template = load_template(tok_dir)
        cols = view.columns
        data = [
            [as_text(r.get(c), template if c in ("prompt", "messages") else None)[:2000] for c in cols]
            for r in rows
        ]
        width = f"{100 / max(len(cols), 1):.0f}%"
        return gr.Dataframe(
            value={"headers": cols, "data": data}, headers=cols, column_widths=[width] * len(cols)
        )

    def on_open(src: str, mdl: str, mx: float) -> tuple[Any, ...]:
        t0 = time.time()
        try:
            view = view_of(src)
        except (PathRefused, ValueError, OSError) as e:
            return f"**Cannot open:** {e}", "", None, gr.skip()
        opened = time.time() - t0
        tok_dir = tokenizer_dir(ctx, mdl)
        fmt = view.fmt.describe() if view.fmt else "**no known format**"
        types = ", ".join(f"`{c}` {t}" for c, t in column_types(view).items())
        lines = [
            f"**{view.rows_total:,} rows** · format: {fmt} · opened in {opened:.1f} s",
            f"Columns: {types}",
            f"Fits: {', '.join(methods_for(view.fmt)) or 'no method'}",
        ]
        if view.fmt is None:
            wanted = "; ".join(
                f"{n}: {', '.join(c)}"
                for n, c in {
                    "prompt-completion": ("prompt", "completion"),
                    "preference": ("prompt", "chosen", "rejected"),
                    "unpaired": ("prompt", "completion", "label"),
                    "prompt-only": ("prompt",),
                    "language modeling": ("text",),
                }.items()
            )
            lines.append(f"Columns {view.columns} fit none of TRL's formats ({wanted}).")
        lines += [f"_{n}_" for n in view.notes]
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
        table_value = rows_table(view, view.page(0, PAGE), tok_dir)
        return (
            "\n\n".join(lines),
            "\n".join(probs),
            histogram(stats.lengths, stats.unit, int(mx or 256)),
            table_value,
        )

    def on_show(src: str, mdl: str, page: float, q: str, only: str, mx: float) -> Any:
        try:
            view = view_of(src)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip()
        tok_dir = tokenizer_dir(ctx, mdl)
        if only and only != "all rows":
            rows = filter_sample(view, only, load_tokenizer(tok_dir), load_template(tok_dir), int(mx or 256))
        elif q and q.strip():
            rows = search(view, q)
        else:
            rows = view.page((int(page or 1) - 1) * PAGE, PAGE)
        if not rows:
            gr.Info("No rows match." if q else "That page is past the end.")
        return rows_table(view, rows, tok_dir)

    def on_train(src: str) -> str:
        try:
            view = view_of(src)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip()
        method = fitting_method(view)
        if method is None:
            gr.Warning(f"No method takes this format (columns {view.columns}).")
            return gr.skip()
        dataset = EMBEDDED_DATA if src.startswith(EMBEDDED_DATA) else src
        return f"{method}|{dataset}|{time.time()}"

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
    open_btn.click(on_open, [source, model, max_len], [summary, problems, hist, table], api_name="data_open")
    show_inputs = [source, model, page_no, query, show_only, max_len]
    go_btn.click(on_show, show_inputs, table, api_name="data_rows")
    query.submit(on_show, show_inputs, table, api_visibility="private")
    show_only.change(on_show, show_inputs, table, api_visibility="private")
    train_btn.click(on_train, source, train_request, api_name="data_train")
    mix_btn.click(on_mix, [spec, mix_name, mix_seed], mix_msg, api_name="data_mix")
    return DataTab(source, train_request, on_page_load)
