"""The outbox: messages owed to people, written in the same transaction as their cause.

Kinds:
- ``text``: send ``text`` (HTML) to ``chat_id``, with optional buttons in ``payload``.
- ``card``: post the current card of ``case_id`` in ``chat_id`` for the unit in ``payload``.
- ``refresh``: edit every posted card of ``case_id`` to its current state.
Cards are rendered when sent, so they always show the latest state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.db import Database, Tx, from_db, to_db
from bot.domain import access

Buttons = list[list[tuple[str, str]]]  # rows of (label, callback data)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    chat_id: int | None
    case_id: int | None
    text: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    more: bool = False               # more rows wait behind this one for the same chat
    joined: tuple[int, ...] = ()     # further rows sent in this one's message (see ``followers``)
    next_at: datetime | None = None  # when it is due
    unreachable: bool = False        # its chat blocked or removed the bot

    @property
    def ids(self) -> tuple[int, ...]:
        return (self.id, *self.joined)

    @property
    def plain(self) -> bool:
        """A text without buttons: it may share a message with the texts after it."""
        return self.kind == "text" and not self.payload.get("buttons")


@dataclass(frozen=True)
class CardRef:
    case_id: int
    chat_id: int
    message_id: int
    unit_id: int | None
    personal: bool = True  # it shows the citizen's name and contact


CARDS_SQL = ("SELECT case_id, chat_id, message_id, unit_id, personal FROM case_cards"
             " WHERE case_id = ? ORDER BY posted_at, message_id")  # a case's posted cards, oldest first


def card_refs(rows: Iterable[Any]) -> list[CardRef]:
    return [CardRef(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def _item(r: Any, now: datetime, *, more: bool = False) -> OutboxItem:
    return OutboxItem(
        r["id"], r["kind"], r["chat_id"], r["case_id"], r["text"], json.loads(r["payload"]),
        r["attempts"], from_db(r["created_at"]) or now, more,
        next_at=from_db(r["next_attempt_at"]) or now,
    )


def queue_text(
    conn: Tx, chat_id: int, text: str, now: datetime,
    *, buttons: Buttons | None = None, case_id: int | None = None,
) -> None:
    payload = {"buttons": buttons} if buttons else {}
    conn.add(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, text, payload, next_attempt_at)"
        " VALUES(?, 'text', ?, ?, ?, ?, ?)",
        (to_db(now), chat_id, case_id, text, json.dumps(payload), to_db(now)),
    )


def queue_card(
    conn: Tx, chat_id: int, case_id: int, unit_id: int | None, now: datetime
) -> None:
    conn.add(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, payload, next_attempt_at)"
        " VALUES(?, 'card', ?, ?, ?, ?)",
        (to_db(now), chat_id, case_id, json.dumps({"unit_id": unit_id}), to_db(now)),
    )


def queue_refresh(conn: Tx, case_id: int, now: datetime) -> None:
    conn.add(
        "INSERT INTO outbox(created_at, kind, case_id, next_attempt_at)"
        " VALUES(?, 'refresh', ?, ?)",
        (to_db(now), case_id, to_db(now)),
    )


class OutboxStore:
    """Reads and bookkeeping for the sender (bot/jobs/outbox.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def due(self, now: datetime, limit: int = 50) -> list[OutboxItem]:
        """Rows to deliver now. A row waits while an earlier one to the same chat is still
        pending (backing off, or held by a retry_after): each chat gets its messages in order."""
        rows = await self.db.all(
            "SELECT *, EXISTS (SELECT 1 FROM outbox q INDEXED BY outbox_pending_chat"
            " WHERE q.sent_at IS NULL AND q.failed_at IS NULL AND q.chat_id = o.chat_id"
            " AND q.id > o.id) AS more,"
            " EXISTS (SELECT 1 FROM unreachable_chats x WHERE x.chat_id = o.chat_id) AS unreachable"
            " FROM outbox o INDEXED BY outbox_pending WHERE sent_at IS NULL AND failed_at IS NULL"
            " AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox p"
            " WHERE p.sent_at IS NULL AND p.failed_at IS NULL AND p.chat_id = o.chat_id"
            " AND p.id < o.id) ORDER BY id LIMIT ?",
            (to_db(now), limit),
        )
        return [replace(_item(r, now, more=bool(r["more"])), unreachable=bool(r["unreachable"]))
                for r in rows]

    async def followers(self, item: OutboxItem, now: datetime,
                        room: int) -> tuple[list[OutboxItem], bool]:
        """The plain texts queued right behind a plain text, for the same chat and due now, that
        fit with it in one message of ``room`` characters: a burst of one-line notices to a chat
        (the working group's, limited to 20 messages a minute) goes as one message. Also whether
        the message should go now: a card, a card edit or a text with buttons waits behind it, or
        nothing more fits."""
        rows = await self.db.all(
            "SELECT * FROM outbox INDEXED BY outbox_pending_chat WHERE sent_at IS NULL"
            " AND failed_at IS NULL AND chat_id = ? AND id > ? ORDER BY id LIMIT 50",
            (item.chat_id, item.id))
        out: list[OutboxItem] = []
        for r in rows:
            follower = _item(r, now)
            if not follower.plain:
                return out, True
            room -= len(follower.text) + 1
            if room < 0:
                return out, True
            if (follower.next_at or now) > now:  # backing off: the run ends here, for now
                break
            out.append(follower)
        return out, False

    async def pending(self) -> int:
        row = await self.db.one(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
        )
        return int(row[0]) if row else 0

    async def mark_sending(self, item_ids: list[int], now: datetime) -> None:
        """Claimed for sending. A row still "sending" after a crash is simply due again."""
        await self.db.write("UPDATE outbox SET sending_at = ? WHERE id = ?",
                            [(to_db(now), i) for i in item_ids], many=True)

    async def mark_sent(self, ids: Iterable[int], now: datetime,
                        message_id: int | None = None) -> None:
        await self.db.write(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, message_id = ? WHERE id = ?",
            [(to_db(now), message_id, i) for i in ids], many=True)

    async def is_unreachable(self, chat_id: int) -> bool:
        return await self.db.one("SELECT 1 FROM unreachable_chats WHERE chat_id = ?",
                                 (chat_id,)) is not None

    async def mark_unreachable(self, chat_id: int, reason: str, now: datetime) -> bool:
        """Record that a chat blocked or removed the bot. True if it was news."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO unreachable_chats(chat_id, since, reason) VALUES(?,?,?)",
                (chat_id, to_db(now), reason[:200]))
            return cur.rowcount > 0

    async def queue_texts(self, chat_ids: list[int], text: str, now: datetime) -> None:
        async with self.db.transaction() as conn:
            for chat in chat_ids:
                queue_text(conn, chat, text, now)

    async def retry_later(
        self, ids: Iterable[int], at: datetime, error: str, *, count_attempt: bool = True
    ) -> None:
        await self.db.write(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, attempts = attempts + ? WHERE id = ?",
            [(to_db(at), error[:500], 1 if count_attempt else 0, i) for i in ids], many=True)

    async def mark_failed(self, ids: Iterable[int], now: datetime, error: str) -> None:
        await self.db.write(
            "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
            [(to_db(now), error[:500], i) for i in ids], many=True)

    async def record_card(
        self, ref: CardRef, now: datetime, sent_item_id: int | None = None,
        seen: access.Viewer | None = None,
    ) -> None:
        """A card posted; with ``seen``, it showed personal data to them (bot/domain/access.py)."""
        async with self.db.transaction() as conn:
            conn.add(
                "INSERT OR REPLACE INTO case_cards(case_id, chat_id, message_id, unit_id,"
                " posted_at, personal) VALUES(?,?,?,?,?,?)",
                (ref.case_id, ref.chat_id, ref.message_id, ref.unit_id, to_db(now), ref.personal),
            )
            if seen is not None:
                access.add(conn, seen, (ref.case_id,), access.VIA_CARD, now)
            if sent_item_id is not None:
                conn.add(
                    "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, message_id = ?"
                    " WHERE id = ?", (to_db(now), ref.message_id, sent_item_id),
                )

    async def card_personal(self, ref: CardRef, personal: bool, now: datetime,
                            seen: access.Viewer | None = None) -> None:
        """A posted card was edited to show (or no longer show) the citizen's name and contact;
        with ``seen``, that is a view by them."""
        async with self.db.transaction() as conn:
            conn.add("UPDATE case_cards SET personal = ? WHERE chat_id = ? AND message_id = ?",
                     (personal, ref.chat_id, ref.message_id))
            if seen is not None:
                access.add(conn, seen, (ref.case_id,), access.VIA_CARD, now)

    async def cards(self, case_id: int) -> list[CardRef]:
        return card_refs(await self.db.all(CARDS_SQL, (case_id,)))

    async def card_at(self, chat_id: int, message_id: int) -> CardRef | None:
        r = await self.db.one(
            "SELECT case_id, chat_id, message_id, unit_id FROM case_cards"
            " WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return None if r is None else CardRef(r[0], r[1], r[2], r[3])

    async def forget_card(self, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            conn.add(
                "DELETE FROM case_cards WHERE chat_id = ? AND message_id = ?",
                (chat_id, message_id),
            )


def backoff(attempts: int, now: datetime) -> datetime:
    """Retry after 5 s, 20 s, 80 s, … capped at 30 minutes."""
    return now + timedelta(seconds=min(5 * 4**attempts, 1800))
