"""The `eval` stage's work (backends/methods/eval.py says what it writes): every model answers
each batch of prompts, every judge scores or compares the answers, and the tallies, quality
signals and IFEval's view are rewritten after each batch so the studio shows them live."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

from backends.core.data.formats import load_for_method, text_of
from backends.core.reports.comparison import Answers, judge_name, outcome_from_scores, summarize
from backends.core.reports.report_comparison import write_comparison_report
from backends.core.runs.rundir import RunState, atomic_write_text
from backends.core.spec.config import ModelConfig
from backends.worker.context import RunContext
from backends.worker.generation import Generator, server_pool
from backends.worker.ifeval import IFEvalTally
from backends.worker.judges import build_judge
from backends.worker.quality import QualityMeter


def evaluate(ctx: RunContext) -> RunState:
    cfg, run, rt, progress = ctx.cfg, ctx.run, ctx.runtime, ctx.progress
    e, k = cfg.eval, cfg.eval.samples_per_prompt
    ds, _ = load_for_method("eval", cfg.data, None)
    rows = list(ds)
    attn = cfg.model.attn_implementation
    # eval.warm: the models stay loaded in their servers for the next comparison (at most one
    # server per model of this comparison kept at once)
    pool = server_pool(e.warm, len(e.models))
    gens = {
        m: Generator(
            ModelConfig(name_or_path=m, attn_implementation=attn), rt.device, rt.attn_implementation, pool
        )
        for m in e.models
    }
    judges = [
        (judge_name(s, i, e.judges), build_judge(s, rt.device, rt.attn_implementation))
        for i, s in enumerate(e.judges)
    ]
    meter = QualityMeter(e.models)
    ifeval = IFEvalTally() if any(s.kind == "ifeval" for s in e.judges) else None
    checkers = next((n for (n, _), s in zip(judges, e.judges, strict=True) if s.kind == "checkers"), None)
    total = len(rows)
    n_batches = (total + e.batch_size - 1) // e.batch_size
    progress.begin("generating", n_batches)
    judgments: list[dict[str, Any]] = []
    answers = Answers()
    engine = next(iter(gens.values())).engine
    with open(run.samples_path, "a") as samples, open(run.judgments_path, "a") as jfile:
        for step, start in enumerate(range(0, total, e.batch_size), 1):
            chunk = rows[start : start + e.batch_size]
            prompts = [r["prompt"] for r in chunk]
            extra = {key: [r[key] for r in chunk for _ in range(k)] for key in chunk[0] if key != "prompt"}
            seed = cfg.train.seed + step
            # per model: k answers per prompt, flattened prompt-major
            texts = {
                m: [
                    t
                    for o in g.generate(prompts, k, e.max_new_tokens, e.temperature, e.batch_size, seed)
                    for t in o
                ]
                for m, g in gens.items()
            }
            flat_prompts = [p for p in prompts for _ in range(k)]
            flat_text = [text_of(p) for p in flat_prompts]
            measured = {m: meter.measure(flat_text, texts[m]) for m in e.models}
            scores: dict[str, dict[str, list[float]]] = {}
            details: dict[str, list[dict[str, Any]]] = {}  # per model: IFEval's view of each answer
            for name, judge in judges:
                if judge.kind == "score":
                    scores[name] = {}
                    for m in e.models:
                        scores[name][m] = judge.score(flat_prompts, texts[m], extra)
                        if (seen := judge.details()) is not None:
                            details[m] = seen
            if ifeval is not None:
                for m in e.models:
                    ifeval.add(m, details[m], scores[checkers][m] if checkers else None)
            for i, row in enumerate(chunk):
                pid = start + i
                for m in e.models:
                    mine = texts[m][i * k : (i + 1) * k]
                    answers.length[(pid, m)] = sum(len(t.split()) for t in mine) / k
                    answers.add_quality(pid, m, measured[m][i * k : (i + 1) * k])
                    for name, by_model in scores.items():
                        answers.score[(name, pid, m)] = sum(by_model[m][i * k : (i + 1) * k]) / k
                    for j, text in enumerate(mine):
                        sample = {"prompt_id": pid, "sample": j, "prompt": text_of(row["prompt"]), "model": m}
                        sample.update(response=text, length=len(text.split()))
                        sample["scores"] = {n: by_model[m][i * k + j] for n, by_model in scores.items()}
                        sample["quality"] = measured[m][i * k + j]
                        if m in details:
                            sample["ifeval"] = details[m][i * k + j]
                        samples.write(json.dumps(sample) + "\n")
                for a, b in combinations(e.models, 2):
                    for name, judge in judges:
                        extra_info: dict[str, Any] = {}
                        if judge.kind == "score":
                            sa, sb = answers.score[(name, pid, a)], answers.score[(name, pid, b)]
                            out = outcome_from_scores(sa, sb, judge.margin)
                        else:  # an LLM judge compares each model's first answer
                            out, extra_info["p_a"] = judge.compare(
                                row["prompt"], texts[a][i * k], texts[b][i * k]
                            )
                        j = {"prompt_id": pid, "a": a, "b": b, "judge": name, "outcome": out, **extra_info}
                        judgments.append(j)
                        jfile.write(json.dumps(j) + "\n")
            samples.flush()
            jfile.flush()
            summary = summarize(cfg, judgments, answers, min(total, start + len(chunk)), total, engine)
            if ifeval is not None:
                summary["ifeval"] = ifeval.summary()
            atomic_write_text(run.winrate_path, json.dumps(summary, indent=2))
            metrics = {
                f"win_rate/{p['judge']}/{p['a']} vs {p['b']}": p["win_rate"]
                for p in summary["pairs"]
                if p["win_rate"] is not None
            }
            progress.step(step, metrics, generation_engine=engine)
            if progress.should_stop():
                write_comparison_report(run)
                return RunState.STOPPED
    write_comparison_report(run)
    return RunState.SUCCEEDED
