"""What a comparison says, as people read it: the verdict sentences (a model is better only when
its score is higher at 95% and no quality signal is worse), the quality and IFEval tables, the
headless tally table and the pipeline's table against the base model. Pure functions over a
winrate.json (backends/core/reports/comparison.py makes it). No torch.
"""

from __future__ import annotations

from typing import Any

from backends.core.reports.comparison import short
from backends.core.reports.quality import SIGNALS, fell


def _f(x: float | None, digits: int = 3, sign: bool = False) -> str:
    return "-" if x is None else f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def verdict_line(p: dict[str, Any]) -> str:
    """`B scores higher than A: yes` with the names, for a pair with paired scores."""
    return f"{short(p['b'])} scores higher than {short(p['a'])}: {p['verdict']} at 95%"


def _quality_pair(winrate: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    return next((q for q in winrate.get("quality_pairs", []) if q["a"] == a and q["b"] == b), None)


def quality_verdict(winrate: dict[str, Any], p: dict[str, Any]) -> str:
    """The one sentence a comparison leads with, for a pair judged by a score judge: B is
    called better only when its score is higher at 95% and no quality signal is worse at 95%;
    otherwise it says which one fell (backends/core/reports/quality.py)."""
    a, b, lo, hi = short(p["a"]), short(p["b"]), *p["diff_ci95"]
    score = f"{p['judge']} {p['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    q = _quality_pair(winrate, p["a"], p["b"])
    worse = fell(q) if q else []
    if p["verdict"] == "yes" and not worse:
        checked = "no quality signal worse at 95%" if q else "quality signals not measured"
        return f"{b} is better than {a}: higher {score}, {checked}."
    if p["verdict"] == "yes":
        return f"{b} is not better than {a}: higher {score}, but " + "; ".join(worse) + "."
    if p["verdict"] == "no":
        tail = f"; also {'; '.join(worse)}" if worse else ""
        return f"{b} is worse than {a}: lower {score}{tail}."
    tail = f"; {'; '.join(worse)}" if worse else ""
    return f"{b} vs {a}: cannot tell at 95% ({score}){tail}."


def headline(winrate: dict[str, Any]) -> list[str]:
    """The verdict sentences, one per scored pair and judge: what a comparison says first."""
    return [quality_verdict(winrate, p) for p in winrate.get("pairs", []) if "diff" in p]


def quality_table(winrate: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: each model's quality signals (95% intervals) and, after the first
    model, the paired difference to it, marked `worse` where it is worse at 95%."""
    models, q = winrate["models"], winrate.get("quality", {})
    names = [s for s in SIGNALS if any(s.name in q.get(m, {}) for m in models)]
    rows = []
    for m in models:
        entry, row = q.get(m, {}), [short(m)]
        pair = _quality_pair(winrate, models[0], m) if m != models[0] else None
        for s in names:
            v = entry.get(s.name)
            cell = "-" if v is None else f"{v['mean']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
            if pair and s.name in pair:
                d = pair[s.name]
                cell += f" ({d['diff']:+.3f} [{d['diff_ci95'][0]:+.3f}, {d['diff_ci95'][1]:+.3f}]"
                cell += ", worse)" if d["worse"] else ")"
            row.append(cell)
        row.append(repr(entry.get("top_opening", "")))
        rows.append(row)
    return ["model", *[s.title for s in names], "most common opening"], rows


IFEVAL_HEADERS = [
    "model",
    "prompt strict",
    "prompt loose",
    "instruction strict",
    "instruction loose",
    "prompts",
]


def ifeval_table(winrate: dict[str, Any]) -> tuple[list[str], list[list[str]], str]:
    """IFEval's four scores per model (as IFEval reports them), and a note: how often the
    checkers and IFEval's verifiers agreed that an answer met everything, and the sentence model."""
    block = winrate.get("ifeval") or {}
    rows = [
        [
            short(m),
            *(
                f"{s[k]:.3f}"
                for k in ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
            ),
            str(s["n"]),
        ]
        for m, s in block.get("models", {}).items()
    ]
    notes = []
    if agree := block.get("agreement_with_checkers"):
        notes.append(
            f"checkers and IFEval agree on {100 * agree['share']:.0f}% of {agree['n']} answers judged both ways"
        )
    if block.get("sentence_model") == "untrained":
        notes.append("sentence counts by Punkt without NLTK's trained English model (not installed)")
    return IFEVAL_HEADERS, rows, "; ".join(notes)


def tally_table(winrate: dict[str, Any]) -> str:
    """The comparison as plain text (headless output): scores per model, paired differences
    with verdicts, then the win-rate tallies."""
    width = max([len(short(m)) for m in winrate["models"]] + [8])
    lines: list[str] = [f"verdict: {line}" for line in headline(winrate)]
    if winrate.get("quality"):
        headers, rows = quality_table(winrate)
        lines += [
            "quality signals per model (95% interval; in brackets after: the paired difference to "
            f"{short(winrate['models'][0])})",
            text_table(headers, rows),
        ]
    if winrate.get("ifeval"):
        headers, rows, note = ifeval_table(winrate)
        lines += [
            "IFEval's verifiers: share met per model" + (f" ({note})" if note else ""),
            text_table(headers, rows),
        ]
    for judge, by_model in winrate.get("scores", {}).items():
        lines.append(f"{judge}: mean score per model (95% interval)")
        for m, s in by_model.items():
            lines.append(
                f"  {short(m):<{width}} {_f(s['mean'])} [{_f(s['ci95'][0])}, {_f(s['ci95'][1])}]  n={s['n']}"
            )
    for p in winrate["pairs"]:
        if "diff" in p:
            lo, hi = p["diff_ci95"]
            lines.append(
                f"{p['judge']}: {short(p['b'])} - {short(p['a'])} = {_f(p['diff'], sign=True)} "
                f"[{_f(lo, sign=True)}, {_f(hi, sign=True)}]  ->  {verdict_line(p)}"
            )
    head = f"{'judge':<14} {'A':<{width}} {'B':<{width}} {'W':>4} {'T':>4} {'L':>4} {'win A':>6} {'95% CI':>15} {'LC':>6}"
    lines.append(head)
    for p in winrate["pairs"]:
        ci = f"[{p['ci95'][0]:.3f}, {p['ci95'][1]:.3f}]"
        lines.append(
            f"{p['judge']:<14} {short(p['a']):<{width}} {short(p['b']):<{width}} {p['wins']:>4} {p['ties']:>4} "
            f"{p['losses']:>4} {_f(p['win_rate']):>6} {ci:>15} {_f(p.get('lc_win_rate')):>6}"
        )
    ps = winrate["prompt_set"]
    lines.append(
        f"({winrate['ci_method']}; LC = length-controlled win rate; {winrate['prompts_done']} prompts of "
        f"{ps['dataset']} {ps['split']}, {winrate['sampling'].get('samples_per_prompt', 1)} sample(s) each)"
    )
    return "\n".join(lines)


VS_BASE_HEADERS = [
    "judge",
    "model",
    "win rate vs base [95% CI]",
    "score - base [95% CI]",
    "higher than base?",
    "published",
]


def vs_base_rows(
    wr: dict[str, Any], labels: dict[str, str] | None = None, reference: dict[str, float] | None = None
) -> list[list[str]]:
    """Every model against the first one (the base), per judge: its win rate (ties half), the
    paired score difference and the verdict, with a published number beside it when given
    (`reference` by label)."""
    labels, reference = labels or {}, reference or {}
    base = wr["models"][0]
    rows = []
    for p in wr["pairs"]:
        if p["a"] != base or p["win_rate"] is None:
            continue
        name = labels.get(p["b"], short(p["b"]))
        lo, hi = p["ci95"]
        diff = (
            f"{p['diff']:+.3f} [{p['diff_ci95'][0]:+.3f}, {p['diff_ci95'][1]:+.3f}]" if "diff" in p else "-"
        )
        published = f"{reference[name]:.3f}" if name in reference else "-"
        rows.append(
            [
                p["judge"],
                name,
                f"{1 - p['win_rate']:.3f} [{1 - hi:.3f}, {1 - lo:.3f}]",
                diff,
                p.get("verdict", "-"),
                published,
            ]
        )
    return rows


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
