"""The `sda` stage's work (see backends/methods/sda.py for what it does and writes)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from typing import Any

from backends.core.data.dedup import greedy_dedup
from backends.core.data.formats import load_converted
from backends.core.reports.report import write_augmentation_report
from backends.core.runs.rundir import RunState, atomic_write_text
from backends.core.tasks.taskparse import conflicting, constraints_json, instruction_of, parse_constraints
from backends.worker.context import RunContext
from backends.worker.embed import Embedder
from backends.worker.generation import Generator, server_pool
from backends.worker.rewards import build_reward

# Self-Instruct's way: the model continues a numbered list of seed instructions (plain text,
# no chat template) and its next line is the new instruction. Asked in a chat turn to "write
# a new instruction", SmolLM2-135M answered the examples instead (95 of 96 unusable, the run
# of 2026-11-24 in docs/RESULTS.md); continuing the list it wrote instructions in their style.
LIST_HEADER = "Instructions, one per line:\n"


def writing_prompt(shown: list[str]) -> str:
    """The numbered list of seeds (each on one line), ending where the next one starts."""
    lines = "".join(f"{i}. {' '.join(p.split())}\n" for i, p in enumerate(shown, 1))
    return f"{LIST_HEADER}{lines}{len(shown) + 1}."


def clean(text: str) -> str | None:
    """The instruction a model wrote, or None when it wrote none (empty, too short or long,
    or an echo of the request)."""
    return read_instruction(text)[0]


def read_instruction(text: str) -> tuple[str | None, str]:
    """(the instruction, "") from a model's continuation of the list, or (None, why not)."""
    text = text.strip().split("\n", 1)[0].strip().strip('"').strip()  # the list's next line
    text = re.sub(r"^(?:\d+[.)]|[-*]|instruction:)\s*", "", text, flags=re.IGNORECASE)
    if len(text) < 20:
        return None, "malformed: empty or under 20 characters"
    if len(text) > 600:
        return None, "malformed: over 600 characters"
    if "example instructions" in text.lower() or "new instruction" in text.lower():
        return None, "malformed: an echo of the request"
    return text, ""


def _unjudgeable(parsed: list[Any]) -> str:
    """Why the checkers cannot judge a prompt with these constraints ("" when they can)."""
    if not parsed:
        return "malformed: no constraint the checkers can read"
    return "malformed: constraints that contradict each other" if conflicting(parsed) else ""


def augment(ctx: RunContext) -> RunState:
    cfg, run, rt, progress = ctx.cfg, ctx.run, ctx.runtime, ctx.progress
    s, seed = cfg.sda, cfg.train.seed
    rows = list(load_converted("sda", cfg.data)[0])
    conversational = isinstance(rows[0].get("prompt"), list)
    originals = list(dict.fromkeys(instruction_of(r.get("prompt", "")) for r in rows))
    rng = random.Random(seed)
    seeds = rng.sample(originals, min(len(originals), max(s.shots, round(s.seed_fraction * len(originals)))))
    total = 3
    progress.begin("writing prompts", total)
    requests = [writing_prompt(rng.sample(seeds, min(s.shots, len(seeds)))) for _ in range(s.new_prompts)]
    writer_cfg = (
        cfg.model.model_copy(update={"name_or_path": s.writer_model}) if s.writer_model else cfg.model
    )
    pool = server_pool(s.warm, 2)
    writer = Generator(writer_cfg, rt.device, rt.attn_implementation, pool)
    written = [
        o[0]
        for o in writer.generate(
            requests, 1, s.prompt_max_new_tokens, s.prompt_temperature, s.batch_size, seed
        )
    ]
    gen = writer if not s.writer_model else Generator(cfg.model, rt.device, rt.attn_implementation, pool)
    del writer
    # one row per written prompt with its fate, so a user can see why few were kept
    log: list[dict[str, Any]] = []
    candidates: list[tuple[str, str | None]] = []  # (text, constraints json)
    for raw in written:
        text, why = read_instruction(raw)
        parsed = parse_constraints(text) if text else []
        if text and s.judge.kind == "checkers":
            why = _unjudgeable(parsed)
        log.append({"written": raw, "instruction": text, "fate": why})
        if not why:
            candidates.append((text, constraints_json(parsed) if parsed else None))  # type: ignore[arg-type]
    malformed = sum(1 for r in log if r["fate"])
    pending = [r for r in log if not r["fate"]]
    progress.phase("deduplicating", step=1)
    emb = Embedder(s.embedding_model)
    keep, similarity = greedy_dedup(
        emb.encode(seeds), emb.encode([c[0] for c in candidates]), s.similarity_threshold
    )
    kept = [c for c, k in zip(candidates, keep, strict=True) if k]
    for r, k, sim in zip(pending, keep, similarity, strict=True):
        r["similarity"] = round(sim, 4)
        r["fate"] = "kept" if k else f"near-duplicate: similarity {sim:.3f} > {s.similarity_threshold}"
    kept_rows = [r for r in pending if r["fate"] == "kept"]
    progress.phase("sampling answers", step=2)
    judge = build_reward(s.judge)
    wrap = (lambda p: [{"role": "user", "content": p}]) if conversational else (lambda p: p)
    answer = (lambda t: [{"role": "assistant", "content": t}]) if conversational else (lambda t: t)
    prompts = [wrap(p) for p, _ in kept]
    outs = (
        gen.generate(prompts, s.num_samples, s.max_new_tokens, s.temperature, s.batch_size, seed + 1)
        if kept
        else []
    )
    new_rows, scores_all = [], []
    for (_, cons), prompt, group, r in zip(kept, prompts, outs, kept_rows, strict=True):
        extra = {"constraints": [cons] * len(group)} if cons else {}
        scores = judge([prompt] * len(group), [answer(g) for g in group], **extra)
        scores_all += scores
        r["scores"] = [round(float(x), 4) for x in scores]
        r["fate"] = "pair" if max(scores) > min(scores) else "no contrast: every answer scored the same"
        best, worst = (
            max(range(len(group)), key=scores.__getitem__),
            min(range(len(group)), key=scores.__getitem__),
        )
        if scores[best] > scores[worst]:
            row = {
                "prompt": prompt,
                "chosen": answer(group[best]),
                "rejected": answer(group[worst]),
                "source": "synthetic",
            }
            new_rows.append({**row, **({"constraints": cons} if cons else {})})
    run.data_dir.mkdir(exist_ok=True)
    _write(run.data_path("synthetic"), new_rows)
    _write(run.data_path("written"), log)
    merged = [{**r, "source": r.get("source", "original")} for r in rows] + new_rows if s.merge else new_rows
    _write(run.data_path("pairs"), merged)
    counts = {
        "seeds": len(seeds),
        "generated": len(written),
        "malformed": malformed,
        "duplicate": len(candidates) - len(kept),
        "kept": len(kept),
        "pairs": len(new_rows),
        "no_contrast": len(kept) - len(new_rows),
        "original_rows": len(rows),
        "output_rows": len(merged),
    }
    reasons = Counter(r["fate"] for r in log if r["fate"].startswith("malformed"))
    summary = {
        **counts,
        "malformed_reasons": dict(reasons.most_common()),
        "threshold": s.similarity_threshold,
        "similarity": similarity,
        "judge": s.judge.kind,
    }
    atomic_write_text(run.summary_path, json.dumps(summary, indent=2))
    metrics: dict[str, Any] = dict(counts)
    if scores_all:
        metrics["reward"] = sum(scores_all) / len(scores_all)
    progress.step(total, metrics)
    write_augmentation_report(run)  # the counts and the similarity chart, report.md / .html
    print("sda: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
    for why, n in reasons.most_common():
        print(f"sda: {n} {why}", flush=True)
    print(f"sda: every written prompt and its fate: {run.data_path('written')}", flush=True)
    return RunState.SUCCEEDED


def _write(path: Any, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
