"""The runs table and a run's details, read from run directories. No gradio import."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.core.runs.rundir import RunDir, list_runs, scan_runs
from backends.core.spec import registry

RUN_COLUMNS = ["run", "method", "state", "step", "elapsed", "ETA", "device"]
RUN_COLUMN_WIDTHS = ["29%", "12%", "13%", "11%", "11%", "11%", "13%"]


def fmt_seconds(s: float | None) -> str:
    if s is None or s < 0:
        return ""
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def eta_seconds(st: dict[str, Any], now: float) -> float | None:
    """Remaining time from the training rate so far (model loading excluded)."""
    step, total, began = st.get("step"), st.get("total_steps"), st.get("train_started_at")
    first = st.get("first_step") or 0
    if st.get("state") != "running" or not (step and total and began) or step <= first:
        return None
    rate = (now - began) / (step - first)
    return rate * max(total - step, 0)


def run_method(run: RunDir) -> str:
    return run.method()


def state_line(st: dict[str, Any]) -> str:
    """A run's state as a person reads it: `running (generating)` while a phase is set."""
    return st["state"] + (f" ({st['phase']})" if st["state"] == "running" and st.get("phase") else "")


def run_row(run: RunDir, now: float | None = None) -> list[Any]:
    now = time.time() if now is None else now
    st = run.read_status()
    started, ended = st.get("started_at"), st.get("ended_at")
    elapsed = ((ended or now) - started) if started else None
    step = f"{st.get('step') or 0} / {st.get('total_steps') or '?'}"
    state = state_line(st)
    return [
        run.run_id,
        run_method(run),
        state,
        step,
        fmt_seconds(elapsed),
        fmt_seconds(eta_seconds(st, now)),
        st.get("device", ""),
    ]


def runs_table(runs_dir: Path) -> list[list[Any]]:
    """One row per run, newest first; a broken run (status.json missing or corrupt) gets a
    row that says what is wrong, and the rest show as usual."""
    good, broken = scan_runs(runs_dir)
    rows = []
    for run in good:
        try:
            rows.append(run_row(run))
        except (OSError, ValueError, KeyError) as e:  # a half-written or hand-edited run dir
            rows.append([run.run_id, "?", f"unreadable: {e}", "", "", "", ""])
    rows += [[name, "?", f"broken: {why}", "", "", "", ""] for name, why in broken]
    return sorted(rows, key=lambda r: r[0], reverse=True)


def augmentation_lines(run: RunDir) -> list[str]:
    """An augmentation run's counts, from its summary.json (none for other runs)."""
    try:
        s = json.loads(run.summary_path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(s, dict) or "generated" not in s:
        return []
    why = ", ".join(f"{n} {k.removeprefix('malformed: ')}" for k, n in s.get("malformed_reasons", {}).items())
    return [
        f"**Augmentation:** {s['generated']} written · {s['malformed']} malformed"
        + (f" ({why})" if why else "")
        + f" · {s['duplicate']} near-duplicates · {s['kept']} kept · {s['pairs']} new pairs"
    ]


def run_summary(run: RunDir) -> str:
    """Markdown: state, error, device notes, model folder."""
    try:
        st = run.read_status()
        state = st["state"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"**{run.run_id}** — broken: status.json is unreadable ({type(e).__name__}: {str(e)[:120]})"
    lines = [
        f"**{run.run_id}** — `{state}`"
        + (f" ({st['phase']})" if st.get("phase") and state == "running" else "")
    ]
    if st.get("error"):
        lines.append(f"**Reason:** {st['error']}")
    if st.get("early_stop"):
        lines.append(f"**Stopped early:** {early_stop_text(st['early_stop'])}")
    if st.get("resumed_from"):
        lines.append(f"Resumed from `{st['resumed_from']}` (its curve up to the checkpoint is carried over).")
    rt = st.get("runtime") or {}
    if rt:
        lines.append(
            f"Device: {rt.get('device')} · bf16: {rt.get('bf16')} · attention: {rt.get('attn_implementation')}"
        )
        lines += [f"- {n}" for n in rt.get("notes", [])]
    if st.get("command"):
        lines.append(f"Command: `{st['command']}`")
    if run.model_dir.exists():
        lines.append(f"Model: `{run.model_dir}`")
    if run.data_outputs():
        lines.append("Data: " + ", ".join(f"`{p}`" for p in run.data_outputs()))
    lines += augmentation_lines(run)
    if run.report_html_path.exists():
        lines.append(f"Report: `{run.report_html_path}` (charts; opens offline)")
    if st.get("stages"):
        lines.append(
            "| stage | method | state | run |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {s['stage']} | {s['method']} | {s['state']}{' (reused)' if s.get('reused') else ''} | "
                f"{s.get('run_id') or ''} |"
                for s in st["stages"]
            )
        )
    return "\n\n".join(lines)


def resolve_run(runs_dir: Path, run_id: str | None) -> RunDir | None:
    """A run of this runs dir by id; ids are names, never paths (no `..` escapes)."""
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id.startswith("."):
        return None
    run = RunDir(runs_dir / run_id)  # resolved: a symlink pointing out of the runs dir is refused
    return run if run.exists() and run.path.parent == Path(runs_dir).resolve() else None


def early_stop_text(es: dict[str, Any]) -> str:
    """`status.json`'s `early_stop` in words: where, why, and which checkpoint is the model."""
    kept = f"; the model is the best checkpoint (step {es['best_step']})" if es.get("best_step") else ""
    return f"at step {es.get('step')}: {es.get('reason', '')}{kept}"


# --- which run is "the newest" ---------------------------------------------------------------
LIVE = ("running", "pending")
STATE_MARKS = {"running": "▶", "pending": "⏳", "succeeded": "✓", "failed": "✗", "stopped": "■"}


def is_training_method(method: str) -> bool:
    """Methods that train (sft, dpo, grpo, ppo, ...), not those that only generate or judge
    (sample, eval, sda, select: they ignore `train.*`) nor pipelines."""
    try:
        return registry.get(method).uses("train.learning_rate")
    except KeyError:
        return False


def pick_newest(items: list[tuple[str, str]], method_of: Callable[[str], str]) -> list[str]:
    """Run ids to show first, from (run id, state) newest first: the live training runs, else
    the newest training run, else the live runs, else the newest run. A label-candidates
    `sample` run is never "the newest" while a training run exists. `method_of` is asked only
    as far as needed (it may read a config file)."""
    live = [rid for rid, state in items if state.split(" ")[0] in LIVE]
    live_training = [rid for rid in live if is_training_method(method_of(rid))]
    if live_training:
        return live_training
    newest_training = next((rid for rid, _ in items if is_training_method(method_of(rid))), None)
    if newest_training:
        return [newest_training]
    return live or [rid for rid, _ in items[:1]]


def default_runs(runs_dir: Path) -> list[str]:
    """What the Monitor opens on, and what the tab title follows (see `pick_newest`)."""
    items = []
    for run in list_runs(runs_dir):
        try:
            items.append((run.run_id, run.read_status()["state"]))
        except (OSError, ValueError, KeyError):
            continue  # removed or rewritten meanwhile: the runs table names it
    return pick_newest(items, lambda rid: run_method(RunDir(Path(runs_dir) / rid)))


def run_name(run_id: str) -> str:
    """The name part of a run id (`20261124-152309-tiny-sft-5fb5` -> `tiny-sft`)."""
    parts = run_id.split("-", 2)
    if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit() and "-" in parts[2]:
        return parts[2].rsplit("-", 1)[0]
    return run_id


def title_text(runs_dir: Path) -> str:
    """The browser tab's title prefix: the newest run's state as a mark, its name and step,
    e.g. `▶ tiny-sft 12/50`."""
    ids = default_runs(runs_dir)
    if not ids:
        return ""
    try:
        st = RunDir(Path(runs_dir) / ids[0]).read_status()
    except (OSError, ValueError):
        return ""
    step = f"{st.get('step') or 0}/{st.get('total_steps') or '?'}"
    # a running run past its steps is saving or evaluating: say so, not a frozen 5/5
    phase = st.get("phase") if st.get("state") == "running" and st.get("phase") != "training" else None
    return f"{STATE_MARKS.get(st.get('state', ''), '?')} {run_name(ids[0])[:28]} {step}" + (
        f" {phase}" if phase else ""
    )
