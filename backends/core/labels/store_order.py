"""A session's serving order by a reward model's uncertainty: the scoring run
(backends/methods/uncertainty.py) writes every item's priority and the model's scores in one
transaction; the queue (`items_open`, `NEXT_SQL`) serves the highest priority first to every
annotator, with the usual holds and K. Mixed into `LabelStore`. No torch, no gradio."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager

from backends.core.labels.store_rows import Ordering, StoreError, settings_of


class OrderMixin:
    """The ordering half of `LabelStore` (which provides `tx` and `db`)."""

    def tx(self, durable: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def set_ordering(
        self,
        session_id: int,
        run_id: str,
        model: str,
        scores: dict[int, list[float]],
        priority: dict[int, float],
        now: float | None = None,
    ) -> None:
        """Serve the session's items by `priority` (highest first; items left out go last)
        and record which run and model ordered it, replacing an earlier ordering. An item
        held for someone when the order arrives stays theirs (what their page shows)."""
        with self.tx() as db:
            settings_of(db, session_id)  # refuses an unknown session
            known = {r[0] for r in db.execute("SELECT id FROM items WHERE session_id = ?", (session_id,))}
            foreign = sorted((set(scores) | set(priority)) - known)
            if foreign:
                raise StoreError(f"items {foreign[:10]} are not items of session {session_id}")
            db.execute("UPDATE items SET priority = 0 WHERE session_id = ?", (session_id,))
            db.executemany(
                "UPDATE items SET priority = ? WHERE id = ?",
                [(float(p), item_id) for item_id, p in priority.items()],
            )
            db.execute(
                "INSERT INTO orderings (session_id, run_id, model, scores, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET run_id = excluded.run_id, model = excluded.model, "
                "scores = excluded.scores, created_at = excluded.created_at",
                (
                    session_id,
                    run_id,
                    model,
                    json.dumps({str(k): list(map(float, v)) for k, v in scores.items()}),
                    time.time() if now is None else now,
                ),
            )

    def ordering(self, session_id: int, with_scores: bool = True) -> Ordering | None:
        """The session's ordering, or None when it is served in file order. Without
        `with_scores` the scores are not read (the progress line needs only who ordered it)."""
        cols = "session_id, run_id, model, created_at" + (", scores" if with_scores else "")
        r = self.db().execute(f"SELECT {cols} FROM orderings WHERE session_id = ?", (session_id,)).fetchone()
        if r is None:
            return None
        scores = {int(k): v for k, v in json.loads(r["scores"]).items()} if with_scores else {}
        return Ordering(r["session_id"], r["run_id"], r["model"], r["created_at"], scores)
