"""The inbox's rows: updates stored before they are confirmed to their source, then handled.

Sources (polling, the webhook) call ``add`` and confirm only once it returns; the scheduler reads
a row (``take``), hands it to the handlers and marks it ``done`` — or, after ``MAX_ATTEMPTS``
failures, ``parked`` with the error for an admin (``casebot inbox``), never dropped. A handled
row keeps only its key (to know a copy sent again) and loses its payload, which may hold personal
data; ``prune`` forgets keys older than any source re-sends.

Claims (two instances on one database, bot/lease.py): a row is handled by the instance that
claimed it (``claimed_by``) while its claim lasts (``claimed_until``, renewed with the
instance's leases). A row is claimed only when every earlier pending row of its chat is this
instance's own: a chat is in one instance's hands at a time, its rows in order; the other
instance's rows wait until they are done (or its claims expire: it died). Claims are taken when
a row is stored (``add``), and by ``claim_free`` for rows left by others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.db import Database, from_db, to_db
from bot.lease import stamp

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


@dataclass(frozen=True)
class Claim:
    """Who claims (an instance's id), now and until when (``bot.lease.stamp``: wall clock)."""

    holder: str
    now: str
    until: str

    @classmethod
    def at(cls, holder: str, now: datetime, seconds: float) -> Claim:
        return cls(holder, stamp(now), stamp(now + timedelta(seconds=seconds)))


# Whether row ``r``'s chat lets ``holder`` claim it: no earlier pending row of the chat is held by
# another instance (a live claim). Parameters: now, holder.
_CHAT_FREE = (
    "NOT EXISTS (SELECT 1 FROM inbox e INDEXED BY inbox_chat_pending WHERE e.chat_key = r.chat_key"
    " AND e.state = 'pending' AND e.id < r.id AND e.claimed_by IS NOT NULL AND e.claimed_until >= ?"
    " AND e.claimed_by <> ?)")

# One stored row (by key) claimed for its holder, if nobody holds it and every earlier pending row
# of its chat is the holder's already (a live claim): run for a batch's rows one after the
# other, a chat's rows stored together are claimed together. Parameters: holder, until, key, now,
# now, holder.
CLAIM_ONE = (
    "UPDATE inbox SET claimed_by = ?, claimed_until = ? WHERE key = ? AND state = 'pending'"
    " AND (claimed_by IS NULL OR claimed_until < ?)"
    " AND NOT EXISTS (SELECT 1 FROM inbox e INDEXED BY inbox_chat_pending"
    " WHERE e.chat_key = inbox.chat_key AND e.state = 'pending' AND e.id < inbox.id"
    " AND (e.claimed_by IS NULL OR e.claimed_until < ? OR e.claimed_by <> ?))")


def _free_rows(claim: Claim, chat_key: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition on ``inbox r`` of a row ``claim_free`` takes, and its parameters."""
    where = (f"r.state = 'pending' AND (r.claimed_by IS NULL OR r.claimed_until < ?) AND {_CHAT_FREE}")
    params: tuple[Any, ...] = (claim.now, claim.now, claim.holder)
    if chat_key is not None:
        where += " AND r.chat_key = ?"
        params += (chat_key,)
    return where, params


def claim_sql(dialect: str, where: str) -> str:
    """The claim of free rows: one atomic ``UPDATE … WHERE id IN (candidates) RETURNING``, the
    same on both stores but for how the candidates are read. Parameters: holder, until, the
    condition's, limit.

    On PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``: a row another transaction
    is changing (being marked done, or claimed) is left for the next round, not waited for.
    The chats' order does not rest on it but on claims being serialised with every other write
    (SQLite's write lock; on PostgreSQL the write lock bot/pg.py takes for ``BEGIN IMMEDIATE``),
    under which the chat's condition sees every earlier claim committed."""
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return ("UPDATE inbox SET claimed_by = ?, claimed_until = ? WHERE id IN ("
            f"SELECT r.id FROM inbox r WHERE {where} ORDER BY r.id LIMIT ?{lock})"
            " RETURNING id, key, chat_key, attempts")


class Inbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, items: list[Item], now: datetime,
                  claim: Claim | None = None) -> list[Pending]:
        """Store a batch in one transaction; a key already there is ignored. Returns the
        batch's rows still to handle, in order. With ``claim``: claimed for its holder in the
        same transaction, each row in turn, where its chat allows (see ``CLAIM_ONE``); only
        the rows now the holder's are returned."""
        if not items:
            return []
        async with self.db.transaction() as tx:
            tx.add_many("INSERT INTO inbox(key, chat_key, payload, received_at) VALUES(?,?,?,?)"
                        " ON CONFLICT(key) DO NOTHING",
                        [(i.key, i.chat_key, i.payload, to_db(now)) for i in items])
            marks = ",".join("?" * len(items))
            select = (f"SELECT id, key, chat_key, attempts FROM inbox WHERE key IN ({marks})"
                      " AND state = 'pending'")
            params: list[Any] = [i.key for i in items]
            if claim is not None:
                # executemany: each row's claim sees the rows of the batch claimed before it.
                tx.add_many(CLAIM_ONE, [(claim.holder, claim.until, i.key, claim.now, claim.now,
                                         claim.holder) for i in items])
                select += " AND claimed_by = ?"
                params.append(claim.holder)
            rows = await tx.commit(select + " ORDER BY id", params)
        return [Pending(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def claim_free(self, claim: Claim, limit: int = 500, chat_key: str | None = None) -> list[Pending]:
        """Claim the pending rows nobody holds (never claimed, or their claim expired: their
        instance died or stopped) whose chat has no earlier row another instance holds; oldest
        first, ``limit`` at most; only ``chat_key``'s if given. Returns them in order.

        A read first: when there is nothing to claim (nearly always), no write is made."""
        where, params = _free_rows(claim, chat_key)
        if await self.db.one(f"SELECT 1 FROM inbox r WHERE {where} LIMIT 1", params) is None:
            return []
        async with self.db.transaction() as tx:
            rows = await tx.all(claim_sql(getattr(self.db, "dialect", "sqlite"), where),
                                (claim.holder, claim.until, *params, limit))
        pending = sorted(Pending(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows)
        return pending

    async def renew_claims(self, claim: Claim) -> int:
        """The holder's claims on rows still pending last until ``claim.until``."""
        return await self.db.write("UPDATE inbox SET claimed_until = ? WHERE claimed_by = ?"
                                   " AND state = 'pending'", (claim.until, claim.holder))

    async def release_claims(self, holder: str) -> int:
        """A clean stop: the holder's rows still pending are free for another instance now."""
        return await self.db.write("UPDATE inbox SET claimed_by = NULL, claimed_until = NULL"
                                   " WHERE claimed_by = ? AND state = 'pending'", (holder,))

    async def pending(self) -> list[tuple[int, str]]:
        """Every row still to handle, oldest first (at start: what the last run left)."""
        rows = await self.db.all("SELECT id, chat_key FROM inbox WHERE state = 'pending' ORDER BY id")
        return [(int(r[0]), str(r[1])) for r in rows]

    async def take(self, row_id: int, holder: str | None = None) -> Stored | None:
        """The row to handle, unless it is handled already (or, with ``holder``, no longer
        that instance's: its claim expired and another instance took it)."""
        sql = "SELECT id, key, chat_key, payload, attempts FROM inbox WHERE id = ? AND state = 'pending'"
        params: tuple[Any, ...] = (row_id,)
        if holder is not None:
            sql, params = sql + " AND claimed_by = ?", (row_id, holder)
        row = await self.db.one(sql, params)
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
        changed = await self.db.write("UPDATE inbox SET state = 'pending', attempts = 0, done_at = NULL,"
                                      " claimed_by = NULL, claimed_until = NULL"
                                      " WHERE id = ? AND state = 'parked'", (row_id,))
        return changed == 1

    async def backlog(self) -> int:
        row = await self.db.one("SELECT count(*) FROM inbox WHERE state = 'pending'")
        return int(row[0]) if row else 0

    async def prune(self, before: datetime) -> int:
        """Forget handled rows received before ``before`` (Telegram re-sends nothing a day old)."""
        return await self.db.write("DELETE FROM inbox WHERE state = 'done' AND received_at < ?",
                                   (to_db(before),))
