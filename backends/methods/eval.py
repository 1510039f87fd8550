"""The `eval` method (the Arena): answers from two or more models on a prompt set, judged by
one or more judges, tallied per pair of models.

Writes, batch after batch so the studio shows live tallies:
  samples.jsonl    every answer: prompt_id, prompt, model, response, length, scores per score judge
  judgments.jsonl  every verdict: prompt_id, a, b, judge, outcome for a (1 / 0.5 / 0)
  winrate.json     the tallies (backends/core/comparison.py)
"""

from __future__ import annotations

import json
import time
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.params import JudgeSpec, Params, ui
from backends.core.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.config import RunConfig
    from backends.core.rundir import RunDir, RunState
    from backends.worker.runtime import Runtime


class EvalParams(Params):
    """Comparison"""

    models: list[str] = Field(
        default_factory=list,
        title="Models",
        description="Two or more: builtin:smollm2-135m-instruct, run model/ folders, local folders.",
        json_schema_extra=ui(main=True),
    )
    judges: list[JudgeSpec] = Field(
        default_factory=lambda: [JudgeSpec()],
        min_length=1,
        title="Judges",
        description="A list: {kind: checkers} | {kind: reward_model, path: ...} | {kind: llm, path: ...}",
        json_schema_extra=ui(main=True),
    )
    max_new_tokens: int = Field(96, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(
        0.7, ge=0.0, title="Temperature", description="0: greedy.", json_schema_extra=ui(main=True)
    )
    batch_size: int = Field(
        8,
        gt=0,
        title="Generation batch",
        description="Prompts per generate call; tallies update after each batch.",
    )


def check_models(cfg: RunConfig) -> list[str]:
    models = cfg.eval.models
    if len(set(models)) < max(2, len(models)):
        return [f"`eval.models` must name two or more different models, got {models}"]
    return []


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from backends.core.comparison import judge_name, outcome_from_scores, summarize
    from backends.core.config import ModelConfig
    from backends.core.data import load_for_method, text_of
    from backends.core.rundir import RunState, atomic_write_text
    from backends.worker.generation import Generator
    from backends.worker.judges import build_judge

    e = cfg.eval
    ds, _ = load_for_method("eval", cfg.data, None)
    rows = list(ds)
    attn = cfg.model.attn_implementation
    gens = {
        m: Generator(ModelConfig(name_or_path=m, attn_implementation=attn), rt.device, rt.attn_implementation)
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
    with open(run.samples_path, "a") as samples, open(run.judgments_path, "a") as jfile:
        for step, start in enumerate(range(0, total, e.batch_size), 1):
            chunk = rows[start : start + e.batch_size]
            prompts = [r["prompt"] for r in chunk]
            extra = {k: [r[k] for r in chunk] for k in chunk[0] if k != "prompt"}
            seed = cfg.train.seed + step
            answers = {
                m: [
                    o[0]
                    for o in g.generate(
                        prompts, 1, e.max_new_tokens, e.temperature or 1e-6, e.batch_size, seed
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
                    sample = {
                        "prompt_id": pid,
                        "prompt": text_of(row["prompt"]),
                        "model": m,
                        "response": answers[m][i],
                    }
                    sample.update(length=lengths[(pid, m)], scores={n: s[m][i] for n, s in scores.items()})
                    samples.write(json.dumps(sample) + "\n")
                for a, b in combinations(e.models, 2):
                    for name, judge in judges:
                        extra_info: dict[str, Any] = {}
                        if judge.kind == "score":
                            out = outcome_from_scores(scores[name][a][i], scores[name][b][i], judge.margin)
                        else:
                            out, extra_info["p_a"] = judge.compare(
                                row["prompt"], answers[a][i], answers[b][i]
                            )
                        j = {"prompt_id": pid, "a": a, "b": b, "judge": name, "outcome": out, **extra_info}
                        judgments.append(j)
                        jfile.write(json.dumps(j) + "\n")
            samples.flush()
            jfile.flush()
            summary = summarize(cfg, judgments, lengths, min(total, start + len(chunk)), total, engine)
            atomic_write_text(run.winrate_path, json.dumps(summary, indent=2))
            metrics: dict[str, Any] = {"step": step, "time": time.time(), "split": "train"}
            for p in summary["pairs"]:
                if p["win_rate"] is not None:
                    metrics[f"win_rate/{p['judge']}/{p['a']} vs {p['b']}"] = p["win_rate"]
            run.append_metrics(metrics)
            run.update_status(step=step, generation_engine=engine)
            if run.stop_requested():
                return RunState.STOPPED
    return RunState.SUCCEEDED


METHOD = MethodSpec(
    name="eval",
    help="Compare two or more models on a prompt set: generate, judge (checkers, reward model, LLM, "
    "people), and tally win rates with confidence intervals.",
    run=train,
    formats=PROMPTS,
    section="eval",
    params=EvalParams,
    charts=("win_rate/*",),
    resumable=False,
    keeps_columns=True,
    ignores=("train.*", "lora.*", "data.eval_fraction", "model.name_or_path", "model.dtype"),
    keeps=("train.seed", "train.device"),
    check=check_models,
    order=110,
)
