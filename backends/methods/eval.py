"""The `eval` method (the Arena): answers from two or more models on a prompt set, judged by
one or more judges, tallied per pair of models.

Writes, batch after batch so the studio shows live tallies:
  samples.jsonl    every answer: prompt_id, prompt, model, response, length, scores per score judge
  judgments.jsonl  every verdict: prompt_id, a, b, judge, outcome for a (1 / 0.5 / 0)
  winrate.json     the tallies (backends/core/reports/comparison.py)
"""

from __future__ import annotations

import json
import time
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pydantic import Field

from backends.core.spec.params import JudgeSpec, ModelPath, Params, ui
from backends.core.spec.registry import PROMPTS, MethodSpec

if TYPE_CHECKING:
    from backends.core.runs.rundir import RunDir, RunState
    from backends.core.spec.config import RunConfig
    from backends.worker.runtime import Runtime


class EvalParams(Params):
    """Comparison"""

    models: list[ModelPath] = Field(
        default_factory=list,
        title="Models",
        description="Two or more: builtin:smollm2-135m-instruct, run model/ folders, local folders.",
        json_schema_extra=ui(main=True),
    )
    judges: list[JudgeSpec] = Field(
        default_factory=lambda: [JudgeSpec()],
        min_length=1,
        title="Judges",
        description="A list: {kind: checkers} | {kind: ifeval} | {kind: reward_model, path: ...} | "
        "{kind: llm, path: ...}",
        json_schema_extra=ui(main=True),
    )
    max_new_tokens: int = Field(96, gt=0, title="Max new tokens", json_schema_extra=ui(main=True))
    temperature: float = Field(
        0.7,
        ge=0.0,
        title="Temperature",
        description="0: greedy (the same answer every time).",
        json_schema_extra=ui(main=True),
    )
    samples_per_prompt: int = Field(
        1,
        ge=1,
        title="Samples per prompt",
        description="Answers per prompt and model, averaged per prompt before pairing: raise it when sampling "
        "(temperature > 0) and a judge gives many ties; it costs that many times the generation.",
        json_schema_extra=ui(main=True),
    )
    batch_size: int = Field(
        8,
        gt=0,
        title="Generation batch",
        description="Prompts per generate call; tallies update after each batch.",
    )


def check_models(cfg: RunConfig) -> list[str]:
    e, problems = cfg.eval, []
    if len(set(e.models)) < max(2, len(e.models)):
        problems.append(f"`eval.models` must name two or more different models, got {e.models}")
    if e.samples_per_prompt > 1 and e.temperature == 0:
        problems.append(
            f"`eval.samples_per_prompt` is {e.samples_per_prompt} but `eval.temperature` is 0: greedy answers "
            "are all the same; sample (temperature > 0) or use 1"
        )
    return problems


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    from backends.core.data.formats import load_for_method, text_of
    from backends.core.reports.comparison import Answers, judge_name, outcome_from_scores, summarize
    from backends.core.reports.report_comparison import write_comparison_report
    from backends.core.runs.rundir import RunState, atomic_write_text
    from backends.core.spec.config import ModelConfig
    from backends.worker.generation import Generator
    from backends.worker.ifeval import IFEvalTally
    from backends.worker.judges import build_judge
    from backends.worker.quality import QualityMeter

    e, k = cfg.eval, cfg.eval.samples_per_prompt
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
    meter = QualityMeter(e.models)
    ifeval = IFEvalTally() if any(s.kind == "ifeval" for s in e.judges) else None
    checkers = next((n for (n, _), s in zip(judges, e.judges, strict=True) if s.kind == "checkers"), None)
    total = len(rows)
    n_batches = (total + e.batch_size - 1) // e.batch_size
    run.update_status(
        phase="generating", total_steps=n_batches, step=0, train_started_at=time.time(), first_step=0
    )
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
            metrics: dict[str, Any] = {"step": step, "time": time.time(), "split": "train"}
            for p in summary["pairs"]:
                if p["win_rate"] is not None:
                    metrics[f"win_rate/{p['judge']}/{p['a']} vs {p['b']}"] = p["win_rate"]
            run.append_metrics(metrics)
            run.update_status(step=step, generation_engine=engine)
            if run.stop_requested():
                write_comparison_report(run)
                return RunState.STOPPED
    write_comparison_report(run)
    return RunState.SUCCEEDED


def comparison_report(run: RunDir, label: str) -> list[Any]:
    """The report's sections for a finished comparison: verdict, scores, quality, tallies."""
    from backends.core.reports.report_comparison import comparison_sections

    if not run.winrate_path.exists():
        return []
    return comparison_sections(json.loads(run.winrate_path.read_text()), f"{label}: the comparison")


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
    generates=True,
    trains=False,
    report=comparison_report,
    report_curves=False,
    order=110,
)
