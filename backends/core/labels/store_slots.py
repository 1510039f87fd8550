"""Slots on an item: which item to serve next, holding it for its annotator (a lease), and
counting a label against the item's K. Functions that run inside a write transaction of
`LabelStore`; the public writes are in `backends.core.labels.store_queue`.

The invariant, checked inside every write transaction (BEGIN IMMEDIATE, so no two claims
interleave): for each item, active labels (`items.nvotes`) plus unexpired leases is at
most the session's K. A claim takes a lease only where a slot is free; a label from the
lease holder turns the lease into a label; a label without a lease (the hold expired, or
a script) is taken only where a slot is free. So an item never gets more than K labels,
and a refused label is refused before anything is written, with the reason.
"""

from __future__ import annotations

import sqlite3

from backends.core.labels.store_rows import Item, Settings, StoreError, item_of

# The next open item for an annotator: walks the partial index of open items in serving
# order and stops at the first one this annotator has neither labeled nor skipped and
# that still has a free slot. `{labels}` is the session kind's table (votes or rankings).
NEXT_SQL = """
SELECT i.* FROM items i INDEXED BY items_open
WHERE i.session_id = :sid AND i.done = 0
  AND NOT EXISTS (SELECT 1 FROM {labels} j WHERE j.item_id = i.id AND j.annotator = :who AND j.undone = 0)
  AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.annotator = :who AND s.undone = 0)
  AND i.nvotes + (SELECT COUNT(*) FROM leases l WHERE l.item_id = i.id AND l.expires_at > :now) < :k
ORDER BY i.priority DESC, i.position LIMIT 1
"""


def item_row(db: sqlite3.Connection, item_id: int) -> sqlite3.Row:
    r = db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
    if r is None:
        raise StoreError(f"no item with id {item_id}")
    return r


def check_annotator(annotator: str) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise StoreError(f"`annotator` must be a non-empty name, got {annotator!r}")
    return annotator


def free_slots(db: sqlite3.Connection, item: sqlite3.Row, k: int, annotator: str, now: float) -> int:
    """Slots left on the item for someone who does not hold it."""
    held = db.execute(
        "SELECT COUNT(*) FROM leases WHERE item_id = ? AND annotator != ? AND expires_at > ?",
        (item["id"], annotator, now),
    ).fetchone()[0]
    return k - item["nvotes"] - held


def hold(db: sqlite3.Connection, s: Settings, item_id: int, annotator: str, now: float) -> None:
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


def take_slot(db: sqlite3.Connection, s: Settings, item: sqlite3.Row, annotator: str, now: float) -> None:
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
    if holds is None and free_slots(db, item, s.k, annotator, now) <= 0:
        raise StoreError(
            f"item {item['id']} has its {s.k} label(s) already, or its last slots are held by the people it "
            "was served to (your hold on it had expired); it was not counted again"
        )
    db.execute("DELETE FROM leases WHERE item_id = ? AND annotator = ?", (item["id"], annotator))
    db.execute(
        "UPDATE items SET nvotes = nvotes + 1, done = (nvotes + 1 >= ?) WHERE id = ?", (s.k, item["id"])
    )


def claim(db: sqlite3.Connection, s: Settings, annotator: str, now: float) -> Item | None:
    """Inside a write transaction: the item to serve this annotator, now held for them."""
    db.execute("DELETE FROM leases WHERE session_id = ? AND expires_at <= ?", (s.id, now))
    row = db.execute(
        "SELECT i.* FROM leases l JOIN items i ON i.id = l.item_id "
        "WHERE l.session_id = ? AND l.annotator = ? ORDER BY l.expires_at DESC LIMIT 1",
        (s.id, annotator),
    ).fetchone()
    if row is None:
        row = db.execute(
            NEXT_SQL.format(labels=s.labels), {"sid": s.id, "who": annotator, "now": now, "k": s.k}
        ).fetchone()
    if row is None:
        db.execute("DELETE FROM leases WHERE session_id = ? AND annotator = ?", (s.id, annotator))
        return None
    hold(db, s, row["id"], annotator, now)
    return item_of(row)
