"""Preference labels in SQLite (WAL): labeling sessions, items, and every annotator's votes.

A vote is durable when `record_vote` returns (synchronous=FULL, one transaction per vote),
so a crash right after the UI acknowledges it loses nothing. Several annotators (processes
or threads) write at once; SQLite serialises the writers and nobody overwrites anybody:
each vote is its own row, with who and when.

The annotator sees two responses in random left/right order; the vote stores which
response was shown on the left, so position bias can be measured. Agreement statistics
and export live in `backends.core.agreement`. No torch, no gradio.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Choice = Literal["left", "right", "tie", "both_bad"]
CHOICES: tuple[str, ...] = ("left", "right", "tie", "both_bad")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    position INTEGER NOT NULL, prompt TEXT NOT NULL, responses TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'both_bad')),
    left_index INTEGER NOT NULL, right_index INTEGER NOT NULL,
    preferred INTEGER, note TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS votes_item ON votes(item_id, undone);
CREATE INDEX IF NOT EXISTS votes_annotator ON votes(annotator, undone);
"""


class StoreError(ValueError):
    """A request the store refuses, naming the value and what is expected."""


@dataclass(frozen=True)
class Item:
    id: int
    session_id: int
    position: int
    prompt: Any
    responses: list[Any]
    meta: dict[str, Any]


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


class LabelStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # A connection per call: safe from any thread (gradio handlers) or process.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # durable when the commit returns
        db.execute("PRAGMA foreign_keys=ON")
        db.row_factory = sqlite3.Row
        return db

    # --- sessions and items ------------------------------------------------------------
    def create_session(self, name: str, items: list[dict[str, Any]], source: str = "") -> int:
        """Items are {"prompt", "responses": [two or more], "meta"?}. Returns the session id."""
        problems = []
        for i, it in enumerate(items):
            responses = it.get("responses")
            if not isinstance(responses, list) or len(responses) < 2:
                problems.append(
                    f"item {i}: `responses` must list at least two responses, got {responses!r:.80}"
                )
        if not items:
            problems.append("a labeling session needs at least one item")
        if problems:
            raise StoreError("; ".join(problems[:10]))
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT INTO sessions (name, source, created_at) VALUES (?, ?, ?)",
                    (name, source, time.time()),
                )
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise StoreError(
                    f"a labeling session named {name!r} exists already; pick another name"
                ) from None
            sid = int(cur.lastrowid)
            db.executemany(
                "INSERT INTO items (session_id, position, prompt, responses, meta) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        sid,
                        i,
                        json.dumps(it["prompt"]),
                        json.dumps(it["responses"]),
                        json.dumps(it.get("meta", {})),
                    )
                    for i, it in enumerate(items)
                ],
            )
            db.execute("COMMIT")
            return sid
        finally:
            db.close()

    def sessions(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT s.id, s.name, s.source, s.created_at, COUNT(i.id) AS items FROM sessions s "
                "LEFT JOIN items i ON i.session_id = s.id GROUP BY s.id ORDER BY s.id"
            ).fetchall()
        return [dict(r) for r in rows]

    def session_id(self, name: str) -> int:
        with self._db() as db:
            row = db.execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no labeling session named {name!r}")
        return int(row["id"])

    def items(self, session_id: int) -> list[Item]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM items WHERE session_id = ? ORDER BY position", (session_id,)
            ).fetchall()
        return [
            Item(
                r["id"],
                r["session_id"],
                r["position"],
                json.loads(r["prompt"]),
                json.loads(r["responses"]),
                json.loads(r["meta"]),
            )
            for r in rows
        ]

    def item(self, item_id: int) -> Item:
        with self._db() as db:
            r = db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if r is None:
            raise StoreError(f"no item with id {item_id}")
        return Item(
            r["id"],
            r["session_id"],
            r["position"],
            json.loads(r["prompt"]),
            json.loads(r["responses"]),
            json.loads(r["meta"]),
        )

    def next_item(
        self,
        session_id: int,
        annotator: str,
        skip: set[int] | None = None,
        priority: dict[int, float] | None = None,
    ) -> Item | None:
        """The next item this annotator has not voted on (in order, or by `priority`, highest
        first: e.g. a reward model's uncertainty), leaving out `skip`ped ones."""
        with self._db() as db:
            done = {
                r[0]
                for r in db.execute(
                    "SELECT v.item_id FROM votes v JOIN items i ON i.id = v.item_id "
                    "WHERE i.session_id = ? AND v.annotator = ? AND v.undone = 0",
                    (session_id, annotator),
                )
            }
        todo = [it for it in self.items(session_id) if it.id not in done and it.id not in (skip or set())]
        if priority:
            todo.sort(key=lambda it: -priority.get(it.id, float("-inf")))
        return todo[0] if todo else None

    @staticmethod
    def pair_order(item: Item, rng: random.Random) -> tuple[int, int]:
        """Which two responses to show, in random left/right order."""
        a, b = rng.sample(range(len(item.responses)), 2) if len(item.responses) > 2 else (0, 1)
        return (a, b) if rng.random() < 0.5 else (b, a)

    # --- votes -------------------------------------------------------------------------
    def record_vote(
        self, item_id: int, annotator: str, choice: str, left_index: int, right_index: int, note: str = ""
    ) -> int:
        """Store one vote; when this returns the vote is on disk. Returns its id."""
        if choice not in CHOICES:
            raise StoreError(f"`choice` must be one of {CHOICES}, got {choice!r}")
        if not annotator.strip():
            raise StoreError("`annotator` must be a non-empty name")
        item = self.item(item_id)
        n = len(item.responses)
        if not (0 <= left_index < n and 0 <= right_index < n and left_index != right_index):
            raise StoreError(
                f"left/right indices ({left_index}, {right_index}) must be two different responses of 0..{n - 1}"
            )
        preferred = {"left": left_index, "right": right_index}.get(choice)
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO votes (item_id, annotator, choice, left_index, right_index, preferred, note, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, annotator, choice, left_index, right_index, preferred, note, time.time()),
            )
            return int(cur.lastrowid)

    def undo_last(self, session_id: int, annotator: str) -> Vote | None:
        """Withdraw this annotator's latest vote in the session (kept, marked undone)."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT v.* FROM votes v JOIN items i ON i.id = v.item_id WHERE i.session_id = ? AND v.annotator = ? "
                "AND v.undone = 0 ORDER BY v.id DESC LIMIT 1",
                (session_id, annotator),
            ).fetchone()
            if row is not None:
                db.execute("UPDATE votes SET undone = 1 WHERE id = ?", (row["id"],))
            db.execute("COMMIT")
        finally:
            db.close()
        return _vote(row) if row is not None else None

    def votes(self, session_id: int, annotator: str | None = None) -> list[Vote]:
        sql = (
            "SELECT v.* FROM votes v JOIN items i ON i.id = v.item_id WHERE i.session_id = ? AND v.undone = 0"
            + (" AND v.annotator = ?" if annotator else "")
            + " ORDER BY v.id"
        )
        args: tuple[Any, ...] = (session_id, annotator) if annotator else (session_id,)
        with self._db() as db:
            return [_vote(r) for r in db.execute(sql, args).fetchall()]


def _vote(r: sqlite3.Row) -> Vote:
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
