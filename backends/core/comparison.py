"""What a comparison (an `eval` run) concludes from its judgments: per pair of models the
wins / ties / losses, a Wilson interval (a tie counts half), mean lengths and a
length-controlled win rate; Bradley-Terry for three or more models; how often the judges
agree. Pure functions over plain rows: the worker writes winrate.json with them, headless
mode prints `tally_table`. No torch.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

from backends.core.params import JudgeSpec
from backends.core.winrate import Tally, bradley_terry_ci, length_controlled_win_rate

if TYPE_CHECKING:
    from backends.core.config import RunConfig


def judge_name(spec: JudgeSpec, i: int, specs: list[JudgeSpec]) -> str:
    base = spec.kind if spec.kind != "function" else (spec.path or "function").rsplit(":", 1)[-1]
    return base if sum(s.kind == spec.kind for s in specs) == 1 else f"{base}_{i}"


def outcome_from_scores(sa: float, sb: float, margin: float) -> float:
    """1 if A scores higher by more than `margin`, 0 if B does, else 0.5 (a tie)."""
    if abs(sa - sb) <= margin:
        return 0.5
    return 1.0 if sa > sb else 0.0


def summarize(
    cfg: RunConfig,
    judgments: list[dict[str, Any]],
    lengths: dict[tuple[int, str], int],
    done: int,
    total: int,
    engine: str,
) -> dict[str, Any]:
    models = cfg.eval.models
    names = [judge_name(s, i, cfg.eval.judges) for i, s in enumerate(cfg.eval.judges)]
    pairs = []
    for judge in names:
        for a, b in combinations(models, 2):
            js = [j for j in judgments if j["judge"] == judge and j["a"] == a and j["b"] == b]
            t = Tally(
                sum(j["outcome"] == 1.0 for j in js),
                sum(j["outcome"] == 0.5 for j in js),
                sum(j["outcome"] == 0.0 for j in js),
            )
            la = [lengths[(j["prompt_id"], a)] for j in js]
            lb = [lengths[(j["prompt_id"], b)] for j in js]
            pairs.append(
                {
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
            )
    ranking = {}
    if len(models) >= 3:
        for judge in names:
            games = [(j["a"], j["b"], j["outcome"]) for j in judgments if j["judge"] == judge]
            ci = bradley_terry_ci(models, games, rounds=100)
            ranking[judge] = sorted(
                ({"model": m, "score": s, "ci95": [lo, hi]} for m, (s, lo, hi) in ci.items()),
                key=lambda r: -r["score"],
            )
    agreement = {}
    for x, y in combinations(names, 2):
        vx = {(j["prompt_id"], j["a"], j["b"]): j["outcome"] for j in judgments if j["judge"] == x}
        vy = {(j["prompt_id"], j["a"], j["b"]): j["outcome"] for j in judgments if j["judge"] == y}
        common = set(vx) & set(vy)
        if common:
            agreement[f"{x} vs {y}"] = sum(vx[k] == vy[k] for k in common) / len(common)
    return {
        "models": models,
        "judges": [{"name": n, **s.model_dump()} for n, s in zip(names, cfg.eval.judges, strict=True)],
        "prompt_set": {
            "dataset": cfg.data.dataset,
            "split": cfg.data.split,
            "n": total,
            "seed": cfg.data.seed,
        },
        "sampling": {
            "temperature": cfg.eval.temperature,
            "max_new_tokens": cfg.eval.max_new_tokens,
            "seed": cfg.train.seed,
            "engine": engine,
        },
        "ci_method": "Wilson score interval, 95%; a tie counts as half a win",
        "prompts_done": done,
        "pairs": pairs,
        "bradley_terry": ranking,
        "judge_agreement": agreement,
    }


def tally_table(winrate: dict[str, Any]) -> str:
    """The tallies as a plain-text table (headless output)."""
    lines = [
        f"{'judge':<14} {'A':<28} {'B':<28} {'W':>4} {'T':>4} {'L':>4} {'win rate':>9} {'95% CI':>15} {'LC':>6}"
    ]
    for p in winrate["pairs"]:
        wr = f"{p['win_rate']:.3f}" if p["win_rate"] is not None else "-"
        lc = f"{p['lc_win_rate']:.3f}" if p.get("lc_win_rate") is not None else "-"
        ci = f"[{p['ci95'][0]:.3f}, {p['ci95'][1]:.3f}]"
        lines.append(
            f"{p['judge']:<14} {p['a'][-28:]:<28} {p['b'][-28:]:<28} {p['wins']:>4} {p['ties']:>4} "
            f"{p['losses']:>4} {wr:>9} {ci:>15} {lc:>6}"
        )
    lines.append(
        f"({winrate['ci_method']}; LC = length-controlled win rate; {winrate['prompts_done']} prompts of "
        f"{winrate['prompt_set']['dataset']} {winrate['prompt_set']['split']})"
    )
    return "\n".join(lines)
