"""Serving items to a team, and the writes that change who labels what: leases, votes,
rankings, skips, undo; progress and the recent pace. Mixed into `LabelStore`.

The invariant, checked inside every write transaction (BEGIN IMMEDIATE, so no two claims
interleave): for each item, active labels (`items.nvotes`) plus unexpired leases is at
most the session's K. A claim takes a lease only where a slot is free; a label from the
lease holder turns the lease into a label; a label without a lease (the hold expired, or
a script) is taken only where a slot is free. So an item never gets more than K labels,
and a refused label is refused before anything is written, with the reason.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

from backends.core.store_rows import (
    CHOICES,
    Item,
    Settings,
    StoreError,
    Undone,
    item_of,
    ranking_of,
    settings_of,
    vote_of,
)

# The next open item for an annotator: walks the partial index of open items in serving
# order and stops at the first one this annotator has neither labeled nor skipped and
# that still has a free slot. `{labels}` is the session kind's table (votes or rankings).
_NEXT = """
SELECT i.* FROM items i INDEXED BY items_open
WHERE i.session_id = :sid AND i.done = 0
  AND NOT EXISTS (SELECT 1 FROM {labels} j WHERE j.item_id = i.id AND j.annotator = :who AND j.undone = 0)
  AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.annotator = :who AND s.undone = 0)
  AND i.nvotes + (SELECT COUNT(*) FROM leases l WHERE l.item_id = i.id AND l.expires_at > :now) < :k
ORDER BY i.priority DESC, i.position LIMIT 1
"""


def _item_row(db: sqlite3.Connection, item_id: int) -> sqlite3.Row:
    r = db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
    if r is None:
        raise StoreError(f"no item with id {item_id}")
    return r


def _who(annotator: str) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise StoreError(f"`annotator` must be a non-empty name, got {annotator!r}")
    return annotator


def _free_slots(db: sqlite3.Connection, item: sqlite3.Row, k: int, annotator: str, now: float) -> int:
    """Slots left on the item for someone who does not hold it."""
    held = db.execute(
        "SELECT COUNT(*) FROM leases WHERE item_id = ? AND annotator != ? AND expires_at > ?",
        (item["id"], annotator, now),
    ).fetchone()[0]
    return k - item["nvotes"] - held


def _hold(db: sqlite3.Connection, s: Settings, item_id: int, annotator: str, now: float) -> None:
    """Hold this item for the annotator, and nothing else of theirs in the session."""
    db.execute(
        "DELETE FROM leases WHERE session_id = ? AND annotator = ? AND item_id != ?",
        (s.id, annotator, item_id),
    )
    db.execute(
        "INSERT INTO leases (item_id, annotator, session_id, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (item_id, annotator) DO UPDATE SET expires_at = excluded.expires_at",
        (item_id, annotator, s.id, now + s.lease_seconds),
    )


def _take_slot(db: sqlite3.Connection, s: Settings, item: sqlite3.Row, annotator: str, now: float) -> None:
    """Count one more label on the item, or refuse it (nothing written) with the reason."""
    mine = db.execute(
        f"SELECT 1 FROM {s.labels} WHERE item_id = ? AND annotator = ? AND undone = 0",
        (item["id"], annotator),
    ).fetchone()
    if mine is not None:
        raise StoreError(f"{annotator} has labeled item {item['id']} already; undo that label to change it")
    holds = db.execute(
        "SELECT 1 FROM leases WHERE item_id = ? AND annotator = ? AND expires_at > ?",
        (item["id"], annotator, now),
    ).fetchone()
    if holds is None and _free_slots(db, item, s.k, annotator, now) <= 0:
        raise StoreError(
            f"item {item['id']} has its {s.k} label(s) already, or its last slots are held by the people it "
            "was served to (your hold on it had expired); it was not counted again"
        )
    db.execute("DELETE FROM leases WHERE item_id = ? AND annotator = ?", (item["id"], annotator))
    db.execute(
        "UPDATE items SET nvotes = nvotes + 1, done = (nvotes + 1 >= ?) WHERE id = ?", (s.k, item["id"])
    )


class QueueMixin:
    """The team-labeling half of `LabelStore` (which provides `tx` and `db`)."""

    def tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def next_item(self, session_id: int, annotator: str, now: float | None = None) -> Item | None:
        """The item this annotator should label now, held for them for the session's lease:
        the one they hold already (a reload shows the same item), else the first open item
        (by priority, then position) they have not labeled or skipped that has a free slot."""
        now = time.time() if now is None else now
        _who(annotator)
        with self.tx() as db:
            s = settings_of(db, session_id)
            db.execute("DELETE FROM leases WHERE session_id = ? AND expires_at <= ?", (session_id, now))
            row = db.execute(
                "SELECT i.* FROM leases l JOIN items i ON i.id = l.item_id "
                "WHERE l.session_id = ? AND l.annotator = ? ORDER BY l.expires_at DESC LIMIT 1",
                (session_id, annotator),
            ).fetchone()
            if row is None:
                row = db.execute(
                    _NEXT.format(labels=s.labels), {"sid": session_id, "who": annotator, "now": now, "k": s.k}
                ).fetchone()
            if row is None:
                db.execute(
                    "DELETE FROM leases WHERE session_id = ? AND annotator = ?", (session_id, annotator)
                )
                return None
            _hold(db, s, row["id"], annotator, now)
            return item_of(row)

    def record_vote(
        self,
        item_id: int,
        annotator: str,
        choice: str,
        left_index: int,
        right_index: int,
        note: str = "",
        now: float | None = None,
    ) -> int:
        """Store one vote on a pair session's item; when this returns the vote is on disk."""
        if choice not in CHOICES:
            raise StoreError(f"`choice` must be one of {CHOICES}, got {choice!r}")
        _who(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = _item_row(db, item_id)
            s = settings_of(db, item["session_id"])
            if s.kind != "pair":
                raise StoreError(f"session {s.id} ranks its answers: send a ranking, not a {choice!r} vote")
            n = len(json.loads(item["responses"]))
            if not (0 <= left_index < n and 0 <= right_index < n and left_index != right_index):
                raise StoreError(
                    f"left/right indices ({left_index}, {right_index}) must be two different responses of 0..{n - 1}"
                )
            _take_slot(db, s, item, annotator, now)
            preferred = {"left": left_index, "right": right_index}.get(choice)
            cur = db.execute(
                "INSERT INTO votes (session_id, item_id, annotator, choice, left_index, right_index, preferred, "
                "note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, item_id, annotator, choice, left_index, right_index, preferred, note, now),
            )
            return int(cur.lastrowid)

    def record_ranking(
        self,
        item_id: int,
        annotator: str,
        ranks: Sequence[int],
        shown: Sequence[int] | None = None,
        note: str = "",
        now: float | None = None,
    ) -> int:
        """Store one annotator's order of a ranking item's responses: `ranks[i]` is response
        i's tier (0 = best; equal tiers are ties, tiers numbered 0, 1, 2 ... without gaps)."""
        _who(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = _item_row(db, item_id)
            s = settings_of(db, item["session_id"])
            if s.kind != "ranking":
                raise StoreError(f"session {s.id} compares pairs: send a vote, not a ranking")
            n = len(json.loads(item["responses"]))
            ranks = list(ranks)
            shown = list(range(n)) if shown is None else list(shown)
            if (
                len(ranks) != n
                or not all(isinstance(r, int) for r in ranks)
                or set(ranks) != set(range(max(ranks) + 1))
            ):
                raise StoreError(
                    f"`ranks` must give each of the {n} responses a tier 0, 1, 2 ... (no gaps), got {ranks}"
                )
            if sorted(shown) != list(range(n)):
                raise StoreError(f"`shown` must be an order of the responses 0..{n - 1}, got {shown}")
            _take_slot(db, s, item, annotator, now)
            cur = db.execute(
                "INSERT INTO rankings (session_id, item_id, annotator, ranks, shown, note, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (s.id, item_id, annotator, json.dumps(ranks), json.dumps(shown), note, now),
            )
            return int(cur.lastrowid)

    def skip(self, item_id: int, annotator: str, shown: Sequence[int] = (), now: float | None = None) -> int:
        """This annotator passes on the item for good (until they undo it); it goes to others."""
        _who(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = _item_row(db, item_id)
            s = settings_of(db, item["session_id"])
            labeled = db.execute(
                f"SELECT 1 FROM {s.labels} WHERE item_id = ? AND annotator = ? AND undone = 0",
                (item_id, annotator),
            ).fetchone()
            if labeled is not None:
                raise StoreError(f"{annotator} has labeled item {item_id} already; there is nothing to skip")
            db.execute("DELETE FROM leases WHERE item_id = ? AND annotator = ?", (item_id, annotator))
            old = db.execute(
                "SELECT id FROM skips WHERE item_id = ? AND annotator = ? AND undone = 0",
                (item_id, annotator),
            ).fetchone()
            if old is not None:
                return int(old[0])
            cur = db.execute(
                "INSERT INTO skips (session_id, item_id, annotator, shown, created_at) VALUES (?, ?, ?, ?, ?)",
                (s.id, item_id, annotator, json.dumps(list(shown)), now),
            )
            return int(cur.lastrowid)

    def undo_last(self, session_id: int, annotator: str, now: float | None = None) -> Undone | None:
        """Take back this annotator's latest action in the session, a label or a skip (kept,
        marked undone). Its item is held for them again, so they can label it anew."""
        now = time.time() if now is None else now
        with self.tx() as db:
            s = settings_of(db, session_id)
            label = db.execute(
                f"SELECT * FROM {s.labels} WHERE session_id = ? AND annotator = ? AND undone = 0 "
                "ORDER BY id DESC LIMIT 1",
                (session_id, annotator),
            ).fetchone()
            skip = db.execute(
                "SELECT * FROM skips WHERE session_id = ? AND annotator = ? AND undone = 0 ORDER BY id DESC LIMIT 1",
                (session_id, annotator),
            ).fetchone()
            if label is None and skip is None:
                return None
            if skip is not None and (label is None or skip["created_at"] >= label["created_at"]):
                db.execute("UPDATE skips SET undone = 1 WHERE id = ?", (skip["id"],))
                db.execute(
                    "DELETE FROM leases WHERE session_id = ? AND annotator = ?", (session_id, annotator)
                )
                item = _item_row(db, skip["item_id"])
                labeled = db.execute(
                    f"SELECT 1 FROM {s.labels} WHERE item_id = ? AND annotator = ? AND undone = 0",
                    (item["id"], annotator),
                ).fetchone()
                held = labeled is None and _free_slots(db, item, s.k, annotator, now) > 0
                if held:
                    _hold(db, s, item["id"], annotator, now)
                return Undone("skip", item["id"], json.loads(skip["shown"]), "", held, None)
            db.execute(f"UPDATE {s.labels} SET undone = 1 WHERE id = ?", (label["id"],))
            db.execute(
                "UPDATE items SET nvotes = nvotes - 1, done = (nvotes - 1 >= ?) WHERE id = ?",
                (s.k, label["item_id"]),
            )
            _hold(db, s, label["item_id"], annotator, now)
            if s.kind == "pair":
                vote = vote_of(label)
                return Undone(
                    "vote", vote.item_id, [vote.left_index, vote.right_index], vote.note, True, vote
                )
            ranking = ranking_of(label)
            return Undone("ranking", ranking.item_id, ranking.shown, ranking.note, True, ranking)
