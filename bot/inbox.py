"""The inbox's rows: updates stored before they are confirmed to their source, then handled.

Sources (polling, the webhook) call ``add`` and confirm only once it returns; the scheduler reads
a row (``take``), hands it to the handlers and marks it ``done`` — or, after ``MAX_ATTEMPTS``
failures, ``parked`` with the error for an admin (``casebot inbox``), never dropped. A handled
row keeps only its key (to know a copy sent again) and loses its payload, which may hold personal
data; ``prune`` forgets keys older than any source re-sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from bot.db import Database, from_db, to_db

MAX_ATTEMPTS = 3
Write = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Item:
    """One update to store: the source's key, the chat it belongs to, the update as JSON."""

    key: str
    chat_key: str
    payload: str


class Pending(NamedTuple):
    """A stored row still to handle, as ``add`` returns it."""

    id: int
    key: str
    chat_key: str
    attempts: int


@dataclass(frozen=True)
class Stored:
    id: int
    key: str
    chat_key: str
    payload: str
    attempts: int


@dataclass(frozen=True)
class Parked:
    id: int
    key: str
    received_at: datetime
    attempts: int
    error: str


class Inbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, items: list[Item], now: datetime) -> list[Pending]:
        """Store a batch in one transaction; a key already there is ignored. Returns the
        batch's rows still to handle, in order."""
        if not items:
            return []
        async with self.db.transaction() as tx:
            tx.add_many("INSERT INTO inbox(key, chat_key, payload, received_at) VALUES(?,?,?,?)"
                        " ON CONFLICT(key) DO NOTHING",
                        [(i.key, i.chat_key, i.payload, to_db(now)) for i in items])
            marks = ",".join("?" * len(items))
            rows = await tx.commit(
                f"SELECT id, key, chat_key, attempts FROM inbox WHERE key IN ({marks})"
                " AND state = 'pending' ORDER BY id", [i.key for i in items])
        return [Pending(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def pending(self) -> list[tuple[int, str]]:
        """Every row still to handle, oldest first (at start: what the last run left)."""
        rows = await self.db.all("SELECT id, chat_key FROM inbox WHERE state = 'pending' ORDER BY id")
        return [(int(r[0]), str(r[1])) for r in rows]

    async def take(self, row_id: int) -> Stored | None:
        row = await self.db.one(
            "SELECT id, key, chat_key, payload, attempts FROM inbox WHERE id = ? AND state = 'pending'",
            (row_id,))
        if row is None:
            return None
        return Stored(int(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4]))

    async def done(self, row_id: int, now: datetime, with_writes: Sequence[Write] = ()) -> None:
        """Handled; ``with_writes`` (what handling it changed, e.g. a conversation's state) are
        committed in the same transaction."""
        sql = "UPDATE inbox SET state = 'done', payload = NULL, done_at = ?, error = NULL WHERE id = ?"
        if not with_writes:
            await self.db.write(sql, (to_db(now), row_id))
            return
        async with self.db.transaction() as tx:
            for write in with_writes:
                tx.add(*write)
            tx.add(sql, (to_db(now), row_id))

    async def keep(self, with_writes: Sequence[Write]) -> None:
        """Commit what handling changed (as ``done`` does), the row staying to be tried again."""
        if with_writes:
            async with self.db.transaction() as tx:
                for write in with_writes:
                    tx.add(*write)

    async def failed(self, row_id: int, error: str, now: datetime,
                     with_writes: Sequence[Write] = ()) -> bool:
        """One more failed attempt; parked after the last. True when parked. ``with_writes`` as
        for ``done``."""
        async with self.db.transaction() as tx:
            for write in with_writes:
                tx.add(*write)
            row = await tx.one("UPDATE inbox SET attempts = attempts + 1, error = ?,"
                               " state = CASE WHEN attempts + 1 >= ? THEN 'parked' ELSE state END,"
                               " done_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE done_at END"
                               " WHERE id = ? RETURNING state",
                               (error, MAX_ATTEMPTS, MAX_ATTEMPTS, to_db(now), row_id))
        return row is not None and row[0] == "parked"

    async def parked(self) -> list[Parked]:
        rows = await self.db.all("SELECT id, key, received_at, attempts, error FROM inbox"
                                 " WHERE state = 'parked' ORDER BY id")
        return [Parked(int(r[0]), str(r[1]), from_db(r[2]) or datetime.min, int(r[3]), str(r[4] or ""))
                for r in rows]

    async def retry(self, row_id: int) -> bool:
        """Put a parked row back to be handled (at its place in its chat's order)."""
        changed = await self.db.write("UPDATE inbox SET state = 'pending', attempts = 0, done_at = NULL"
                                      " WHERE id = ? AND state = 'parked'", (row_id,))
        return changed == 1

    async def backlog(self) -> int:
        row = await self.db.one("SELECT count(*) FROM inbox WHERE state = 'pending'")
        return int(row[0]) if row else 0

    async def prune(self, before: datetime) -> int:
        """Forget handled rows received before ``before`` (Telegram re-sends nothing a day old)."""
        return await self.db.write("DELETE FROM inbox WHERE state = 'done' AND received_at < ?",
                                   (to_db(before),))
