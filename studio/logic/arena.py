"""Arena tables from an eval run's files (winrate.json, samples.jsonl, judgments.jsonl). No gradio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.core.data.jsonl import read_jsonl
from backends.core.reports.comparison import short
from backends.core.runs.rundir import RunDir


def _fmt(x: float | None, digits: int = 3, sign: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _ci(ci: list[float], sign: bool = False) -> str:
    return f"[{_fmt(ci[0], sign=sign)}, {_fmt(ci[1], sign=sign)}]"


SCORE_HEADERS = ["judge", "model", "mean score", "95% CI"]
PAIRED_HEADERS = ["judge", "B vs A", "B - A", "95% CI (paired)", "B scores higher?"]
TALLY_HEADERS = ["judge", "A vs B", "W / T / L", "win rate A [95% CI]", "words A / B", "length-ctrl."]


def score_rows(wr: dict[str, Any]) -> list[list[Any]]:
    """Each model's mean score per score judge, with its interval."""
    return [
        [judge, short(m), _fmt(s["mean"]), _ci(s["ci95"])]
        for judge, by_model in wr.get("scores", {}).items()
        for m, s in by_model.items()
    ]


def paired_rows(wr: dict[str, Any]) -> list[list[Any]]:
    """Per pair and score judge: B's mean score minus A's, prompt by prompt, and the verdict."""
    return [
        [
            p["judge"],
            f"{short(p['b'])} vs {short(p['a'])}",
            _fmt(p["diff"], sign=True),
            _ci(p["diff_ci95"], True),
            p["verdict"],
        ]
        for p in wr["pairs"]
        if "diff" in p
    ]


def tally_rows(wr: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            p["judge"],
            f"{short(p['a'])} vs {short(p['b'])}",
            f"{p['wins']} / {p['ties']} / {p['losses']}",
            f"{_fmt(p['win_rate'])} {_ci(p['ci95'])}",
            f"{_fmt(p['mean_len_a'], 1)} / {_fmt(p['mean_len_b'], 1)}",
            _fmt(p.get("lc_win_rate")),
        ]
        for p in wr["pairs"]
    ]


def ranking_rows(wr: dict[str, Any]) -> list[list[Any]]:
    return [
        [judge, short(r["model"]), f"{r['score']:+.2f}", f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]"]
        for judge, rows in wr.get("bradley_terry", {}).items()
        for r in rows
    ]


def _read(path: Path) -> list[dict[str, Any]]:
    """Rows of a file the worker may still be writing (its unfinished last line waits)."""
    return read_jsonl(path, complete_only=True) if path.exists() else []


VERDICT = {1.0: "A", 0.5: "tie", 0.0: "B"}


def per_prompt_rows(run: RunDir) -> dict[str, Any]:
    """One row per prompt: the prompt, each model's answer and scores, each judge's verdict."""
    samples = [s for s in _read(run.samples_path) if s.get("sample", 0) == 0]
    judgments = _read(run.judgments_path)
    models = list(dict.fromkeys(s["model"] for s in samples))
    pairs = list(dict.fromkeys((j["a"], j["b"], j["judge"]) for j in judgments))
    headers = (
        ["#", "prompt"]
        + [f"{short(m)}" for m in models]
        + [f"{judge}: {short(a)} (A) vs {short(b)} (B)" for a, b, judge in pairs]
    )
    by_prompt: dict[int, dict[str, Any]] = {}
    for s in samples:
        row = by_prompt.setdefault(s["prompt_id"], {"prompt": s["prompt"], "answers": {}, "verdicts": {}})
        scores = ", ".join(f"{k} {v:.2f}" for k, v in s.get("scores", {}).items())
        row["answers"][s["model"]] = (
            f"{s['response'][:300]}\n[{s['length']} words{'; ' + scores if scores else ''}]"
        )
    for j in judgments:
        by_prompt.setdefault(j["prompt_id"], {"prompt": "", "answers": {}, "verdicts": {}})["verdicts"][
            (j["a"], j["b"], j["judge"])
        ] = VERDICT.get(j["outcome"], str(j["outcome"]))
    data = [
        [pid, r["prompt"][:300]]
        + [r["answers"].get(m, "") for m in models]
        + [r["verdicts"].get(p, "") for p in pairs]
        for pid, r in sorted(by_prompt.items())
    ]
    return {"headers": headers, "data": data, "n_models": len(models)}


def disagreements(table: dict[str, Any]) -> dict[str, Any]:
    """Rows where the judges' verdicts on the same pair of models differ."""
    start = 2 + table.get("n_models", 0)
    verdict_heads = table["headers"][start:]
    groups: dict[str, list[int]] = {}
    for k, h in enumerate(verdict_heads):
        groups.setdefault(h.split(": ", 1)[1], []).append(start + k)
    keep = [
        row
        for row in table["data"]
        if any(len({row[c] for c in cols if row[c]}) > 1 for cols in groups.values())
    ]
    return {**table, "data": keep}


def people_rows(store: Any, session_name: str, models: list[str]) -> list[list[Any]]:
    """Tallies from the Label tab's votes on a comparison handed to people. A vote's shown pair
    gives the two models; tie and both-bad votes count as ties (half a win each)."""
    from itertools import combinations

    from backends.core.labels.store import StoreError
    from backends.core.reports.winrate import Tally

    try:
        sid = store.session_id(session_name)
    except StoreError:
        return []
    items = {it.id: it for it in store.items(sid)}
    tallies = {pair: Tally() for pair in combinations(models, 2)}
    for v in store.votes(sid):
        names = items[v.item_id].meta.get("models", [])
        if len(names) <= max(v.left_index, v.right_index):
            continue
        shown = (names[v.left_index], names[v.right_index])
        pair = next((p for p in tallies if set(p) == set(shown)), None)
        if pair is None:
            continue
        t = tallies[pair]
        if v.preferred is None:
            t.ties += 1
        elif names[v.preferred] == pair[0]:
            t.wins += 1
        else:
            t.losses += 1
    return [
        [
            "people",
            f"{short(a)} vs {short(b)}",
            f"{t.wins} / {t.ties} / {t.losses}",
            f"{_fmt(t.win_rate)} {_ci(list(t.ci95()))}",
            "-",
            "-",
        ]
        for (a, b), t in tallies.items()
        if t.n
    ]


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def verdict_markdown(wr: dict[str, Any]) -> str:
    """What the Arena says first: the verdict sentences (a model is better only when its score
    is higher at 95% and no quality signal fell), then the quality signals and IFEval's scores."""
    from backends.core.reports.verdicts import headline, ifeval_table, quality_table

    parts = ["\n".join(f"- **{line}**" for line in headline(wr))]
    if wr.get("quality"):
        parts += [
            "**Answer quality** (95% interval; in brackets: the paired difference to the first model)",
            _markdown_table(*quality_table(wr)),
        ]
    if wr.get("ifeval"):
        headers, rows, note = ifeval_table(wr)
        parts += [f"**IFEval's verifiers**{f' ({note})' if note else ''}", _markdown_table(headers, rows)]
    return "\n\n".join(p for p in parts if p)


def typed_rows(lines: list[str], checkers: bool) -> tuple[list[dict[str, Any]], str]:
    """Prompt rows for typed prompts, and what stops the chosen judges (empty: nothing). With
    the checkers ticked, each prompt's constraints are read from its text (the embedded tasks'
    sentences, e.g. "Use exactly 3 sentences."), so the checkers judge what they can read; a
    prompt with none they can read is named, and the run does not start."""
    from backends.core.tasks.taskparse import constraints_json, parse_constraints

    rows: list[dict[str, Any]] = [{"prompt": [{"role": "user", "content": x}]} for x in lines]
    if not checkers:
        return rows, ""
    unread = []
    for i, (row, line) in enumerate(zip(rows, lines, strict=True), 1):
        found = parse_constraints(line)
        if not found:
            unread.append(f"{i} ({line[:40]!r})")
        row["constraints"] = constraints_json(found)
    if unread:
        return rows, (
            "the checkers judge constraints written as the embedded tasks write them (for example "
            '"Use exactly 3 sentences." or "Do not use any commas."); typed prompt '
            + ", ".join(unread[:5])
            + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
            + " has none. Add one, or untick the checkers and pick a reward model or the LLM judge"
        )
    return rows, ""
