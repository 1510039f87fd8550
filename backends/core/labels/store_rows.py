"""Rows of the label store as frozen dataclasses, and the store's error. No torch, no gradio."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

Choice = Literal["left", "right", "tie", "both_bad"]
CHOICES: tuple[str, ...] = ("left", "right", "tie", "both_bad")
Kind = Literal["pair", "ranking"]
KINDS: tuple[str, ...] = ("pair", "ranking")
MAX_RANKED = 9  # answers a ranking session shows at once (InstructGPT's labelers ranked 4 to 9)
MAX_VOTES_PER_ITEM = 50  # labels asked of each item: a team, not a crowd
MAX_SESSION_NAME = 200  # characters
MAX_GUIDELINES = 20_000  # characters of labeling guidelines


class StoreError(ValueError):
    """A request the store refuses, naming the value and what is expected."""


@dataclass(frozen=True)
class Session:
    id: int
    name: str
    source: str
    created_at: float
    kind: str  # pair | ranking
    votes_per_item: int  # K: people who label each item before it is complete
    guidelines: str  # markdown shown above the item
    owner: str  # who may edit the guidelines ('' = anyone: sessions made by other tabs)
    lease_seconds: float  # how long a served item is held for its annotator
    items: int


@dataclass(frozen=True)
class Item:
    id: int
    session_id: int
    position: int
    prompt: Any
    responses: list[Any]
    meta: dict[str, Any]
    nvotes: int = 0  # active votes or rankings


@dataclass(frozen=True)
class Ordering:
    """Which run ordered a session by a reward model's uncertainty, and that model's scores."""

    session_id: int
    run_id: str  # the scoring run (an `uncertainty` run)
    model: str  # the reward model it loaded (a reward run's model/ folder)
    created_at: float
    scores: dict[int, list[float]]  # item id -> the model's score of each response (empty if not read)

    @property
    def model_name(self) -> str:
        """`<run id>` for a run's model/ folder, else the path as given."""
        parts = self.model.rstrip("/").rsplit("/", 2)
        return parts[-2] if len(parts) >= 2 and parts[-1] == "model" else self.model


@dataclass(frozen=True)
class Vote:
    id: int
    item_id: int
    annotator: str
    choice: str
    left_index: int
    right_index: int
    preferred: int | None  # index into the item's responses; None for tie / both_bad
    note: str
    created_at: float


@dataclass(frozen=True)
class Ranking:
    id: int
    item_id: int
    annotator: str
    ranks: list[int]  # per response (by index): its tier, 0 = best; equal tiers are ties
    shown: list[int]  # the response indices in the order they were shown (A, B, C, ...)
    note: str
    created_at: float


def session_of(r: sqlite3.Row) -> Session:
    return Session(
        r["id"],
        r["name"],
        r["source"] or "",
        r["created_at"],
        r["kind"],
        r["votes_per_item"],
        r["guidelines"],
        r["owner"],
        r["lease_seconds"],
        r["items"],
    )


def item_of(r: sqlite3.Row) -> Item:
    return Item(
        r["id"],
        r["session_id"],
        r["position"],
        json.loads(r["prompt"]),
        json.loads(r["responses"]),
        json.loads(r["meta"]),
        r["nvotes"],
    )


def vote_of(r: sqlite3.Row) -> Vote:
    return Vote(
        r["id"],
        r["item_id"],
        r["annotator"],
        r["choice"],
        r["left_index"],
        r["right_index"],
        r["preferred"],
        r["note"],
        r["created_at"],
    )


def ranking_of(r: sqlite3.Row) -> Ranking:
    return Ranking(
        r["id"],
        r["item_id"],
        r["annotator"],
        json.loads(r["ranks"]),
        json.loads(r["shown"]),
        r["note"],
        r["created_at"],
    )


@dataclass(frozen=True)
class Undone:
    """What an undo took back: a vote or ranking (its item is shown again, held for the
    annotator) or a skip (shown again if the item still has a free slot: `held`)."""

    kind: str  # vote | ranking | skip
    item_id: int
    shown: list[int]  # the order the item was shown in (left, right for a vote)
    note: str
    held: bool
    label: Vote | Ranking | None


@dataclass(frozen=True)
class Progress:
    items: int
    complete: int  # K labels
    in_progress: int  # some labels, or held by someone now
    remaining: int  # untouched
    labels_needed: int  # labels still missing before every item is complete
    mine: int  # this annotator's labels in the session
    my_skips: int
    pace_per_hour: float | None  # the whole team's recent pace (last 15 minutes)
    eta_seconds: float | None


@dataclass(frozen=True)
class AnnotatorProgress:
    annotator: str
    labels: int
    skips: int
    last: float


@dataclass(frozen=True)
class Settings:
    id: int
    kind: str
    k: int
    lease_seconds: float

    @property
    def labels(self) -> str:
        """The table this session's labels live in (a constant, safe to format into SQL)."""
        return "votes" if self.kind == "pair" else "rankings"


def settings_of(db: sqlite3.Connection, session_id: int) -> Settings:
    r = db.execute(
        "SELECT id, kind, votes_per_item, lease_seconds FROM sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if r is None:
        raise StoreError(f"no labeling session with id {session_id}")
    return Settings(r[0], r[1], r[2], r[3])
