"""The `eval` method (the Arena): answers from two or more models on a prompt set, judged
by one or more judges, tallied per pair of models.

Writes, batch after batch so the studio shows live tallies:
  samples.jsonl    every answer: prompt_id, prompt, model, response, length, scores per score judge
  judgments.jsonl  every verdict: prompt_id, a, b, judge, outcome for a (1 / 0.5 / 0)
  winrate.json     per judge and pair: wins, ties, losses, win_rate, ci95 (Wilson; ties = half),
                   mean lengths, length-controlled win rate; Bradley-Terry for 3+ models;
                   how often the judges agree; the judges, prompt set and sampling settings
"""

from __future__ import annotations

import json
import time
from itertools import combinations
from typing import Any

from backends.config import ModelConfig, RunConfig
from backends.data import load_for_method
from backends.generation import Generator
from backends.judges import build_judge, judge_name, outcome_from_scores
from backends.rewards import text_of
from backends.rundir import RunDir, RunState, atomic_write_text
from backends.runtime import Runtime
from backends.winrate import Tally, bradley_terry_ci, length_controlled_win_rate


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


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    e = cfg.eval
    ds, _ = load_for_method("eval", cfg.data, None)
    rows = list(ds)
    gens = {
        m: Generator(
            ModelConfig(name_or_path=m, attn_implementation=cfg.model.attn_implementation),
            rt.device,
            rt.attn_implementation,
        )
        for m in e.models
    }
    judges = [
        (judge_name(s, i, e.judges), build_judge(s, rt.device, rt.attn_implementation))
        for i, s in enumerate(e.judges)
    ]
    total = len(rows)
    n_batches = (total + e.batch_size - 1) // e.batch_size
    run.update_status(
        phase="training", total_steps=n_batches, step=0, train_started_at=time.time(), first_step=0
    )
    judgments: list[dict[str, Any]] = []
    lengths: dict[tuple[int, str], int] = {}
    engine = next(iter(gens.values())).engine
    with open(run.samples_path, "a") as samples, open(run.path / "judgments.jsonl", "a") as jfile:
        for step, start in enumerate(range(0, total, e.batch_size), 1):
            chunk = rows[start : start + e.batch_size]
            prompts = [r["prompt"] for r in chunk]
            extra = {k: [r[k] for r in chunk] for k in chunk[0] if k != "prompt"}
            answers = {
                m: [
                    o[0]
                    for o in g.generate(
                        prompts,
                        1,
                        e.max_new_tokens,
                        e.temperature or 1e-6,
                        e.batch_size,
                        cfg.train.seed + step,
                    )
                ]
                for m, g in gens.items()
            }
            scores: dict[str, dict[str, list[float]]] = {}
            for name, judge in judges:
                if judge.kind == "score":
                    scores[name] = {m: judge.score(prompts, answers[m], extra) for m in e.models}
            for i, row in enumerate(chunk):
                pid = start + i
                for m in e.models:
                    lengths[(pid, m)] = len(answers[m][i].split())
                    samples.write(
                        json.dumps(
                            {
                                "prompt_id": pid,
                                "prompt": text_of(row["prompt"]),
                                "model": m,
                                "response": answers[m][i],
                                "length": lengths[(pid, m)],
                                "scores": {n: s[m][i] for n, s in scores.items()},
                            }
                        )
                        + "\n"
                    )
                for a, b in combinations(e.models, 2):
                    for name, judge in judges:
                        if judge.kind == "score":
                            out = outcome_from_scores(scores[name][a][i], scores[name][b][i], judge.margin)
                            extra_info: dict[str, Any] = {}
                        else:
                            out, p = judge.compare(row["prompt"], answers[a][i], answers[b][i])
                            extra_info = {"p_a": p}
                        j = {"prompt_id": pid, "a": a, "b": b, "judge": name, "outcome": out, **extra_info}
                        judgments.append(j)
                        jfile.write(json.dumps(j) + "\n")
            samples.flush()
            jfile.flush()
            summary = summarize(cfg, judgments, lengths, min(total, start + len(chunk)), total, engine)
            atomic_write_text(run.path / "winrate.json", json.dumps(summary, indent=2))
            row = {"step": step, "time": time.time(), "split": "train"}
            for p in summary["pairs"]:
                if p["win_rate"] is not None:
                    row[f"win_rate/{p['judge']}/{p['a']} vs {p['b']}"] = p["win_rate"]
            run.append_metrics(row)
            run.update_status(step=step, generation_engine=engine)
            if run.stop_requested():
                return RunState.STOPPED
    return RunState.SUCCEEDED


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
