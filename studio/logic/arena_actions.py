"""What the Arena tab's buttons do, as plain functions (no gradio import): start a comparison
from the form, read a comparison's run folder into the tables the tab shows, and hand its
answers to a labeling session. studio/tabs/arena.py lays the tab out and wires these."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from backends.core.access.paths import PathRefused
from backends.core.data.jsonl import read_jsonl
from backends.core.runs.rundir import list_runs
from backends.core.spec.config import EMBEDDED_MODEL, ConfigError
from studio.context import StudioContext
from studio.logic.arena import (
    disagreements,
    paired_rows,
    people_rows,
    per_prompt_rows,
    ranking_rows,
    score_rows,
    tally_rows,
    typed_rows,
    verdict_markdown,
)
from studio.logic.forms import build_config
from studio.logic.runs import resolve_run, run_method, state_line


def model_choices(ctx: StudioContext) -> list[str]:
    """The embedded model and every finished run's model folder."""
    out = [EMBEDDED_MODEL]
    for run in list_runs(ctx.runs_dir):
        if run.model_dir.exists() and run.read_status()["state"] == "succeeded":
            out.append(str(run.model_dir))
    return out


def eval_runs(ctx: StudioContext) -> list[str]:
    return [r.run_id for r in list_runs(ctx.runs_dir) if run_method(r) == "eval"]


@dataclass(frozen=True)
class ArenaForm:
    models: list[str]
    prompt_set: str
    typed: str
    prompts: int
    max_new_tokens: int
    temperature: float
    judges: list[str]
    reward_model: str
    llm_judge: str
    samples_per_prompt: int
    warm: bool = True  # keep the models loaded for the next comparison (eval.warm)


def judge_specs(form: ArenaForm) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j in form.judges:
        if j == "checkers":
            out.append({"kind": "checkers"})
        elif j == "reward_model":
            out.append({"kind": "reward_model", "path": form.reward_model.strip()})
        else:
            out.append({"kind": "llm", "path": form.llm_judge.strip() or EMBEDDED_MODEL})
    return out


def start_comparison(ctx: StudioContext, form: ArenaForm) -> tuple[str, str | None]:
    """(the message, the new run's id, or None when it was not started and the message says why)."""
    dataset, split = (form.prompt_set or "builtin:tasks").strip(), "heldout"
    if form.typed and form.typed.strip():
        lines = [x.strip() for x in form.typed.splitlines() if x.strip()]
        rows, problem = typed_rows(lines, "checkers" in form.judges)
        if problem:  # said before the run, never a judge swapped behind the person's back
            return f"**Not started:** {problem}", None
        out = ctx.data_dir / "arena" / f"prompts-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        dataset, split = str(out), "train"
    elif dataset != "builtin:tasks":
        try:
            dataset, split = str(ctx.paths.resolve(dataset, "prompt file")), "train"
        except PathRefused as e:
            return f"**Not started:** {e}", None
    values = {
        "name": "arena",
        "method": "eval",
        "model.name_or_path": (form.models or [EMBEDDED_MODEL])[0],
        "data.dataset": dataset,
        "data.split": split,
        "data.max_samples": form.prompts,
        "eval.models": form.models or [],
        "eval.judges": judge_specs(form),
        "eval.max_new_tokens": form.max_new_tokens,
        "eval.temperature": form.temperature,
        "eval.samples_per_prompt": form.samples_per_prompt,
        "eval.warm": form.warm,
    }
    try:
        cfg, _ = build_config({}, values, "Arena form", ctx.policy)
    except ConfigError as e:
        return "**Not started:**\n" + "\n".join(f"- {p}" for p in e.problems), None
    run = ctx.launcher.create_run(cfg)
    ctx.tick()
    return f"Comparison `{run.run_id}` started; tallies update below as judgments arrive.", run.run_id


@dataclass
class ComparisonView:
    """Everything the tab shows of one comparison (empty tables until it has judgments)."""

    status: str
    report: str | None = None  # report.html, once written
    verdicts: str = ""
    scores: list[list[Any]] = field(default_factory=list)
    paired: list[list[Any]] = field(default_factory=list)
    tallies: list[list[Any]] = field(default_factory=list)
    ranking: list[list[Any]] = field(default_factory=list)
    agreement: str = ""
    per_prompt: dict[str, Any] = field(default_factory=lambda: {"headers": ["#"], "data": []})
    widths: list[str] | None = None  # the per-prompt table's column widths


def comparison_view(ctx: StudioContext, run_id: str | None, only_disagreements: bool) -> ComparisonView:
    run = resolve_run(ctx.runs_dir, run_id)  # an id is a name, never a path (no `..`)
    if run is None or not run.exists():
        return ComparisonView("Pick a comparison.")
    st = run.read_status()
    state = state_line(st)
    if not run.winrate_path.exists():
        reason = f"\n\n**Reason:** {st['error']}" if st.get("error") else ""
        return ComparisonView(f"`{run.run_id}`: {state}; no judgments yet{reason}")
    wr = json.loads(run.winrate_path.read_text())
    engine = wr["sampling"]["engine"]
    head = (
        f"`{run.run_id}`: **{state}** · {wr['prompts_done']} of {wr['prompt_set']['n']} prompts, "
        f"{wr['sampling'].get('samples_per_prompt', 1)} answer(s) each · generation: {engine}"
        + (" (vLLM not available here)" if engine == "transformers" else "")
        + f"\n\n_{wr['ci_method']}_"
    )
    if st.get("error"):
        head += f"\n\n**Reason:** {st['error']}"
    agree = "; ".join(f"{k}: {100 * v:.0f}% agree" for k, v in wr["judge_agreement"].items())
    table = per_prompt_rows(run)
    if only_disagreements:
        table = disagreements(table)
    k = len(table["headers"])
    people = people_rows(ctx.store, f"arena-{run.run_id}", wr["models"])
    return ComparisonView(
        status=head,
        report=str(run.report_html_path) if run.report_html_path.exists() else None,
        verdicts=verdict_markdown(wr),
        scores=score_rows(wr),
        paired=paired_rows(wr),
        tallies=tally_rows(wr) + people,
        ranking=ranking_rows(wr),
        agreement=f"Judges: {agree}" if agree else "",
        per_prompt={"headers": table["headers"], "data": table["data"]},
        widths=["4%", "26%"] + [f"{70 / max(k - 2, 1):.0f}%"] * (k - 2),
    )


def change_stamp(ctx: StudioContext, run_id: str | None, only_disagreements: bool) -> tuple[Any, ...]:
    """What the view depends on: a new stamp means redraw (status, tallies, people's labels)."""
    run = resolve_run(ctx.runs_dir, run_id)
    stamp: tuple[Any, ...] = (run_id, only_disagreements)
    if run is not None and run.exists():
        files = [run.status_path, run.winrate_path, *ctx.store.path.parent.glob("labels.sqlite*")]
        stamp += tuple(f.stat().st_mtime_ns for f in files if f.exists())
    return stamp


def label_by_people(ctx: StudioContext, run_id: str | None) -> str:
    """A labeling session of the comparison's first answers, one item per prompt."""
    run = resolve_run(ctx.runs_dir, run_id)
    if run is None or not run.samples_path.exists():
        return "Pick a comparison with answers first."
    rows = [r for r in read_jsonl(run.samples_path, complete_only=True) if r.get("sample", 0) == 0]
    items: dict[int, dict[str, Any]] = {}
    for r in rows:
        it = items.setdefault(
            r["prompt_id"], {"prompt": r["prompt"], "responses": [], "meta": {"models": []}}
        )
        it["responses"].append(r["response"])
        it["meta"]["models"].append(r["model"])
    name = f"arena-{run.run_id}"
    try:
        ctx.store.create_session(name, list(items.values()), source=str(run.samples_path))
    except ValueError as e:
        return f"**Not created:** {e}"
    return f"Labeling session `{name}` created: open the Label tab and pick it."
