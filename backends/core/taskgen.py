"""Seeded generator of the embedded tasks (see `backends.core.tasks`) and their reference answers.

`generate_tasks(split, n, seed)` is deterministic. Each task gets 1-3 compatible constraints,
and a reference response is built to meet all of them; a task whose reference fails its
own checker is redrawn, so every generated task is satisfiable.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from backends.core.tasks import (
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


def task_rows(split: Split, n: int, seed: int = 0, with_completion: bool = True) -> list[dict[str, Any]]:
    """Rows in TRL's conversational prompt-completion (or prompt-only) format."""
    rows = []
    for task in generate_tasks(split, n, seed):
        row: dict[str, Any] = {
            "prompt": [{"role": "user", "content": task.prompt}],
            "constraints": task.constraints_json(),
            "task_id": task.task_id,
        }
        if with_completion:
            row["completion"] = [{"role": "assistant", "content": task.reference}]
        rows.append(row)
    return rows


def pair_rows(split: Split, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Synthetic preference pairs: chosen = the task's reference (meets every constraint),
    rejected = the reference of another task on the same topic that meets fewer of them.

    This is a stand-in for quick starts and tests; the `sample` stage makes real
    on-policy pairs from a model's own responses."""
    tasks = list(generate_tasks(split, n, seed))
    by_topic: dict[str, list[Task]] = {}
    for t in tasks:
        by_topic.setdefault(t.topic, []).append(t)
    rows = []
    for t in tasks:
        candidates = [o for o in by_topic[t.topic] if o is not t] or [o for o in tasks if o is not t]
        worst = min(candidates[:20], key=lambda o: t.score(o.reference))
        if t.score(worst.reference) >= 1.0:
            continue  # no contrast available for this task
        rows.append(
            {
                "prompt": [{"role": "user", "content": t.prompt}],
                "chosen": [{"role": "assistant", "content": t.reference}],
                "rejected": [{"role": "assistant", "content": worst.reference}],
                "constraints": t.constraints_json(),
            }
        )
    return rows


def unpaired_rows(split: Split, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """KTO's format: each pair becomes one desirable and one undesirable row."""
    rows = []
    for p in pair_rows(split, n, seed):
        rows.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
        rows.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    return rows
