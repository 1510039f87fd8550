"""The label store's SQLite schema, and the migration of a database written by an older
studio (sessions without kind / K / guidelines, votes without session_id, no skips, leases,
rankings or orderings). No torch, no gradio.

Why the counters: `items.nvotes` (active votes or rankings) and `items.done` (nvotes >= the
session's K) are kept in the same transaction as every vote and undo, so serving the next
item walks the partial index `items_open` (open items only, in serving order) instead of
counting votes over the whole session.

`orderings` holds, per session, the reward-model run that last set its items' `priority`
(backends/methods/uncertainty.py) and that model's score of every response, for the
agreement view.
"""

from __future__ import annotations

import sqlite3

_TABLES = """
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
CREATE TABLE IF NOT EXISTS rankings (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    item_id INTEGER NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    ranks TEXT NOT NULL, shown TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS skips (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    item_id INTEGER NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    shown TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orderings (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id), run_id TEXT NOT NULL, model TEXT NOT NULL,
    scores TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    item_id INTEGER NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    session_id INTEGER NOT NULL REFERENCES sessions(id), expires_at REAL NOT NULL,
    PRIMARY KEY (item_id, annotator)
);
"""

# Columns added after the first release: (table, column, declaration, backfill SQL or None).
_ADDED = (
    ("sessions", "kind", "TEXT NOT NULL DEFAULT 'pair'", None),
    ("sessions", "votes_per_item", "INTEGER NOT NULL DEFAULT 1", None),
    ("sessions", "guidelines", "TEXT NOT NULL DEFAULT ''", None),
    ("sessions", "owner", "TEXT NOT NULL DEFAULT ''", None),
    ("sessions", "lease_seconds", "REAL NOT NULL DEFAULT 600", None),
    ("items", "priority", "REAL NOT NULL DEFAULT 0", None),
    (
        "items",
        "nvotes",
        "INTEGER NOT NULL DEFAULT 0",
        "UPDATE items SET nvotes = (SELECT COUNT(*) FROM votes v WHERE v.item_id = items.id AND v.undone = 0)",
    ),
    (
        "items",
        "done",
        "INTEGER NOT NULL DEFAULT 0",
        "UPDATE items SET done = nvotes >= (SELECT votes_per_item FROM sessions s WHERE s.id = items.session_id)",
    ),
    (
        "votes",
        "session_id",
        "INTEGER REFERENCES sessions(id)",
        "UPDATE votes SET session_id = (SELECT session_id FROM items i WHERE i.id = votes.item_id)",
    ),
)

_INDEXES = """
CREATE INDEX IF NOT EXISTS items_session ON items(session_id, position);
CREATE INDEX IF NOT EXISTS items_open ON items(session_id, priority DESC, position) WHERE done = 0;
CREATE INDEX IF NOT EXISTS votes_by_item ON votes(item_id, annotator, undone);
CREATE INDEX IF NOT EXISTS votes_session ON votes(session_id, annotator, undone);
CREATE INDEX IF NOT EXISTS votes_recent ON votes(session_id, created_at);
CREATE INDEX IF NOT EXISTS rankings_item ON rankings(item_id, annotator, undone);
CREATE INDEX IF NOT EXISTS rankings_session ON rankings(session_id, annotator, undone);
CREATE INDEX IF NOT EXISTS rankings_recent ON rankings(session_id, created_at);
CREATE INDEX IF NOT EXISTS skips_item ON skips(item_id, annotator, undone);
CREATE INDEX IF NOT EXISTS skips_session ON skips(session_id, annotator, undone);
CREATE INDEX IF NOT EXISTS leases_session ON leases(session_id, annotator);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases(session_id, expires_at);
"""


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables, add the columns an older database lacks (backfilling them from its
    votes), then the indexes. Runs inside the caller's write transaction; idempotent."""
    for statement in _TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    for table, column, decl, backfill in _ADDED:
        present = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            if backfill:
                db.execute(backfill)
    # The first release's indexes on votes; the wider ones below replace them.
    db.execute("DROP INDEX IF EXISTS votes_item")
    db.execute("DROP INDEX IF EXISTS votes_annotator")
    for statement in _INDEXES.split(";"):
        if statement.strip():
            db.execute(statement)
