"""Incoming requests: what citizens sent (a page message or comment, a Telegram submission),
before the working group makes a case of it or says why not.

A request is stored once, under its source's own id (``fb:m:<mid>``, ``fb:c:<comment id>``,
``tg:<citizen id>:<n>``): a webhook delivered twice, an update handled twice, store nothing twice.
A new request tells the working group's chat, one message for a burst (``PING_QUIET``). The
working group decides each (``/inbox``): a case, not a request, a duplicate of a case, or abusive
with a reason. No citizen is ever blocked automatically: abuse is a person's decision, recorded
and counted in the public figures.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.db import Database, Row, Tx, from_db, to_db

SOURCES = ("facebook_message", "facebook_comment", "telegram")
STATUSES = ("pending", "case", "not_request", "duplicate", "abusive", "withdrawn")
PING_QUIET = timedelta(minutes=15)  # at most one "new requests" ping to the working group this often
PING_PAYLOAD = {"ping": "requests"}  # marks the ping in the outbox (one waiting at a time)


@dataclass(frozen=True)
class IncomingRequest:
    id: int
    key: str
    source: str
    citizen_id: int | None
    received_at: datetime
    text: str
    data: dict[str, Any]
    status: str
    case_id: int | None
    decided_by: int | None
    decided_at: datetime | None
    reason: str


def incoming(r: Row) -> IncomingRequest:
    received = from_db(r["received_at"])
    assert received is not None
    return IncomingRequest(r["id"], r["key"], r["source"], r["citizen_id"], received, r["text"],
                           json.loads(r["data"]), r["status"], r["case_id"], r["decided_by"],
                           from_db(r["decided_at"]), r["reason"])


async def store(
    tx: Tx, key: str, source: str, citizen_id: int | None, text: str, now: datetime,
    data: dict[str, Any] | None = None, *, received_at: datetime | None = None,
) -> int | None:
    """Store a request in the caller's transaction: its id, or None when its key is already
    there (a copy: nothing is stored)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    result = await tx.execute(
        "INSERT INTO requests(key, source, citizen_id, received_at, text, data) VALUES(?,?,?,?,?,?)"
        " ON CONFLICT(key) DO NOTHING RETURNING id",
        (key, source, citizen_id, to_db(min(received_at or now, now)), text.strip()[:4000],
         json.dumps(data or {}, ensure_ascii=False)))
    return int(result.rows[0][0]) if result.rows else None


async def ping_due(tx: Tx, now: datetime) -> bool:
    """Whether the working group should be told of new requests now: no ping waiting in the
    outbox, and none sent in the last ``PING_QUIET``."""
    row = await tx.one(
        "SELECT 1 FROM outbox WHERE kind = 'text' AND payload = ? AND failed_at IS NULL"
        " AND (sent_at IS NULL OR sent_at > ?) LIMIT 1",
        (json.dumps(PING_PAYLOAD), to_db(now - PING_QUIET)))
    return row is None


class RequestStore:
    """Reading requests (the queue, a citizen's own)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, request_id: int) -> IncomingRequest | None:
        row = await self.db.one("SELECT * FROM requests WHERE id = ?", (request_id,))
        return incoming(row) if row else None

    async def pending(self, limit: int = 50, offset: int = 0) -> list[IncomingRequest]:
        rows = await self.db.all(
            "SELECT * FROM requests WHERE status = 'pending' ORDER BY received_at, id LIMIT ? OFFSET ?",
            (limit, offset))
        return [incoming(r) for r in rows]

    async def count_pending(self) -> int:
        row = await self.db.one("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
        return int(row[0]) if row else 0

    async def of_citizen(self, citizen_id: int) -> list[IncomingRequest]:
        rows = await self.db.all(
            "SELECT * FROM requests WHERE citizen_id = ? ORDER BY received_at DESC, id DESC",
            (citizen_id,))
        return [incoming(r) for r in rows]

    async def open_count(self, citizen_id: int) -> int:
        """A citizen's requests still open: waiting in the queue, or made into a case that is
        not closed (the per-citizen limit counts these)."""
        row = await self.db.one(
            "SELECT COUNT(*) FROM requests r LEFT JOIN cases c ON c.id = r.case_id"
            " WHERE r.citizen_id = ? AND (r.status = 'pending' OR (r.status = 'case'"
            " AND c.status NOT IN ('closed', 'merged')))", (citizen_id,))
        return int(row[0]) if row else 0

    async def since(self, citizen_id: int, after: datetime) -> int:
        """How many requests the citizen sent after ``after`` (the per-citizen rate limit)."""
        row = await self.db.one("SELECT COUNT(*) FROM requests WHERE citizen_id = ? AND received_at > ?",
                                (citizen_id, to_db(after)))
        return int(row[0]) if row else 0


# Queues the "new requests are waiting" ping to the working group in the given transaction,
# marked with ``PING_PAYLOAD`` (``CaseService.tell_requests_waiting``).
Tell = Callable[[Tx, datetime], Awaitable[None]]


class RequestService(RequestStore):
    """Receiving requests: stored once, and the working group told (one ping for a burst)."""

    def __init__(self, db: Database, tell: Tell) -> None:
        super().__init__(db)
        self.tell = tell

    async def receive(
        self, tx: Tx, key: str, source: str, citizen_id: int | None, text: str, now: datetime,
        data: dict[str, Any] | None = None, *, received_at: datetime | None = None,
    ) -> int | None:
        """Store the request in the caller's transaction and, unless a ping is waiting or went
        out lately, queue one to the working group's chat. None: a copy, nothing done."""
        request_id = await store(tx, key, source, citizen_id, text, now, data, received_at=received_at)
        if request_id is not None and await ping_due(tx, now):
            await self.tell(tx, now)
        return request_id
