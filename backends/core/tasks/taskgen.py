"""Seeded generator of the embedded tasks (see `backends.core.tasks.tasks`) and their reference answers.

`generate_tasks(split, n, seed)` is deterministic. Each task gets 1-3 compatible constraints,
and a reference response is built to meet all of them; a task whose reference fails its
own checker is redrawn, so every generated task is satisfiable.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from backends.core.tasks import references as refs
from backends.core.tasks.ifeval import embedded_columns
from backends.core.tasks.tasks import (
    AVOIDABLE,
    END_PHRASES,
    HELDOUT_TOPICS,
    INCLUDABLE,
    JSON_KEYS,
    KINDS,
    PROMPTS,
    SENTENCES,
    START_PHRASES,
    TRAIN_TOPICS,
    Constraint,
    Split,
    Task,
    count_word,
    count_words,
)


def _sample_kinds(rng: random.Random) -> list[str]:
    want = rng.choice([1, 2, 2, 3, 3])
    order = list(KINDS)
    rng.shuffle(order)
    chosen: list[str] = []
    for kind in order:
        if len(chosen) == want:
            break
        if any(kind in KINDS[c].conflicts or c in KINDS[kind].conflicts for c in chosen):
            continue
        chosen.append(kind)
    return chosen


def _params(kind: str, rng: random.Random, used: set[str]) -> dict[str, Any]:
    def fresh(pool: list[str], k: int) -> list[str]:
        words = rng.sample([w for w in pool if w not in used], k)
        used.update(words)
        return words

    if kind == "word_count":
        return {"relation": rng.choice(["at_most", "at_least"]), "n": 0}  # n set from the reference
    if kind == "sentence_count":
        return {"n": rng.randint(2, 5)}
    if kind == "bullet_count":
        return {"n": rng.randint(3, 5)}
    if kind == "paragraph_count":
        return {"n": rng.randint(2, 3)}
    if kind == "json_keys":
        return {"keys": rng.sample(JSON_KEYS, rng.randint(2, 3))}
    if kind == "include_words":
        return {"words": fresh(INCLUDABLE, rng.randint(1, 2))}
    if kind == "exclude_words":
        return {"words": fresh(AVOIDABLE, rng.randint(1, 2))}
    if kind == "starts_with":
        return {"phrase": rng.choice(START_PHRASES)}
    if kind == "ends_with":
        return {"phrase": rng.choice(END_PHRASES)}
    if kind == "keyword_frequency":
        return {"word": fresh(INCLUDABLE, 1)[0], "n": rng.randint(2, 3)}
    return {}


def _build_reference(topic: str, cs: dict[str, dict[str, Any]], rng: random.Random) -> str:
    """Compose a response that meets the constraints in `cs` (kind -> params)."""
    banned = cs.get("exclude_words", {}).get("words", [])
    pool = [s for s in SENTENCES if not any(count_word(s, w) for w in banned)]
    rng.shuffle(pool)
    fill = [s.format(t=topic, T=topic[0].upper() + topic[1:]) for s in pool]

    special: list[str] = []  # sentences that carry required words; counted as units
    if "include_words" in cs:
        special.append("This also brings to mind " + " and ".join(cs["include_words"]["words"]) + ".")
    if "keyword_frequency" in cs:
        w, n = cs["keyword_frequency"]["word"], cs["keyword_frequency"]["n"]
        special.append(f"I keep coming back to {w}" + f" and {w}" * (n - 1) + ".")
    end = cs.get("ends_with", {}).get("phrase")

    if "json_keys" in cs:
        keys = cs["json_keys"]["keys"]
        values = special + fill
        obj = {k: values[i] for i, k in enumerate(keys)}
        if len(special) > len(keys):
            obj[keys[-1]] += " " + " ".join(special[len(keys) :])
        text = json.dumps(obj)
    else:
        if "bullet_count" in cs:
            n_units = cs["bullet_count"]["n"]
        elif "sentence_count" in cs:
            n_units = cs["sentence_count"]["n"] - (1 if end else 0)
        elif "paragraph_count" in cs:
            n_units = cs["paragraph_count"]["n"]
        else:
            n_units = rng.randint(2, 4)
        units = (special + fill)[: max(n_units, 0)]
        if "bullet_count" in cs:
            body = "\n".join(f"- {u}" for u in units)
            if end:
                body += "\n" + end
        elif "paragraph_count" in cs:
            body = "\n\n".join(units)
            if end:
                body += " " + end
        else:
            body = " ".join(units + ([end] if end else []))
        if "starts_with" in cs:
            phrase = cs["starts_with"]["phrase"]
            sep = "\n" if "bullet_count" in cs else " "
            if sep == " ":
                body = body[0].lower() + body[1:]
            body = f"{phrase}{sep}{body}"
        if "title" in cs:
            body = f"<<Notes on {topic}>>\n{body}"
        text = body
    if "lowercase" in cs:
        text = text.lower()
    if "uppercase" in cs:
        text = text.upper()
    return text


def make_task(split: Split, index: int, seed: int = 0) -> Task:
    topics = TRAIN_TOPICS if split == "train" else HELDOUT_TOPICS
    rng = random.Random(f"{seed}:{split}:{index}")
    for _ in range(50):
        topic = rng.choice(topics)
        kinds = _sample_kinds(rng)
        used: set[str] = set()
        params = {k: _params(k, rng, used) for k in kinds}
        reference = _build_reference(topic, params, rng)
        if "word_count" in params:
            words = count_words(reference)
            if params["word_count"]["relation"] == "at_most":
                params["word_count"]["n"] = (words // 10 + 1) * 10 + 10
            else:
                params["word_count"]["n"] = max(5, (words // 10) * 10 - 5)
        constraints = tuple(Constraint(k, params[k]) for k in kinds)
        prompt = rng.choice(PROMPTS).format(t=topic) + " " + " ".join(c.describe() for c in constraints)
        task = Task(f"{split}-{seed}-{index}", topic, prompt, constraints, reference)
        if all(task.check(reference)):
            return task
    raise RuntimeError(f"could not build a satisfiable task for {split}/{index} (seed {seed})")


def generate_tasks(split: Split, n: int, seed: int = 0) -> Iterator[Task]:
    for i in range(n):
        yield make_task(split, i, seed)


def ifeval_columns(task: Task) -> dict[str, Any]:
    """The task's constraints as IFEval instructions (`backends.core.tasks.ifeval`), so a row can be
    judged by the checkers and by IFEval's verifiers."""
    return embedded_columns([(c.kind, c.params) for c in task.constraints])


def _with_references(
    split: Split, n: int, seed: int, references: str = "sampled"
) -> list[tuple[Task, dict[str, Any] | None]]:
    """`n` tasks, each with its sampled reference row (`backends.core.tasks.references`) or None.

    For the train split at the seed the shipped answers were sampled for, the tasks that have a
    sampled answer come first; the filler templates are the marked last resort (tasks whose
    sampled answers all failed a constraint, then tasks past the sampled range). Other splits
    and seeds, and `references="template"`, are generated in order, with templates."""
    if split != "train" or seed != refs.SEED or references == "template":
        return [(t, None) for t in generate_tasks(split, n, seed)]
    first: list[tuple[Task, dict[str, Any] | None]] = []
    rest: list[tuple[Task, dict[str, Any] | None]] = []
    scanned = refs.covered()
    for i in range(scanned):
        task = make_task(split, i, seed)
        row = refs.sampled(task)
        (first if row else rest).append((task, row))
        if len(first) == n:
            break
    out = (first + rest)[:n]
    i = scanned
    while len(out) < n:
        out.append((make_task(split, i, seed), None))
        i += 1
    return out


def task_rows(
    split: Split, n: int, seed: int = 0, with_completion: bool = True, references: str = "sampled"
) -> list[dict[str, Any]]:
    """Rows in TRL's conversational prompt-completion (or prompt-only) format. With a
    completion, `reference_source` says where it came from: `sampled` (an answer of the
    embedded model that meets every constraint) or `template` (the filler, a last resort)."""
    rows = []
    for task, sampled in (
        _with_references(split, n, seed, references)
        if with_completion
        else ((t, None) for t in generate_tasks(split, n, seed))
    ):
        row: dict[str, Any] = {
            "prompt": [{"role": "user", "content": task.prompt}],
            "constraints": task.constraints_json(),
            **ifeval_columns(task),
            "task_id": task.task_id,
        }
        if with_completion:
            answer = sampled["reference"] if sampled else task.reference
            row["completion"] = [{"role": "assistant", "content": answer}]
            row["reference_source"] = "sampled" if sampled else "template"
        rows.append(row)
    return rows


def pair_rows(split: Split, n: int, seed: int = 0, references: str = "sampled") -> list[dict[str, Any]]:
    """Preference pairs. Where a task has sampled answers (`backends.core.tasks.references`) and the
    worse one misses a constraint: chosen = the sampled reference, rejected = that worse
    answer of the same prompt (`reference_source: sampled`). Otherwise, as a last resort,
    chosen = the task's filler reference and rejected = the filler reference of another task
    on the same topic that meets fewer constraints (`template`); tasks with no contrast are
    left out. The `sample` stage makes real on-policy pairs from a model's own responses."""
    tasks = _with_references(split, n, seed, references)
    by_topic: dict[str, list[Task]] = {}
    for t, _ in tasks:
        by_topic.setdefault(t.topic, []).append(t)
    rows = []
    for t, sampled in tasks:
        if sampled and sampled["rejected_score"] < 1.0:
            chosen, rejected, source = sampled["reference"], sampled["rejected"], "sampled"
        else:
            candidates = [o for o in by_topic[t.topic] if o is not t] or [o for o, _ in tasks if o is not t]
            worst = min(candidates[:20], key=lambda o: t.score(o.reference))
            if t.score(worst.reference) >= 1.0:
                continue  # no contrast available for this task
            chosen, rejected, source = t.reference, worst.reference, "template"
        rows.append(
            {
                "prompt": [{"role": "user", "content": t.prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "constraints": t.constraints_json(),
                **ifeval_columns(t),
                "reference_source": source,
            }
        )
    return rows


def unpaired_rows(split: Split, n: int, seed: int = 0, references: str = "sampled") -> list[dict[str, Any]]:
    """KTO's format: each pair becomes one desirable and one undesirable row."""
    rows = []
    for p in pair_rows(split, n, seed, references):
        rows.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
        rows.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    return rows
