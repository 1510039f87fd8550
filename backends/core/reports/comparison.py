"""What a comparison (an `eval` run) concludes from its answers and judgments.

Per judge and pair of models: wins / ties / losses, a Wilson interval (a tie counts half),
mean lengths and a length-controlled win rate. For score judges (checkers, reward model,
function) also each model's mean score with a 95% interval, and per pair the paired score
difference (B - A, per prompt) with a paired bootstrap interval and a verdict. Bradley-Terry
for three or more models; how often the judges agree. Pure functions over plain rows: the
worker writes winrate.json with them; verdicts.py turns it into sentences and tables. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.core.reports.quality import summarize_quality
from backends.core.reports.winrate import (
    Tally,
    bootstrap_mean_ci,
    bradley_terry_ci,
    length_controlled_win_rate,
    paired_difference,
    verdict,
)
from backends.core.spec.params import JudgeSpec

if TYPE_CHECKING:
    from backends.core.spec.config import RunConfig

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
    # quality signals (backends/core/reports/quality.py): (signal, prompt, model) -> the samples' mean
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
