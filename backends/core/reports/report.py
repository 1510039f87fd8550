"""report.md and report.html for a comparison, an augmentation or a pipeline: what it concluded, in tables
(each stage's key numbers; the comparison's scores, paired differences with intervals and
verdicts, tallies), and in the HTML the plotly charts as well, embedded so the file opens
offline. Written by the eval worker and the pipeline runner when they end; torch-free.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from typing import Any

from backends.core.data.jsonl import read_jsonl
from backends.core.reports.comparison import short
from backends.core.reports.verdicts import VS_BASE_HEADERS, vs_base_rows
from backends.core.runs.rundir import RunDir
from backends.core.spec import registry


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)  # plotly figures (HTML only)


def num(x: Any, digits: int = 3, sign: bool = False) -> str:
    if x is None or isinstance(x, str):
        return "-" if x is None else x
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def interval(ci: list[float], sign: bool = False) -> str:
    return f"[{num(ci[0], sign=sign)}, {num(ci[1], sign=sign)}]"


def _curves(run: RunDir, method: str) -> tuple[list[list[Any]], Any]:
    """Key numbers (first and last value of the method's charts) and a figure of those curves."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = (
        [r for r in read_jsonl(run.metrics_path, complete_only=True) if r.get("split") == "train"]
        if run.metrics_path.exists()
        else []
    )
    charts = [c for c in registry.get(method).charts if not any(ch in c for ch in "*?[")][:4]
    table, present = [], []
    for c in charts:
        pts = [(r["step"], r[c]) for r in rows if isinstance(r.get(c), int | float)]
        if pts:
            present.append((c, pts))
            tail = [v for _, v in pts[-5:]]
            table.append([c, num(pts[0][1], 4), num(sum(tail) / len(tail), 4), len(pts)])
    if not present:
        return table, None
    fig = make_subplots(rows=1, cols=len(present), subplot_titles=[c for c, _ in present])
    for i, (_, pts) in enumerate(present, 1):
        fig.add_trace(
            go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", showlegend=False),
            row=1,
            col=i,
        )
    fig.update_layout(height=300, template="plotly_white", margin=dict(l=40, r=20, t=50, b=40))
    return table, fig


def evaluation_section(run: RunDir, title: str) -> Section | None:
    if not run.evaluation_path.exists():
        return None
    ev = json.loads(run.evaluation_path.read_text())
    sec = Section(title)
    sec.text.append(
        f"Held-out pair accuracy {num(ev['accuracy'])} {interval(ev['ci95'])} on {ev['n']} pairs of `{ev['dataset']}` "
        f"({ev['split']}): the share of pairs where the chosen answer scores higher."
    )
    cats = ev.get("by_category", {})
    if cats:
        sec.tables.append(
            (
                ["category", "accuracy", "95% CI", "pairs"],
                [[c, num(v["accuracy"]), interval(v["ci95"]), v["n"]] for c, v in cats.items()],
            )
        )
    return sec


def augmentation_section(run: RunDir, title: str) -> Section | None:
    """An `sda` run's counts (what happened to every written prompt) and the chart of each
    candidate's similarity to its nearest seed or kept prompt, with the threshold."""
    if not run.summary_path.exists():
        return None
    s = json.loads(run.summary_path.read_text())
    if "generated" not in s:
        return None
    import plotly.graph_objects as go

    sec = Section(title)
    sec.text.append(
        f"{s['generated']} prompts written from {s['seeds']} seed prompts; {s['kept']} kept, "
        f"{s['pairs']} new pairs judged by {s.get('judge', '?')}; the output has {s['output_rows']} rows "
        f"({s['original_rows']} original). Every written prompt and its fate: data/written.jsonl."
    )
    rows = [["written", s["generated"]], ["malformed", s["malformed"]]]
    rows += [[f"- {why.removeprefix('malformed: ')}", n] for why, n in s.get("malformed_reasons", {}).items()]
    rows += [
        [f"near-duplicate (similarity > {s['threshold']})", s["duplicate"]],
        ["kept", s["kept"]],
        ["- new pairs", s["pairs"]],
        ["- no contrast (every answer scored the same)", s["no_contrast"]],
    ]
    sec.tables.append((["prompts", "count"], rows))
    sims = s.get("similarity") or []
    if sims:
        fig = go.Figure(go.Histogram(x=sims, nbinsx=40, name="candidates", marker_color="#6b7fd7"))
        fig.add_vline(
            x=s["threshold"],
            line_dash="dash",
            line_color="#c0392b",
            annotation_text=f"threshold {s['threshold']}",
        )
        fig.update_layout(
            height=300,
            template="plotly_white",
            margin=dict(l=40, r=20, t=50, b=40),
            title="Similarity to the nearest seed or kept prompt (right of the line: dropped)",
            xaxis_title="cosine similarity",
            yaxis_title="prompts",
        )
        sec.figures.append(fig)
    return sec


def write_augmentation_report(run: RunDir) -> None:
    sec = augmentation_section(run, "Synthetic augmentation")
    if sec is not None:
        write_report(run, f"Augmentation {run.run_id}", [sec])


def run_sections(run: RunDir, label: str) -> list[Section]:
    st = run.read_status()
    method = run.method()
    sec = Section(f"{label}: {method}, {st['state']}")
    took = (st.get("ended_at") or time.time()) - (st.get("started_at") or time.time())
    sec.text.append(
        f"Run `{run.run_id}`; {took / 60:.1f} minutes; step {st.get('step') or 0} of {st.get('total_steps') or '?'}."
    )
    if st.get("error"):
        sec.text.append(f"Reason: {st['error']}")
    spec = registry.find(method)
    if spec is None:
        return [sec]
    if spec.report_curves:
        table, fig = _curves(run, method)
        if table:
            sec.tables.append((["metric", "first", "last (mean of 5)", "points"], table))
        if fig is not None:
            sec.figures.append(fig)
    ev = evaluation_section(run, f"{label}: held-out evaluation") if spec.report_curves else None
    # what the method itself adds (a comparison's verdict and tables, what an augmentation wrote)
    return [sec] + ([ev] if ev else []) + (spec.report(run, label) if spec.report else [])


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for t in sec.text:
            lines += [t, ""]
        for headers, rows in sec.tables:
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def render_html(title: str, sections: list[Section]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "th{background:#f3f3f8}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    first_figure = True
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p>{html.escape(t)}</p>" for t in sec.text]
        for headers, rows in sec.tables:
            parts.append(
                "<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>"
            )
            parts += [
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
            ]
            parts.append("</table>")
        for fig in sec.figures:
            # plotly.js is embedded once (first figure), so the file opens without a network
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first_figure))
            first_figure = False
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run: RunDir, title: str, sections: list[Section]) -> None:
    from backends.core.runs.rundir import atomic_write_text

    atomic_write_text(run.report_md_path, render_markdown(title, sections))
    atomic_write_text(run.report_html_path, render_html(title, sections))


def write_pipeline_report(pdir: RunDir) -> None:
    st = pdir.read_status()
    head = Section("Pipeline")
    took = (st.get("ended_at") or time.time()) - (st.get("started_at") or time.time())
    head.text.append(
        f"`{pdir.run_id}`: {st['state']} in {took / 60:.1f} minutes."
        + (f" Reason: {st['error']}" if st.get("error") else "")
    )
    head.tables.append(
        (
            ["stage", "method", "state", "run"],
            [
                [
                    s["stage"],
                    s["method"],
                    s["state"] + (" (reused)" if s.get("reused") else ""),
                    s.get("run_id") or "",
                ]
                for s in st.get("stages", [])
            ],
        )
    )
    sections = [head]
    labels = stage_labels(pdir)
    reference = pipeline_reference(pdir)
    for s in st.get("stages", []):
        run = RunDir(pdir.path.parent / s["run_id"]) if s.get("run_id") else None
        if run is None or not run.exists():
            continue
        sections += run_sections(run, f"Stage {s['stage']}")
        if run.winrate_path.exists():
            wr = json.loads(run.winrate_path.read_text())
            sec = Section(
                f"Stage {s['stage']}: each model against {labels.get(wr['models'][0], short(wr['models'][0]))}"
            )
            sec.tables.append((VS_BASE_HEADERS, vs_base_rows(wr, labels, reference.get("win_rate_vs_base"))))
            if reference.get("source"):
                sec.text.append(f"Published numbers: {reference['source']}")
            sections.append(sec)
    write_report(pdir, f"Pipeline {pdir.run_id}", sections)


def stage_labels(pdir: RunDir) -> dict[str, str]:
    """A stage's model folder -> the stage's name, to label models in tables."""
    out = {}
    for s in pdir.read_status().get("stages", []):
        if s.get("run_id"):
            out[str(RunDir(pdir.path.parent / s["run_id"]).model_dir)] = s["stage"]
    return out


def pipeline_reference(pdir: RunDir) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(pdir.config_path.read_text()) or {}
    return raw.get("reference") or {}
