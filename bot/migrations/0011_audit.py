# casebot: python migration
"""The audit chain (bot/audit.py) and erasure of personal data.

- ``events`` is rebuilt: its free text (``note``) moves to ``event_texts`` with a random salt, the
  event keeping only the commitment SHA-256(salt ‖ text) (``note_commit``); each event gets its
  place in the chain (``seq``), the hash of its case's previous event (``case_prev``), of the
  chain's previous row (``prev``) and its own (``hash``), computed here for the existing events
  in id order.
- ``audit_log``: the changes to grants, invitations and chat bindings (row images), in the same
  chain; the rows as they are at this upgrade are recorded first ("baseline").
- ``audit_head``: the chain's last position and hash; ``audit_days``: the daily verification.
- ``cases.erased_at``: when the case's personal data was erased.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.audit import GENESIS, Chain, record_all

if TYPE_CHECKING:
    from bot.db import Conn

SCHEMA = [
    "ALTER TABLE cases ADD COLUMN erased_at TEXT",
    # The history, chained. Rows are never changed or removed: triggers below refuse it.
    """CREATE TABLE events_chained (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    note_commit TEXT,                  -- SHA-256(salt || text) of its free text (event_texts); NULL: none
    seq         INTEGER NOT NULL UNIQUE,  -- its place in the audit chain (shared with audit_log)
    case_prev   TEXT NOT NULL,         -- hash of the case's previous event
    prev        TEXT NOT NULL,         -- hash of the chain's previous row
    hash        TEXT NOT NULL
)""",
]

AFTER = [
    "CREATE INDEX events_case ON events(case_id, id)",
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'events are immutable'); END",
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    " BEGIN SELECT RAISE(ABORT, 'events are immutable'); END",
    # The events' free texts: personal data, erasable; never changed (only removed by an erasure).
    """CREATE TABLE event_texts (
    event_id    INTEGER PRIMARY KEY REFERENCES events(id),
    salt        TEXT NOT NULL,         -- 16 random bytes, hex
    text        TEXT NOT NULL
)""",
    "CREATE TRIGGER event_texts_no_update BEFORE UPDATE ON event_texts"
    " BEGIN SELECT RAISE(ABORT, 'event texts are never changed, only erased'); END",
    # Changes to the records that decide rights: images of the rows after each change.
    """CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,         -- grant, revoke, invite, invitation_used, bind, baseline …
    data        TEXT NOT NULL,         -- {"table", "key", "row": the row after the change, or null}
    seq         INTEGER NOT NULL UNIQUE,
    prev        TEXT NOT NULL,
    hash        TEXT NOT NULL
)""",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is immutable'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is immutable'); END",
    """CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL
)""",
    "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq <= OLD.seq"
    " BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head"
    " BEGIN SELECT RAISE(ABORT, 'the audit head is never removed'); END",
    # One verification a day (local date), with the head published that day.
    """CREATE TABLE audit_days (
    day         TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    head        TEXT NOT NULL,
    checked_at  TEXT NOT NULL,
    problems    INTEGER NOT NULL
)""",
]

# Before the rebuilt table takes the old one's name. DROP TABLE deletes the rows first (foreign
# keys are on): the triggers must go before.
DROP = ["DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete", "DROP TABLE events",
        "ALTER TABLE events_chained RENAME TO events"]

BATCH = 5000


def migrate(conn: sqlite3.Connection) -> None:
    rebuild(conn, SCHEMA, DROP, AFTER)


def rebuild(conn: Conn, schema: list[str], drop: list[str], after: list[str]) -> None:
    """The migration on either store (bot/migrations_pg/0011_audit.py: PostgreSQL's own DDL)."""
    for statement in schema:
        conn.execute(statement)
    chain = Chain()
    texts: list[tuple[int, str, str]] = []
    rows = conn.execute(
        "SELECT id, case_id, at, actor_id, actor_name, action, from_status, to_status, note, data"
        " FROM events ORDER BY id")
    insert = ("INSERT INTO events_chained(id, case_id, at, actor_id, actor_name, action, from_status,"
              " to_status, data, note_commit, seq, case_prev, prev, hash)"
              " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    while batch := rows.fetchmany(BATCH):
        out = []
        for event_id, case_id, at, actor_id, actor_name, action, from_status, to_status, note, data in batch:
            values, text = chain.event(case_id, at, actor_id, actor_name, action, from_status,
                                       to_status, note or "", data)
            out.append((event_id, case_id, at, actor_id, actor_name, action, from_status,
                        to_status, data, *values))
            if text is not None:
                texts.append((event_id, *text))
        conn.executemany(insert, out)
    for statement in drop:
        conn.execute(statement)
    for statement in after:
        conn.execute(statement)
    conn.executemany("INSERT INTO event_texts(event_id, salt, text) VALUES(?,?,?)", texts)
    record_all(conn, datetime.now(UTC).isoformat(timespec="seconds"), "baseline", chain)
    conn.execute("INSERT INTO audit_head(id, seq, hash) VALUES(1, ?, ?)", (chain.seq, chain.hash))
    assert chain.hash != GENESIS or chain.seq == 0
