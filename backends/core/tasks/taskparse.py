"""Read the embedded tasks' constraints back out of an instruction's text.

The task generator phrases every constraint with a fixed sentence (`backends.core.tasks.tasks`).
A model asked to write new instructions in the style of the embedded ones (synthetic data
augmentation, backends/methods/sda.py) writes such sentences too; parsing them gives the new
prompt a `constraints` column, so the checkers can judge its answers like any embedded task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from backends.core.tasks.tasks import KINDS, Constraint

_Q = r"'([A-Za-z][A-Za-z ,.!?:-]*?)'"


def _words(text: str, joiner: str) -> list[str]:
    return [w.strip("'") for w in text.split(f" {joiner} ")]


PATTERNS: dict[str, tuple[str, Callable[[re.Match[str]], dict[str, Any]]]] = {
    "word_count": (
        r"Answer in (at most|at least) (\d+) words\.",
        lambda m: {"relation": m.group(1).replace(" ", "_"), "n": int(m.group(2))},
    ),
    "sentence_count": (r"Use exactly (\d+) sentences\.", lambda m: {"n": int(m.group(1))}),
    "bullet_count": (
        r"Format the answer as exactly (\d+) bullet points that start with '- '\.",
        lambda m: {"n": int(m.group(1))},
    ),
    "paragraph_count": (
        r"Write exactly (\d+) paragraphs separated by a blank line\.",
        lambda m: {"n": int(m.group(1))},
    ),
    "json_keys": (
        r'Reply with only a JSON object that has the keys ("\w+"(?:, "\w+")*)\.',
        lambda m: {"keys": [k.strip('"') for k in m.group(1).split(", ")]},
    ),
    "include_words": (
        r"Include the words ('\w+'(?: and '\w+')*)\.",
        lambda m: {"words": _words(m.group(1), "and")},
    ),
    "exclude_words": (
        r"Do not use the words ('\w+'(?: or '\w+')*)\.",
        lambda m: {"words": _words(m.group(1), "or")},
    ),
    "lowercase": (r"Write everything in lowercase letters\.", lambda m: {}),
    "uppercase": (r"Write everything in capital letters\.", lambda m: {}),
    "starts_with": (rf"Start your answer with {_Q}\.", lambda m: {"phrase": m.group(1)}),
    "ends_with": (rf"End your answer with {_Q}\.", lambda m: {"phrase": m.group(1)}),
    "no_commas": (r"Do not use any commas\.", lambda m: {}),
    "keyword_frequency": (
        r"Use the word '(\w+)' at least (\d+) times\.",
        lambda m: {"word": m.group(1), "n": int(m.group(2))},
    ),
    "title": (r"Give the answer a title in double angular brackets, like <<my title>>\.", lambda m: {}),
}
assert set(PATTERNS) == set(KINDS), "every constraint kind needs a pattern"


def parse_constraints(prompt: str) -> list[Constraint]:
    """The constraints an instruction states, in order of appearance (one per kind)."""
    found: list[tuple[int, Constraint]] = []
    for kind, (pattern, params) in PATTERNS.items():
        m = re.search(pattern, prompt)
        if m is not None:
            found.append((m.start(), Constraint(kind, params(m))))
    return [c for _, c in sorted(found, key=lambda x: x[0])]


def conflicting(constraints: list[Constraint]) -> list[tuple[str, str]]:
    """Pairs of kinds that cannot both hold (e.g. lowercase and uppercase)."""
    kinds = [c.kind for c in constraints]
    return [
        (a, b)
        for i, a in enumerate(kinds)
        for b in kinds[i + 1 :]
        if b in KINDS[a].conflicts or a in KINDS[b].conflicts
    ]


def constraints_json(constraints: list[Constraint]) -> str:
    return json.dumps([{"kind": c.kind, "params": c.params} for c in constraints])


def instruction_of(prompt: Any) -> str:
    """The instruction of a row's prompt: a string, or the last user turn of a conversation."""
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return str(users[-1])
        return " ".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in prompt)
    return str(prompt)
