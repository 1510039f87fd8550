"""Build the embedded tasks' reference answers by rejection sampling from the instruct model.

The generator's own references (`backends/core/tasks/taskgen.py`) are filler templates that meet
every constraint and say nothing ("I keep coming back to river."); an SFT on them learns the
template. Here the embedded model itself answers each train task `k` times; an answer is
kept when, after formatting repairs that change no content, it meets every constraint and
its relevance to the request is at least the median relevance of all sampled answers (the
base model's median), as rejection-sampling fine-tuning does. Of the kept answers the most
relevant one becomes the reference; the least compliant unrepaired answer of the same
prompt becomes the rejected side of a preference pair.

Formatting repairs (applied to a sampled answer before it is checked), each a mechanical edit
of the form and never of what it says: lowercase / uppercase, commas removed, the required
opening or closing phrase added, a title line `<<Topic>>` added. Counts (words, sentences,
bullets, paragraphs), JSON keys and required words are never repaired: the answer has to
meet them itself.

    python -m backends.worker.references --tasks 1200 --samples 8 --out backends/core/tasks/references.jsonl

The output is shipped with the package (`backends/core/tasks/references.py` reads it); each row
carries the task id, the prompt (so a changed generator cannot pair an answer with another
prompt), the reference, the rejected answer, and how the reference was made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from backends.core.tasks.tasks import Task

TOP_K = 50  # top-k, not top-p: sorting the 49k-token vocabulary for every sequence cost 12% of the time


def repair(task: Task, text: str) -> tuple[str, list[str]]:
    """`text` with the formatting constraints applied; the list names the edits made."""
    kinds = {c.kind: c.params for c in task.constraints}
    out, edits = text.strip(), []
    if "starts_with" in kinds:
        phrase = kinds["starts_with"]["phrase"]
        if not out.lower().startswith(phrase.lower()):
            out, edits = f"{phrase} {out}", [*edits, "starts_with"]
    if "ends_with" in kinds:
        phrase = kinds["ends_with"]["phrase"]
        if not out.lower().endswith(phrase.lower()):
            sep = "\n" if "bullet_count" in kinds else " "
            out, edits = f"{out}{sep}{phrase}", [*edits, "ends_with"]
    if "title" in kinds and "<<" not in out:
        out, edits = f"<<{task.topic.title()}>>\n{out}", [*edits, "title"]
    if "no_commas" in kinds and "," in out:
        out, edits = out.replace(", ", " ").replace(",", ""), [*edits, "no_commas"]
    if "lowercase" in kinds and out != out.lower():
        out, edits = out.lower(), [*edits, "lowercase"]
    if "uppercase" in kinds and out != out.upper():
        out, edits = out.upper(), [*edits, "uppercase"]
    return out, edits


def _sample(gen: Any, tasks: list[Task], k: int, max_new_tokens: int, temperature: float, seed: int) -> Any:
    """Per task, k (text, finished) pairs: finished is False for an answer cut at the token limit."""
    import torch

    tok, model = gen.tok, gen.model
    tok.padding_side = "left"
    torch.manual_seed(seed)
    chunk = [
        tok.apply_chat_template(
            [{"role": "user", "content": t.prompt}], tokenize=False, add_generation_prompt=True
        )
        for t in tasks
    ]
    enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        seq = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_k=TOP_K,
            max_new_tokens=max_new_tokens,
            num_return_sequences=k,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    new = seq[:, enc["input_ids"].shape[1] :]
    finished = (new == tok.eos_token_id).any(dim=1).tolist()
    texts = tok.batch_decode(new, skip_special_tokens=True)
    return [[(texts[i * k + j], finished[i * k + j]) for j in range(k)] for i in range(len(tasks))]


def _read_candidates(cache: Path, tasks: dict[str, Task]) -> list[dict[str, Any]]:
    """The answers an earlier, interrupted build sampled for these tasks (so a build resumes)."""
    if not cache.exists():
        return []
    rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{**r, "task": tasks[r["task"]]} for r in rows if r["task"] in tasks]


def build(
    n_tasks: int, k: int, max_new_tokens: int, temperature: float, batch: int, seed: int, out: Path
) -> dict[str, Any]:
    from backends.core.spec.config import EMBEDDED_MODEL, ModelConfig
    from backends.core.tasks.taskgen import make_task
    from backends.worker.embed import Embedder
    from backends.worker.generation import Generator

    tasks = [make_task("train", i, seed=0) for i in range(n_tasks)]
    cache = out.with_suffix(".candidates.jsonl")  # one line per sampled answer, appended per batch
    candidates = _read_candidates(cache, {t.task_id: t for t in tasks})
    done_ids = {c["task"].task_id for c in candidates}
    todo = [t for t in tasks if t.task_id not in done_ids]
    start = time.time()
    if todo:
        gen = Generator(ModelConfig(name_or_path=EMBEDDED_MODEL), "cpu", "sdpa")
        emb = Embedder()
    for b in range(0, len(todo), batch):
        part = todo[b : b + batch]
        fresh = []
        for task, samples in zip(
            part,
            _sample(gen, part, k, max_new_tokens, temperature, seed + int(part[0].task_id.rsplit("-", 1)[1])),
            strict=True,
        ):
            for text, finished in samples:
                fixed, edits = repair(task, text)
                fresh.append(
                    {
                        "task": task,
                        "raw": text,
                        "text": fixed,
                        "edits": edits,
                        "finished": finished,
                        "score": task.score(fixed),
                        "raw_score": task.score(text),
                    }
                )
        prompts = emb.encode([c["task"].prompt for c in fresh])
        answers = emb.encode([c["text"] for c in fresh])
        for c, p, a in zip(fresh, prompts, answers, strict=True):
            c["relevance"] = float((p * a).sum())
        with open(cache, "a", encoding="utf-8") as f:
            for c in fresh:
                f.write(json.dumps({**c, "task": c["task"].task_id}) + "\n")
        candidates += fresh
        done = len(tasks) - len(todo) + min(b + batch, len(todo))
        print(f"sampled {done}/{n_tasks} tasks, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    floor = statistics.median(c["relevance"] for c in candidates)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for c in candidates:
        by_task.setdefault(c["task"].task_id, []).append(c)
    tasks = [t for t in tasks if t.task_id in by_task]
    rows, kept_by_kind, seen_by_kind = [], {}, {}
    for task in tasks:
        cs = by_task[task.task_id]
        ok = [c for c in cs if c["finished"] and c["score"] == 1.0 and c["relevance"] >= floor]
        for c in task.constraints:
            seen_by_kind[c.kind] = seen_by_kind.get(c.kind, 0) + 1
            kept_by_kind[c.kind] = kept_by_kind.get(c.kind, 0) + bool(ok)
        if not ok:
            continue
        # the most relevant kept answer; one that titles itself with the prompt's example
        # ("<<my title>>") only when no other was kept
        best = max(ok, key=lambda c: ("<<my title>>" not in c["text"].lower(), c["relevance"]))
        worst = min(cs, key=lambda c: (c["raw_score"], c["relevance"]))
        rows.append(
            {
                "task_id": task.task_id,
                "prompt": task.prompt,
                "reference": best["text"],
                "relevance": round(best["relevance"], 4),
                "repairs": best["edits"],
                "rejected": worst["raw"].strip(),
                "rejected_score": round(worst["raw_score"], 4),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    summary = {
        "model": EMBEDDED_MODEL,
        "tasks": n_tasks,
        "samples_per_task": k,
        "temperature": temperature,
        "top_k": TOP_K,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "relevance_floor": round(floor, 4),
        "kept": len(rows),
        "kept_share": len(rows) / n_tasks,
        "met_before_repairs": sum(c["raw_score"] == 1.0 for c in candidates) / len(candidates),
        "met_after_repairs": sum(c["score"] == 1.0 for c in candidates) / len(candidates),
        "kept_share_by_kind": {k: round(kept_by_kind[k] / seen_by_kind[k], 3) for k in sorted(seen_by_kind)},
        "seconds_this_call": round(time.time() - start, 1),
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1200)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--batch", type=int, default=4, help="tasks per generate call (x samples sequences)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    summary = build(a.tasks, a.samples, a.max_new_tokens, a.temperature, a.batch, a.seed, a.out)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
