"""Preference labels in SQLite (WAL): labeling sessions, items, and every annotator's votes,
rankings and skips.

A vote is durable when `record_vote` returns (synchronous=FULL, one transaction per vote),
so a crash right after the UI acknowledges it loses nothing. Several annotators (processes
or threads) write at once; SQLite serialises the writers and nobody overwrites anybody:
each vote is its own row, with who and when.

Team labeling: a session's `votes_per_item` K says how many people label each item. An
annotator is served the next open item they have not labeled or skipped, and that item is
held for them (a lease) so two people never both fill its last slot; at K votes it is
complete and leaves the queue. Serving, votes, skips and undo live in
`backends.core.labels.store_queue`; agreement statistics and export in `backends.core.labels.agreement`;
an order by a reward model's uncertainty in `backends.core.labels.store_order`.
A pair session shows two responses in random left/right order (the vote stores which was
left, so position bias can be measured); a ranking session shows 2 to 9 and stores the
annotator's order. No torch, no gradio.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from backends.core.labels.store_order import OrderMixin
from backends.core.labels.store_queue import QueueMixin
from backends.core.labels.store_reads import ReadsMixin
from backends.core.labels.store_rows import (
    CHOICES,
    KINDS,
    MAX_GUIDELINES,
    MAX_RANKED,
    MAX_SESSION_NAME,
    MAX_VOTES_PER_ITEM,
    AnnotatorProgress,
    Choice,
    Item,
    Kind,
    Ordering,
    Progress,
    Ranking,
    Session,
    StoreError,
    Undone,
    Vote,
    item_of,
    session_of,
)
from backends.core.labels.store_schema import migrate

__all__ = [
    "AnnotatorProgress",
    "CHOICES",
    "Choice",
    "Item",
    "KINDS",
    "Kind",
    "LabelStore",
    "MAX_RANKED",
    "MAX_VOTES_PER_ITEM",
    "Ordering",
    "Progress",
    "Ranking",
    "Session",
    "StoreError",
    "Undone",
    "Vote",
]


class LabelStore(QueueMixin, ReadsMixin, OrderMixin):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Writers of this process queue here, in order, instead of in SQLite's busy handler,
        # which sleeps with growing back-off (up to 100 ms) while another writer commits.
        # Other processes are still serialised by SQLite's own lock.
        self._write_lock = threading.Lock()
        with self.tx() as db:
            migrate(db)

    # --- connections -------------------------------------------------------------------
    def db(self) -> sqlite3.Connection:
        """This thread's connection (gradio handlers run on a pool of long-lived threads;
        opening a connection and setting its pragmas costs more than a vote)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # durable when the commit returns
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE): reads inside it see the state
        the writes will apply to, so a claim can never race another claim. `durable=False`
        skips the fsync of this commit (WAL, synchronous=NORMAL): for writes that may be lost
        in a crash, such as holding an item; the next durable commit syncs them too."""
        db = self.db()
        with self._write_lock:
            if not durable:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if not durable:
                    db.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one consistent state."""
        db = self.db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    # --- sessions ------------------------------------------------------------------------
    def create_session(
        self,
        name: str,
        items: list[dict[str, Any]],
        source: str = "",
        *,
        kind: str = "pair",
        votes_per_item: int = 1,
        guidelines: str = "",
        owner: str = "",
        lease_seconds: float = 600.0,
    ) -> int:
        """Items are {"prompt", "responses": [two or more], "meta"?}. Returns the session id."""
        problems = []
        if kind not in KINDS:
            problems.append(f"`kind` must be one of {KINDS}, got {kind!r}")
        if (
            not isinstance(votes_per_item, int)
            or isinstance(votes_per_item, bool)
            or not 1 <= votes_per_item <= MAX_VOTES_PER_ITEM
        ):
            problems.append(
                f"`votes_per_item` must be a whole number from 1 to {MAX_VOTES_PER_ITEM}, got {votes_per_item!r:.40}"
            )
        if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_SESSION_NAME:
            problems.append(
                f"the session name must have 1 to {MAX_SESSION_NAME} characters, got {len(str(name))}"
            )
        if len(guidelines) > MAX_GUIDELINES:
            problems.append(f"guidelines have {len(guidelines)} characters; at most {MAX_GUIDELINES}")
        if not isinstance(lease_seconds, int | float) or not lease_seconds > 0:
            problems.append(f"`lease_seconds` must be > 0, got {lease_seconds!r}")
        most = MAX_RANKED if kind == "ranking" else None
        for i, it in enumerate(items):
            responses = it.get("responses")
            if not isinstance(responses, list) or len(responses) < 2:
                problems.append(
                    f"item {i}: `responses` must list at least two responses, got {responses!r:.80}"
                )
            elif most is not None and len(responses) > most:
                problems.append(f"item {i}: a ranking shows 2 to {most} responses, got {len(responses)}")
        if not items:
            problems.append("a labeling session needs at least one item")
        if problems:
            raise StoreError("; ".join(problems[:10]))
        with self.tx() as db:
            try:
                cur = db.execute(
                    "INSERT INTO sessions (name, source, created_at, kind, votes_per_item, guidelines, owner, "
                    "lease_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        source,
                        time.time(),
                        kind,
                        votes_per_item,
                        guidelines,
                        owner,
                        float(lease_seconds),
                    ),
                )
            except sqlite3.IntegrityError:
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
            return sid

    def sessions(self) -> list[Session]:
        rows = (
            self.db()
            .execute(
                "SELECT s.*, (SELECT COUNT(*) FROM items i WHERE i.session_id = s.id) AS items "
                "FROM sessions s ORDER BY s.id"
            )
            .fetchall()
        )
        return [session_of(r) for r in rows]

    def session(self, session_id: int) -> Session:
        r = (
            self.db()
            .execute(
                "SELECT s.*, (SELECT COUNT(*) FROM items i WHERE i.session_id = s.id) AS items "
                "FROM sessions s WHERE s.id = ?",
                (session_id,),
            )
            .fetchone()
        )
        if r is None:
            raise StoreError(f"no labeling session with id {session_id}")
        return session_of(r)

    def session_id(self, name: str) -> int:
        row = self.db().execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no labeling session named {name!r}")
        return int(row["id"])

    def set_guidelines(self, session_id: int, text: str, who: str) -> None:
        """Only the session's owner edits its guidelines (anyone, for a session without one)."""
        with self.tx() as db:
            row = db.execute("SELECT owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise StoreError(f"no labeling session with id {session_id}")
            if row["owner"] and row["owner"] != who:
                raise StoreError(
                    f"only the session's owner ({row['owner']}) may edit its guidelines, not {who!r}"
                )
            db.execute("UPDATE sessions SET guidelines = ? WHERE id = ?", (text, session_id))

    def set_priority(self, session_id: int, priority: dict[int, float]) -> None:
        """Serve these items first, highest first (e.g. a reward model's uncertainty)."""
        with self.tx() as db:
            db.executemany(
                "UPDATE items SET priority = ? WHERE id = ? AND session_id = ?",
                [(float(p), item_id, session_id) for item_id, p in priority.items()],
            )

    # --- items ---------------------------------------------------------------------------
    def items(self, session_id: int) -> list[Item]:
        rows = (
            self.db()
            .execute("SELECT * FROM items WHERE session_id = ? ORDER BY position", (session_id,))
            .fetchall()
        )
        return [item_of(r) for r in rows]

    def item(self, item_id: int) -> Item:
        r = self.db().execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if r is None:
            raise StoreError(f"no item with id {item_id}")
        return item_of(r)

    @staticmethod
    def pair_order(item: Item, rng: random.Random) -> tuple[int, int]:
        """Which two responses to show, in random left/right order."""
        a, b = rng.sample(range(len(item.responses)), 2) if len(item.responses) > 2 else (0, 1)
        return (a, b) if rng.random() < 0.5 else (b, a)
