"""The embedded data: generated instruction-following tasks whose constraints a program checks.

Each `Task` is a prompt plus a list of `Constraint`s. One object serves three roles:
a reward function for GRPO / PPO (`score`, the share of constraints met), a judge for the
arena, and a filter for best-of-N sampling. The generator is seeded and also builds a
reference response that meets every constraint, which gives SFT data without any download.

Train and held-out splits use disjoint topics, so a held-out prompt never appears in
training. This module imports neither torch nor gradio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Split = Literal["train", "dev", "heldout"]  # dev: held-out topics, other tasks than heldout's

TRAIN_TOPICS = [
    "the ocean",
    "gardening",
    "coffee",
    "bicycles",
    "libraries",
    "rainy days",
    "chess",
    "bread baking",
    "mountains",
    "public parks",
    "old maps",
    "winter mornings",
    "jazz",
    "city buses",
    "honeybees",
    "the moon",
    "board games",
    "tea",
    "pottery",
    "birdwatching",
    "long walks",
    "kites",
    "lighthouses",
    "notebooks",
    "volcanoes",
    "trains",
    "museums",
    "sunflowers",
    "camping",
    "snow",
]
HELDOUT_TOPICS = [
    "rivers",
    "violins",
    "deserts",
    "bookshops",
    "clocks",
    "owls",
    "sailing",
    "markets",
    "thunderstorms",
    "bridges",
]

# No template contains a comma, so `no_commas` never needs a special case.
SENTENCES = [
    "{T} can teach us a lot about patience.",
    "Many people enjoy {t} on quiet weekends.",
    "The story of {t} is long and interesting.",
    "Learning about {t} takes time and curiosity.",
    "A good start with {t} is to ask simple questions.",
    "Some experts say {t} can shape daily life in small ways.",
    "Interest in {t} often brings people together.",
    "There is always something new to notice about {t}.",
    "Children and adults can both enjoy {t}.",
    "It helps to read a little about {t} every week.",
    "Friends who share an interest in {t} rarely run out of things to say.",
    "The best way to understand {t} is to see it for yourself.",
]
AVOIDABLE = ["people", "time", "story", "simple", "new", "good", "enjoy", "daily"]
INCLUDABLE = [
    "river",
    "lantern",
    "window",
    "music",
    "honest",
    "bright",
    "harbor",
    "silver",
    "morning",
    "journey",
    "quiet",
    "pencil",
]
START_PHRASES = ["Here is what I think:", "To begin:", "Dear reader:", "My short answer:"]
END_PHRASES = ["Is there anything else I can help with?", "That is all.", "Thank you for reading."]
JSON_KEYS = ["summary", "reason", "example", "advice", "topic"]
PROMPTS = [
    "Write a short note about {t}.",
    "Describe {t} for a curious friend.",
    "Explain what makes {t} worth a closer look.",
    "Tell me something about {t}.",
]

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def count_sentences(text: str) -> int:
    parts = re.split(r"[.!?]+(?=\s|$)", text.strip())
    return sum(1 for p in parts if re.search(r"\w", p))


def count_bullets(text: str) -> int:
    return sum(1 for line in text.splitlines() if re.match(r"^\s*[-*]\s+\S", line))


def count_paragraphs(text: str) -> int:
    return sum(1 for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def count_word(text: str, word: str) -> int:
    return len(re.findall(rf"\b{re.escape(word)}\b", text, flags=re.IGNORECASE))


def _json_object(text: str) -> dict[str, Any] | None:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Kind:
    """One kind of constraint: how to phrase it, check it, and which kinds it excludes."""

    describe: Callable[[dict[str, Any]], str]
    check: Callable[[dict[str, Any], str], bool]
    conflicts: frozenset[str] = frozenset()


_FORMAT = frozenset({"sentence_count", "bullet_count", "paragraph_count", "json_keys"})
KINDS: dict[str, Kind] = {
    "word_count": Kind(
        lambda p: f"Answer in {p['relation'].replace('_', ' ')} {p['n']} words.",
        lambda p, t: (count_words(t) <= p["n"]) if p["relation"] == "at_most" else (count_words(t) >= p["n"]),
    ),
    "sentence_count": Kind(
        lambda p: f"Use exactly {p['n']} sentences.",
        lambda p, t: count_sentences(t) == p["n"],
        _FORMAT,
    ),
    "bullet_count": Kind(
        lambda p: f"Format the answer as exactly {p['n']} bullet points that start with '- '.",
        lambda p, t: count_bullets(t) == p["n"],
        _FORMAT,
    ),
    "paragraph_count": Kind(
        lambda p: f"Write exactly {p['n']} paragraphs separated by a blank line.",
        lambda p, t: count_paragraphs(t) == p["n"],
        _FORMAT,
    ),
    "json_keys": Kind(
        lambda p: (
            "Reply with only a JSON object that has the keys " + ", ".join(f'"{k}"' for k in p["keys"]) + "."
        ),
        lambda p, t: (obj := _json_object(t)) is not None and all(k in obj for k in p["keys"]),
        _FORMAT | {"starts_with", "ends_with", "title", "uppercase", "no_commas", "keyword_frequency"},
    ),
    "include_words": Kind(
        lambda p: "Include the words " + " and ".join(f"'{w}'" for w in p["words"]) + ".",
        lambda p, t: all(count_word(t, w) for w in p["words"]),
    ),
    "exclude_words": Kind(
        lambda p: "Do not use the words " + " or ".join(f"'{w}'" for w in p["words"]) + ".",
        lambda p, t: not any(count_word(t, w) for w in p["words"]),
    ),
    "lowercase": Kind(
        lambda p: "Write everything in lowercase letters.",
        lambda p, t: t == t.lower() and bool(re.search(r"[a-z]", t)),
        frozenset({"uppercase"}),
    ),
    "uppercase": Kind(
        lambda p: "Write everything in capital letters.",
        lambda p, t: t == t.upper() and bool(re.search(r"[A-Z]", t)),
        frozenset({"lowercase", "json_keys"}),
    ),
    "starts_with": Kind(
        lambda p: f"Start your answer with '{p['phrase']}'.",
        lambda p, t: t.strip().lower().startswith(p["phrase"].lower()),
        frozenset({"title", "json_keys"}),
    ),
    "ends_with": Kind(
        lambda p: f"End your answer with '{p['phrase']}'.",
        lambda p, t: t.strip().lower().endswith(p["phrase"].lower()),
        frozenset({"json_keys"}),
    ),
    "no_commas": Kind(
        lambda p: "Do not use any commas.",
        lambda p, t: "," not in t,
        frozenset({"json_keys"}),
    ),
    "keyword_frequency": Kind(
        lambda p: f"Use the word '{p['word']}' at least {p['n']} times.",
        lambda p, t: count_word(t, p["word"]) >= p["n"],
        frozenset({"json_keys"}),
    ),
    "title": Kind(
        lambda p: "Give the answer a title in double angular brackets, like <<my title>>.",
        lambda p, t: re.search(r"<<[^<>\n]+>>", t) is not None,
        frozenset({"starts_with", "json_keys"}),
    ),
}


@dataclass(frozen=True)
class Constraint:
    kind: str
    params: dict[str, Any]

    def describe(self) -> str:
        return KINDS[self.kind].describe(self.params)

    def check(self, text: str) -> bool:
        return KINDS[self.kind].check(self.params, text)


@dataclass(frozen=True)
class Task:
    task_id: str
    topic: str
    prompt: str
    constraints: tuple[Constraint, ...]
    reference: str  # a response that meets every constraint

    def check(self, text: str) -> list[bool]:
        return [c.check(text) for c in self.constraints]

    def score(self, text: str) -> float:
        """Share of constraints met, in [0, 1]: the reward and the judge's score."""
        results = self.check(text)
        return sum(results) / len(results)

    def constraints_json(self) -> str:
        return json.dumps([{"kind": c.kind, "params": c.params} for c in self.constraints])


def constraints_from_json(text: str) -> list[Constraint]:
    items = json.loads(text)
    unknown = [i.get("kind") for i in items if i.get("kind") not in KINDS]
    if unknown:
        raise ValueError(f"unknown constraint kinds {unknown}; known: {sorted(KINDS)}")
    return [Constraint(i["kind"], i["params"]) for i in items]


def score_response(constraints: str | list[Constraint], text: str) -> float:
    cs = constraints_from_json(constraints) if isinstance(constraints, str) else constraints
    return sum(c.check(text) for c in cs) / len(cs) if cs else 0.0
