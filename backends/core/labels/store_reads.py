"""Reading the label store: labels, sessions' progress and the team's pace, who labeled
what. Mixed into `LabelStore`. No torch, no gradio."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from backends.core.labels.store_rows import (
    AnnotatorProgress,
    Progress,
    Ranking,
    Vote,
    ranking_of,
    settings_of,
    vote_of,
)

PACE_WINDOW = 900.0  # seconds of recent labels the pace (and the ETA) is taken from


class ReadsMixin:
    """The reading half of `LabelStore` (which provides `db` and `snapshot`)."""

    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def last_session(self, annotator: str) -> int | None:
        """The session this annotator last voted, ranked or skipped in."""
        row = (
            self.db()
            .execute(
                "SELECT session_id, MAX(t) FROM ("
                "SELECT session_id, MAX(created_at) AS t FROM votes WHERE annotator = ? "
                "UNION ALL SELECT session_id, MAX(created_at) FROM rankings WHERE annotator = ? "
                "UNION ALL SELECT session_id, MAX(created_at) FROM skips WHERE annotator = ?)",
                (annotator, annotator, annotator),
            )
            .fetchone()
        )
        return int(row[0]) if row is not None and row[0] is not None else None

    def complete_items(self, session_id: int) -> set[int]:
        rows = self.db().execute("SELECT id FROM items WHERE session_id = ? AND done = 1", (session_id,))
        return {r[0] for r in rows}

    # --- reading labels ------------------------------------------------------------------
    def votes(self, session_id: int, annotator: str | None = None, complete_only: bool = False) -> list[Vote]:
        sql = "SELECT v.* FROM votes v WHERE v.session_id = ? AND v.undone = 0"
        args: list[Any] = [session_id]
        if annotator:
            sql, args = sql + " AND v.annotator = ?", [*args, annotator]
        if complete_only:
            sql += " AND v.item_id IN (SELECT id FROM items WHERE session_id = v.session_id AND done = 1)"
        return [vote_of(r) for r in self.db().execute(sql + " ORDER BY v.id", args).fetchall()]

    def rankings(
        self, session_id: int, annotator: str | None = None, complete_only: bool = False
    ) -> list[Ranking]:
        sql = "SELECT r.* FROM rankings r WHERE r.session_id = ? AND r.undone = 0"
        args: list[Any] = [session_id]
        if annotator:
            sql, args = sql + " AND r.annotator = ?", [*args, annotator]
        if complete_only:
            sql += " AND r.item_id IN (SELECT id FROM items WHERE session_id = r.session_id AND done = 1)"
        return [ranking_of(r) for r in self.db().execute(sql + " ORDER BY r.id", args).fetchall()]

    def progress(self, session_id: int, annotator: str, now: float | None = None) -> Progress:
        """The session's items by state, this annotator's labels and skips, and an ETA from
        the team's pace over the last `PACE_WINDOW` seconds."""
        now = time.time() if now is None else now
        with self.snapshot() as db:
            s = settings_of(db, session_id)
            total, complete, started, needed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(done), 0), COALESCE(SUM(done = 0 AND nvotes > 0), 0), "
                "COALESCE(SUM(CASE WHEN done = 0 THEN MAX(? - nvotes, 0) ELSE 0 END), 0) "
                "FROM items WHERE session_id = ?",
                (s.k, session_id),
            ).fetchone()
            held = db.execute(
                "SELECT COUNT(DISTINCT l.item_id) FROM leases l JOIN items i ON i.id = l.item_id "
                "WHERE l.session_id = ? AND l.expires_at > ? AND i.nvotes = 0",
                (session_id, now),
            ).fetchone()[0]
            mine = db.execute(
                f"SELECT COUNT(*) FROM {s.labels} WHERE session_id = ? AND annotator = ? AND undone = 0",
                (session_id, annotator),
            ).fetchone()[0]
            skips = db.execute(
                "SELECT COUNT(*) FROM skips WHERE session_id = ? AND annotator = ? AND undone = 0",
                (session_id, annotator),
            ).fetchone()[0]
            recent = [
                r[0]
                for r in db.execute(
                    f"SELECT created_at FROM {s.labels} WHERE session_id = ? AND created_at > ? AND undone = 0",
                    (session_id, now - PACE_WINDOW),
                )
            ]
        pace = eta = None
        if len(recent) >= 3:
            # From the oldest recent label to now, and at least a minute: a pause slows the
            # pace down, and three quick first votes do not promise an absurd ETA.
            pace = 3600.0 * len(recent) / max(now - min(recent), 60.0)
            eta = 3600.0 * needed / pace
        in_progress = started + held
        return Progress(
            total, complete, in_progress, total - complete - in_progress, needed, mine, skips, pace, eta
        )

    def annotators(self, session_id: int) -> list[AnnotatorProgress]:
        """Everyone who labeled or skipped in the session: labels, skips, last action."""
        db = self.db()
        s = settings_of(db, session_id)
        rows = db.execute(
            "SELECT annotator, SUM(n), SUM(k), MAX(t) FROM ("
            f"SELECT annotator, COUNT(*) AS n, 0 AS k, MAX(created_at) AS t FROM {s.labels} "
            "WHERE session_id = ? AND undone = 0 GROUP BY annotator UNION ALL "
            "SELECT annotator, 0, COUNT(*), MAX(created_at) FROM skips WHERE session_id = ? AND undone = 0 "
            "GROUP BY annotator) GROUP BY annotator ORDER BY annotator",
            (session_id, session_id),
        ).fetchall()
        return [AnnotatorProgress(r[0], r[1], r[2], r[3]) for r in rows]
