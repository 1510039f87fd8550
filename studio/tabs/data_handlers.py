"""What the Data tab's events do: open a dataset through the path policy, show its rows as
stored and as training reads them, search and filter, build a mixture, and hand what is open
to the Train tab. data.py lays the tab out and wires these."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from backends.core.access.paths import PathRefused
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

PAGE = 20


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


class DataHandlers:
    def __init__(self, ctx: StudioContext) -> None:
        self.ctx = ctx

    def view_of(self, src: str, lay: str = "auto", cols: str = "") -> DataView:
        src = (src or "").strip()
        if not src:
            raise ValueError("pick or type a dataset first")
        columns = parse_mapping(cols)
        if src.startswith(EMBEDDED_DATA):
            return open_dataset(src, None, layout=lay or "auto", mapping=columns)
        value = check_value(src, "data", self.ctx.policy)  # the one path policy; PathRefused if not
        if not Path(value).is_absolute():
            return open_dataset(src, None, layout=lay or "auto", mapping=columns)  # a hub id
        return open_dataset(src, Path(value), layout=lay or "auto", mapping=columns)

    def rows_table(self, view: DataView, rows: list[dict[str, Any]], tok_dir: Path | None) -> Any:
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

    def row_pair(self, view: DataView, n: int) -> tuple[str, str]:
        numbered = view.numbered_page(max(1, n) - 1, 1)
        if not numbered:
            return f"// row {n} is past the end ({view.rows_total} rows)", ""
        if view.plan is None:
            return row_json(numbered[0][1]), "// no layout fits: map the columns (see above), then Open"
        return row_json(numbered[0][1]), row_json(view.read(numbered)[0])

    def on_open(self, src: str, mdl: str, mx: float, lay: str, cols: str) -> tuple[Any, ...]:
        t0 = time.time()
        try:
            view = self.view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            empty = gr.Dataframe(value={"headers": [], "data": []})
            return f"**Cannot open:** {e}", "", None, empty, "", "", 1
        opened = time.time() - t0
        tok_dir = tokenizer_dir(self.ctx, mdl)
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
            self.rows_table(view, rows, tok_dir),
            *self.row_pair(view, 1),
            1,
        )

    def on_row(self, src: str, lay: str, cols: str, n: float) -> tuple[str, str]:
        try:
            view = self.view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip(), gr.skip()
        return self.row_pair(view, int(n or 1))

    def on_show(
        self, src: str, mdl: str, page: float, q: str, only: str, mx: float, lay: str, cols: str
    ) -> Any:
        try:
            view = self.view_of(src, lay, cols)
        except (PathRefused, ValueError, OSError) as e:
            gr.Warning(str(e))
            return gr.skip()
        tok_dir = tokenizer_dir(self.ctx, mdl)
        if only and only != "all rows":
            rows = filter_sample(view, only, load_tokenizer(tok_dir), load_template(tok_dir), int(mx or 256))
        elif q and q.strip():
            rows = search(view, q)
        else:
            rows = view.read(view.numbered_page((int(page or 1) - 1) * PAGE, PAGE))
        if not rows:
            gr.Info("No rows match." if q else "That page is past the end.")
        return self.rows_table(view, rows, tok_dir)

    def on_train(self, src: str, lay: str, cols: str) -> str:
        try:
            view = self.view_of(src, lay, cols)
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

    def on_source(self) -> tuple[str, str]:
        """Another dataset: its layout is found afresh, with no mapping left from the last one."""
        return "auto", ""

    def on_mix(self, text: str, name: str, seed: float) -> str:
        try:
            parts = parse_spec(text)
            views = [(p, self.view_of(p.source)) for p in parts]
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "mixture"))
            out = self.ctx.data_dir / "mixtures" / f"{safe}.jsonl"
            n, notes = mix(views, out, int(seed or 0))
        except (PathRefused, ValueError, OSError) as e:
            return f"**Not built:** {e}"
        return f"Wrote {n} rows to `{out}` (column `source` names each row's dataset)." + "".join(
            f"\n\n_{x}_" for x in notes
        )

    def on_page_load(self) -> Any:
        return gr.Dropdown(choices=known_sources(self.ctx))
