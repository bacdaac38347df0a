"""The outbox's ``messenger`` rows (bot/domain/citizens.py ``queue_to_citizen`` writes them): one
lane per citizen, and the rows held until the citizen writes again.

A page may write to a person on Messenger only within 24 hours of their last message (Meta's
standard messaging window; casebot sends with no message tag, since none of them fits news
about a case). A row due outside the window is **held**: its ``next_attempt_at`` is ``HELD``,
far ahead, with the reason in ``last_error``; the citizen's next message releases every held
row of theirs (``release``, in the transaction that records the message), and they go in order.

A commenter on the page's posts is known at first by their id in the feed, which is not their
Messenger id: their address is ``COMMENTER`` + that id until the private reply to their comment
tells their page-scoped id (``learn_psid``). Until then only that private reply can reach them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.db import Database, Row, Tx, from_db, json_field_pattern, to_db

HELD = datetime(9999, 12, 31, tzinfo=UTC)
COMMENTER = "fbu:"  # an address that is a commenter's feed id, not (yet) a Messenger id


def has_psid(address: str) -> bool:
    return bool(address) and not address.startswith(COMMENTER)


@dataclass(frozen=True)
class MessengerRow:
    id: int
    citizen_id: int
    case_id: int | None
    text: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime

    @property
    def comment_id(self) -> str:
        return str(self.payload.get("comment_id") or "")

    @property
    def quick_replies(self) -> list[tuple[str, str]]:
        return [(str(label), str(data)) for label, data in self.payload.get("quick_replies") or ()]


def _row(r: Row) -> MessengerRow:
    created = from_db(r["created_at"])
    assert created is not None
    return MessengerRow(int(r["id"]), int(r["citizen_id"]), r["case_id"], str(r["text"]),
                        json.loads(r["payload"] or "{}"), int(r["attempts"]), created)


def release(tx: Tx, citizen_id: int, now: datetime) -> None:
    """The citizen wrote: their held rows go now (in the caller's transaction)."""
    tx.add("UPDATE outbox SET next_attempt_at = ?, last_error = NULL WHERE kind = 'messenger'"
           " AND citizen_id = ? AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at = ?",
           (to_db(now), citizen_id, to_db(HELD)))


class MessengerRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def due(self, now: datetime, limit: int, exclude: set[int]) -> list[MessengerRow]:
        """Each citizen's next row due now (oldest first): a row waits while an earlier one to
        the same citizen is pending, unless that one is held (all of a citizen's are held
        together, so they stay in order)."""
        rows = await self.db.all(
            "SELECT * FROM outbox o WHERE o.kind = 'messenger' AND o.sent_at IS NULL"
            " AND o.failed_at IS NULL AND o.next_attempt_at <= ?"
            " AND o.id NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?))"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.kind = 'messenger'"
            " AND p.citizen_id = o.citizen_id AND p.sent_at IS NULL AND p.failed_at IS NULL"
            " AND p.id < o.id AND p.next_attempt_at < ?) ORDER BY o.id LIMIT ?",
            (to_db(now), json.dumps(sorted(exclude)), to_db(HELD), limit))
        return [_row(r) for r in rows]

    async def hold(self, citizen_id: int, reason: str) -> bool:
        """Hold every pending row of the citizen but the private replies still to go (a private
        reply does not wait for the window); True when none was held before (the working group
        is told once)."""
        async with self.db.transaction() as tx:
            before = await tx.one(
                "SELECT 1 FROM outbox WHERE kind = 'messenger' AND citizen_id = ? AND sent_at IS NULL"
                " AND failed_at IS NULL AND next_attempt_at = ?", (citizen_id, to_db(HELD)))
            tx.add("UPDATE outbox SET next_attempt_at = ?, last_error = ?, sending_at = NULL"
                   " WHERE kind = 'messenger' AND citizen_id = ? AND sent_at IS NULL"
                   " AND failed_at IS NULL AND (json_extract(payload, '$.comment_id') IS NULL"
                   " OR EXISTS (SELECT 1 FROM outbox s WHERE s.kind = 'messenger'"
                   " AND s.sent_at IS NOT NULL AND json_extract(s.payload, '$.comment_id')"
                   " = json_extract(outbox.payload, '$.comment_id')))",
                   (to_db(HELD), reason[:500], citizen_id))
        return before is None

    async def held(self, citizen_id: int) -> int:
        row = await self.db.one(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'messenger' AND citizen_id = ?"
            " AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at = ?",
            (citizen_id, to_db(HELD)))
        return int(row[0]) if row else 0

    async def replied_to(self, comment_id: str, other_than: int) -> bool:
        """Whether the one private reply to this comment went already (another row)."""
        return await self.db.one(
            "SELECT 1 FROM outbox WHERE kind = 'messenger' AND id <> ? AND sent_at IS NOT NULL"
            " AND payload LIKE ? ESCAPE '\\'",
            (other_than, json_field_pattern("comment_id", comment_id))) is not None

    async def learn_psid(self, citizen_id: int, psid: str) -> bool:
        """A private reply told the commenter's Messenger id: it becomes their address, unless
        another citizen has it already (they wrote to the page before). True when recorded."""
        if not psid:
            return False
        return await self.db.write(
            "UPDATE citizens SET address = ? WHERE id = ? AND channel = 'messenger'"
            " AND address LIKE ? AND NOT EXISTS (SELECT 1 FROM citizens WHERE channel = 'messenger'"
            " AND address = ?)", (psid, citizen_id, COMMENTER + "%", psid)) == 1
