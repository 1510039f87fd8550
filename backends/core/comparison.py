"""What a comparison (an `eval` run) concludes from its answers and judgments.

Per judge and pair of models: wins / ties / losses, a Wilson interval (a tie counts half),
mean lengths and a length-controlled win rate. For score judges (checkers, reward model,
function) also each model's mean score with a 95% interval, and per pair the paired score
difference (B - A, per prompt) with a paired bootstrap interval and a verdict. Bradley-Terry
for three or more models; how often the judges agree. Pure functions over plain rows: the
worker writes winrate.json with them, headless mode prints `tally_table`. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.core.params import JudgeSpec
from backends.core.quality import SIGNALS, fell, summarize_quality
from backends.core.winrate import (
    Tally,
    bootstrap_mean_ci,
    bradley_terry_ci,
    length_controlled_win_rate,
    paired_difference,
    verdict,
)

if TYPE_CHECKING:
    from backends.core.config import RunConfig

CI_METHOD = (
    "win rate: Wilson score interval, 95%, a tie counts as half a win; scores: 95% bootstrap "
    "interval of the mean; B - A: paired bootstrap over prompts, 95%"
)


def judge_name(spec: JudgeSpec, i: int, specs: list[JudgeSpec]) -> str:
    base = spec.kind if spec.kind != "function" else (spec.path or "function").rsplit(":", 1)[-1]
    return base if sum(s.kind == spec.kind for s in specs) == 1 else f"{base}_{i}"


def outcome_from_scores(sa: float, sb: float, margin: float) -> float:
    """1 if A scores higher by more than `margin`, 0 if B does, else 0.5 (a tie)."""
    if abs(sa - sb) <= margin:
        return 0.5
    return 1.0 if sa > sb else 0.0


def short(model: str) -> str:
    """A readable model name: `smollm2-135m-instruct`, a run id for `runs/<id>/model`, else the folder."""
    if model.startswith("builtin:"):
        return model.split(":", 1)[1]
    p = Path(model)
    return p.parent.name if p.name == "model" else (p.name or model)


@dataclass
class Answers:
    """Per prompt and model: the mean length and, per score judge, the mean score over the
    prompt's samples (`eval.samples_per_prompt`)."""

    length: dict[tuple[int, str], float] = field(default_factory=dict)
    score: dict[tuple[str, int, str], float] = field(default_factory=dict)  # (judge, prompt, model)
    # quality signals (backends/core/quality.py): (signal, prompt, model) -> the samples' mean
    quality: dict[tuple[str, int, str], float] = field(default_factory=dict)
    openings: dict[tuple[int, str], list[str]] = field(default_factory=dict)  # each sample's first words

    def add_quality(self, pid: int, model: str, measured: list[dict[str, Any]]) -> None:
        """One prompt's samples of one model, as `QualityMeter.measure` gives them."""
        self.openings[(pid, model)] = [m["opening"] for m in measured]
        for name in measured[0]:
            if name != "opening":
                self.quality[(name, pid, model)] = sum(m[name] for m in measured) / len(measured)


def _pair_scores(judge: str, a: str, b: str, answers: Answers, prompts: list[int]) -> dict[str, Any]:
    sa = [answers.score[(judge, p, a)] for p in prompts]
    sb = [answers.score[(judge, p, b)] for p in prompts]
    diff, lo, hi = paired_difference(sa, sb)
    return {
        "mean_a": sum(sa) / len(sa),
        "mean_b": sum(sb) / len(sb),
        "diff": diff,
        "diff_ci95": [lo, hi],
        "verdict": verdict(lo, hi),
    }


def _pair(
    judge: str, a: str, b: str, judgments: list[dict[str, Any]], answers: Answers, scored: bool
) -> dict[str, Any]:
    js = [j for j in judgments if j["judge"] == judge and j["a"] == a and j["b"] == b]
    t = Tally(
        sum(j["outcome"] == 1.0 for j in js),
        sum(j["outcome"] == 0.5 for j in js),
        sum(j["outcome"] == 0.0 for j in js),
    )
    la = [answers.length[(j["prompt_id"], a)] for j in js]
    lb = [answers.length[(j["prompt_id"], b)] for j in js]
    out: dict[str, Any] = {
        "judge": judge,
        "a": a,
        "b": b,
        "wins": t.wins,
        "ties": t.ties,
        "losses": t.losses,
        "n": t.n,
        "win_rate": t.win_rate if t.n else None,
        "ci95": list(t.ci95()),
        "mean_len_a": sum(la) / len(la) if la else None,
        "mean_len_b": sum(lb) / len(lb) if lb else None,
        "lc_win_rate": length_controlled_win_rate([j["outcome"] for j in js], la, lb)
        if len(js) >= 4
        else None,
    }
    if scored and js:
        out.update(_pair_scores(judge, a, b, answers, [j["prompt_id"] for j in js]))
    return out


def _model_scores(judge: str, models: list[str], answers: Answers) -> dict[str, Any]:
    out = {}
    for m in models:
        values = [v for (j, _, mm), v in answers.score.items() if j == judge and mm == m]
        mean, lo, hi = bootstrap_mean_ci(values)
        out[m] = {"mean": mean if values else None, "ci95": [lo, hi], "n": len(values)}
    return out


def summarize(
    cfg: RunConfig, judgments: list[dict[str, Any]], answers: Answers, done: int, total: int, engine: str
) -> dict[str, Any]:
    models = cfg.eval.models
    names = [judge_name(s, i, cfg.eval.judges) for i, s in enumerate(cfg.eval.judges)]
    scored = {n for n, s in zip(names, cfg.eval.judges, strict=True) if s.kind != "llm"}
    pairs = [
        _pair(judge, a, b, judgments, answers, judge in scored)
        for judge in names
        for a, b in combinations(models, 2)
    ]
    ranking = {}
    for judge in names:
        games = [(j["a"], j["b"], j["outcome"]) for j in judgments if j["judge"] == judge]
        if games:
            ci = bradley_terry_ci(models, games, rounds=100)
            rows = ({"model": m, "score": s, "ci95": [lo, hi]} for m, (s, lo, hi) in ci.items())
            ranking[judge] = sorted(rows, key=lambda r: -r["score"])
    agreement = {}
    for x, y in combinations(names, 2):
        vx = {(j["prompt_id"], j["a"], j["b"]): j["outcome"] for j in judgments if j["judge"] == x}
        vy = {(j["prompt_id"], j["a"], j["b"]): j["outcome"] for j in judgments if j["judge"] == y}
        common = set(vx) & set(vy)
        if common:
            agreement[f"{x} vs {y}"] = sum(vx[k] == vy[k] for k in common) / len(common)
    e = cfg.eval
    quality, quality_pairs = summarize_quality(models, answers.quality, answers.openings)
    return {
        "models": models,
        "judges": [{"name": n, **s.model_dump()} for n, s in zip(names, e.judges, strict=True)],
        "prompt_set": {
            "dataset": cfg.data.dataset,
            "split": cfg.data.split,
            "n": total,
            "seed": cfg.data.seed,
        },
        "sampling": {
            "temperature": e.temperature,
            "max_new_tokens": e.max_new_tokens,
            "samples_per_prompt": e.samples_per_prompt,
            "seed": cfg.train.seed,
            "engine": engine,
        },
        "ci_method": CI_METHOD,
        "prompts_done": done,
        "scores": {judge: _model_scores(judge, models, answers) for judge in names if judge in scored},
        "pairs": pairs,
        "bradley_terry": ranking,
        "judge_agreement": agreement,
        "quality": quality,
        "quality_pairs": quality_pairs,
    }


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
    otherwise it says which one fell (backends/core/quality.py)."""
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
