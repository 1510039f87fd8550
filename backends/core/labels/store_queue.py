"""Serving items to a team, and the writes that change who labels what: votes, rankings,
skips, undo. Mixed into `LabelStore`; the slot accounting they share (and its invariant)
is in `backends.core.labels.store_slots`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

from backends.core.labels.store_rows import (
    CHOICES,
    Item,
    StoreError,
    Undone,
    ranking_of,
    settings_of,
    vote_of,
)
from backends.core.labels.store_slots import check_annotator, claim, free_slots, hold, item_row, take_slot


class QueueMixin:
    """The team-labeling half of `LabelStore` (which provides `tx` and `db`)."""

    def tx(self, durable: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def next_item(self, session_id: int, annotator: str, now: float | None = None) -> Item | None:
        """The item this annotator should label now, held for them for the session's lease:
        the one they hold already (a reload shows the same item), else the first open item
        (by priority, then position) they have not labeled or skipped that has a free slot.
        A hold is not worth an fsync: lost in a crash, the item is simply served again."""
        now = time.time() if now is None else now
        check_annotator(annotator)
        with self.tx(durable=False) as db:
            return claim(db, settings_of(db, session_id), annotator, now)

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
        return self._vote(False, item_id, annotator, choice, left_index, right_index, note, now)[0]

    def vote_and_next(
        self,
        item_id: int,
        annotator: str,
        choice: str,
        left_index: int,
        right_index: int,
        note: str = "",
        now: float | None = None,
    ) -> tuple[int, Item | None]:
        """`record_vote`, then `next_item` in the same transaction: one commit (one fsync)."""
        return self._vote(True, item_id, annotator, choice, left_index, right_index, note, now)

    def _vote(
        self,
        serve: bool,
        item_id: int,
        annotator: str,
        choice: str,
        left_index: int,
        right_index: int,
        note: str,
        now: float | None,
    ) -> tuple[int, Item | None]:
        if choice not in CHOICES:
            raise StoreError(f"`choice` must be one of {CHOICES}, got {choice!r}")
        check_annotator(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = item_row(db, item_id)
            s = settings_of(db, item["session_id"])
            if s.kind != "pair":
                raise StoreError(f"session {s.id} ranks its answers: send a ranking, not a {choice!r} vote")
            n = len(json.loads(item["responses"]))
            if not (0 <= left_index < n and 0 <= right_index < n and left_index != right_index):
                raise StoreError(
                    f"left/right indices ({left_index}, {right_index}) must be two different responses of 0..{n - 1}"
                )
            take_slot(db, s, item, annotator, now)
            preferred = {"left": left_index, "right": right_index}.get(choice)
            cur = db.execute(
                "INSERT INTO votes (session_id, item_id, annotator, choice, left_index, right_index, preferred, "
                "note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, item_id, annotator, choice, left_index, right_index, preferred, note, now),
            )
            return int(cur.lastrowid), claim(db, s, annotator, now) if serve else None

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
        return self._rank(False, item_id, annotator, ranks, shown, note, now)[0]

    def rank_and_next(
        self,
        item_id: int,
        annotator: str,
        ranks: Sequence[int],
        shown: Sequence[int] | None = None,
        note: str = "",
        now: float | None = None,
    ) -> tuple[int, Item | None]:
        """`record_ranking`, then `next_item` in the same transaction."""
        return self._rank(True, item_id, annotator, ranks, shown, note, now)

    def _rank(
        self,
        serve: bool,
        item_id: int,
        annotator: str,
        ranks: Sequence[int],
        shown: Sequence[int] | None,
        note: str,
        now: float | None,
    ) -> tuple[int, Item | None]:
        check_annotator(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = item_row(db, item_id)
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
            take_slot(db, s, item, annotator, now)
            cur = db.execute(
                "INSERT INTO rankings (session_id, item_id, annotator, ranks, shown, note, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (s.id, item_id, annotator, json.dumps(ranks), json.dumps(shown), note, now),
            )
            return int(cur.lastrowid), claim(db, s, annotator, now) if serve else None

    def skip(self, item_id: int, annotator: str, shown: Sequence[int] = (), now: float | None = None) -> int:
        """This annotator passes on the item for good (until they undo it); it goes to others."""
        return self._skip(False, item_id, annotator, shown, now)[0]

    def skip_and_next(
        self, item_id: int, annotator: str, shown: Sequence[int] = (), now: float | None = None
    ) -> tuple[int, Item | None]:
        """`skip`, then `next_item` in the same transaction."""
        return self._skip(True, item_id, annotator, shown, now)

    def _skip(
        self, serve: bool, item_id: int, annotator: str, shown: Sequence[int], now: float | None
    ) -> tuple[int, Item | None]:
        check_annotator(annotator)
        now = time.time() if now is None else now
        with self.tx() as db:
            item = item_row(db, item_id)
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
                skip_id = int(old[0])
            else:
                skip_id = db.execute(
                    "INSERT INTO skips (session_id, item_id, annotator, shown, created_at) VALUES (?, ?, ?, ?, ?)",
                    (s.id, item_id, annotator, json.dumps(list(shown)), now),
                ).lastrowid
            return int(skip_id), claim(db, s, annotator, now) if serve else None

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
                item = item_row(db, skip["item_id"])
                labeled = db.execute(
                    f"SELECT 1 FROM {s.labels} WHERE item_id = ? AND annotator = ? AND undone = 0",
                    (item["id"], annotator),
                ).fetchone()
                held = labeled is None and free_slots(db, item, s.k, annotator, now) > 0
                if held:
                    hold(db, s, item["id"], annotator, now)
                return Undone("skip", item["id"], json.loads(skip["shown"]), "", held, None)
            db.execute(f"UPDATE {s.labels} SET undone = 1 WHERE id = ?", (label["id"],))
            db.execute(
                "UPDATE items SET nvotes = nvotes - 1, done = (nvotes - 1 >= ?) WHERE id = ?",
                (s.k, label["item_id"]),
            )
            hold(db, s, label["item_id"], annotator, now)
            if s.kind == "pair":
                vote = vote_of(label)
                return Undone(
                    "vote", vote.item_id, [vote.left_index, vote.right_index], vote.note, True, vote
                )
            ranking = ranking_of(label)
            return Undone("ranking", ranking.item_id, ranking.shown, ranking.note, True, ranking)
