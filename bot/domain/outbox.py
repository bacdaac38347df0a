"""The outbox: messages owed to people, written in the same transaction as their cause.

Kinds:
- ``text``: send ``text`` (HTML) to ``chat_id``, with optional buttons in ``payload``.
- ``card``: post the current card of ``case_id`` in ``chat_id`` for the unit in ``payload``, and
  the attachments ``payload["files"]`` names (see ``queue_card``).
- ``edit``: edit the card ``message_id`` posted in ``chat_id`` (of ``case_id``) to its current
  state. ``queue_refresh`` queues one per posted card of a case, unless that card already has an
  edit waiting: the changes of a burst collapse into one edit.
- ``refresh`` (before 0009): edit every posted card of ``case_id``; turned into ``edit`` rows at
  start (``OutboxStore.recover``).
Cards are rendered when sent, so they always show the latest state.

Each chat gets its texts and cards in order; card edits do not wait behind them (they change a
message already there). A row is marked ``sending_at`` while the sender has it in hand; a row
still so marked at start was in hand when the process died, and goes again (``recover``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.db import Database, Tx, from_db, to_db
from bot.domain import access
from bot.lease import Fence

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
    message_id: int | None = None    # an edit: the card it edits

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
        message_id=r["message_id"] if r["kind"] == "edit" else None,
    )


def queue_text(
    conn: Tx, chat_id: int, text: str, now: datetime,
    *, buttons: Buttons | None = None, case_id: int | None = None,
    mark: dict[str, str] | None = None,
) -> None:
    """``mark``: what the row is, kept in its payload for a query to find it (one "new requests"
    ping waiting at a time: bot/domain/requests.py)."""
    payload: dict[str, Any] = dict(mark or {})
    if buttons:
        payload["buttons"] = buttons
    conn.add(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, text, payload, next_attempt_at)"
        " VALUES(?, 'text', ?, ?, ?, ?, ?)",
        (to_db(now), chat_id, case_id, text, json.dumps(payload), to_db(now)),
    )


def queue_card(
    conn: Tx, chat_id: int, case_id: int, unit_id: int | None, now: datetime,
    *, files: list[int] | None = None,
) -> None:
    """``files``: the attachments that go with the card (a forward names those the working
    group chose to share, perhaps none); None: a ministry unit's card brings the request's files,
    another institution's none."""
    payload: dict[str, Any] = {"unit_id": unit_id}
    if files is not None:
        payload["files"] = files
    conn.add(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, payload, next_attempt_at)"
        " VALUES(?, 'card', ?, ?, ?, ?)",
        (to_db(now), chat_id, case_id, json.dumps(payload), to_db(now)),
    )


# A card's edit still waiting, not yet in the sender's hands: a change joins it (the card is
# rendered when the edit is sent, so it shows every change made before).
_WAITING_EDIT = (
    "SELECT 1 FROM outbox o INDEXED BY outbox_pending_edit WHERE o.kind = 'edit'"
    " AND o.sent_at IS NULL AND o.failed_at IS NULL AND o.chat_id = c.chat_id"
    " AND o.message_id = c.message_id AND o.sending_at IS NULL")


def queue_refresh(conn: Tx, case_id: int, now: datetime) -> None:
    """Every posted card of the case is to show its new state: an edit per card, unless one is
    already waiting."""
    conn.add(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, message_id, next_attempt_at)"
        " SELECT ?, 'edit', c.chat_id, c.case_id, c.message_id, ? FROM case_cards c"
        f" WHERE c.case_id = ? AND NOT EXISTS ({_WAITING_EDIT}) ORDER BY c.posted_at, c.message_id",
        (to_db(now), to_db(now), case_id),
    )


# Whether the update being handled committed a change (see ``note_change``): each update is
# handled in a task of its own, which starts with the default.
_changed: ContextVar[bool] = ContextVar("casebot_changed", default=False)


def note_change() -> None:
    """Called after a change committed (the services' ``on_commit``): the error handler then
    knows not to say that nothing was changed."""
    _changed.set(True)


def changed_here() -> bool:
    return _changed.get()


class OutboxStore:
    """Reads and bookkeeping for the sender (bot/jobs/outbox.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def due(self, now: datetime, limit: int = 50,
                  exclude: Collection[int] = ()) -> list[OutboxItem]:
        """Rows to deliver now, oldest first, to chats not in ``exclude``. A text or card waits
        while an earlier one to the same chat is still pending (backing off, or held by a
        retry_after): each chat gets its messages in order. Card edits do not wait for them."""
        rows = await self.db.all(
            "SELECT *, o.kind <> 'edit' AND EXISTS (SELECT 1 FROM outbox q INDEXED BY"
            " outbox_pending_chat WHERE q.sent_at IS NULL AND q.failed_at IS NULL"
            " AND q.chat_id = o.chat_id AND q.id > o.id AND q.kind <> 'edit') AS more,"
            " EXISTS (SELECT 1 FROM unreachable_chats x WHERE x.chat_id = o.chat_id) AS unreachable"
            " FROM outbox o INDEXED BY outbox_pending WHERE sent_at IS NULL AND failed_at IS NULL"
            " AND next_attempt_at <= ? AND o.chat_id IS NOT NULL"  # (messenger rows: bot/messenger/)
            " AND o.chat_id NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?))"
            " AND (o.kind = 'edit' OR NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY"
            " outbox_pending_chat WHERE p.sent_at IS NULL AND p.failed_at IS NULL"
            " AND p.chat_id = o.chat_id AND p.id < o.id AND p.kind <> 'edit')) ORDER BY id LIMIT ?",
            (to_db(now), json.dumps(sorted(exclude)), limit),
        )
        return [replace(_item(r, now, more=bool(r["more"])), unreachable=bool(r["unreachable"]))
                for r in rows]

    async def followers(self, item: OutboxItem, now: datetime,
                        room: int) -> tuple[list[OutboxItem], bool]:
        """The plain texts queued right behind a plain text, for the same chat and due now, that
        fit with it in one message of ``room`` characters: a burst of one-line notices to a chat
        (the working group's, limited to 20 messages a minute) goes as one message. Also whether
        the message should go now: a card or a text with buttons waits behind it, or
        nothing more fits."""
        rows = await self.db.all(
            "SELECT * FROM outbox INDEXED BY outbox_pending_chat WHERE sent_at IS NULL"
            " AND failed_at IS NULL AND chat_id = ? AND id > ? AND kind <> 'edit' ORDER BY id LIMIT 50",
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

    async def mark_sending(self, item_ids: Iterable[int], now: datetime,
                           fence: Fence | None = None) -> bool:
        """In the sender's hands. Released (``release``) if it stops before the outcome is known;
        a row still "sending" at start was in hand when the process died (``recover``). With
        ``fence`` (two instances: the sender's lease), only while the lease is still this
        instance's, recorded as its holder's: False when it is not (nothing marked, nothing
        to send)."""
        ids = list(item_ids)
        sql = f"UPDATE outbox SET sending_at = ?, sending_by = ? WHERE id IN ({','.join('?' * len(ids))})"
        params: list[Any] = [to_db(now), fence.holder if fence else None, *ids]
        if fence is not None:
            condition, values = fence.sql()
            sql += f" AND {condition}"
            params += values
        changed = await self.db.write(sql, params)
        return fence is None or changed > 0

    async def release(self, item_ids: Iterable[int]) -> None:
        """Back to pending: the sender stopped before it knew how the sending went."""
        await self.db.write(
            "UPDATE outbox SET sending_at = NULL, sending_by = NULL WHERE id = ? AND sent_at IS NULL"
            " AND failed_at IS NULL", [(i,) for i in item_ids], many=True)

    async def recover(self, now: datetime, fence: Fence | None = None) -> tuple[int, int]:
        """At start: rows left "sending" by a process that died go again, once each (Telegram
        may already have had one: it then arrives twice); refreshes queued before card edits
        were rows of their own become edits. Returns (rows resent, refreshes turned).

        With ``fence`` (two instances), only rows whose sender no longer holds its lease (its
        lease expired or was released: it died or stopped) or that were this instance's own:
        never a row another live instance is sending."""
        sql = ("UPDATE outbox SET sending_at = NULL, sending_by = NULL WHERE sent_at IS NULL"
               " AND failed_at IS NULL AND sending_at IS NOT NULL")
        params: tuple[Any, ...] = ()
        if fence is not None:
            _sql, (name, holder, at) = fence.sql()
            sql += (" AND (sending_by IS NULL OR sending_by = ? OR NOT EXISTS (SELECT 1 FROM leases l"
                    " WHERE l.name = ? AND l.holder = outbox.sending_by AND l.expires_at > ?))")
            params = (holder, name, at)
        async with self.db.transaction() as conn:
            cur = await conn.execute(sql, params)
            resent = cur.rowcount
            refreshes = await conn.all(
                "SELECT id, case_id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
                " AND kind = 'refresh' ORDER BY id")
            for r in refreshes:
                queue_refresh(conn, int(r[1]), now)
                conn.add("UPDATE outbox SET sent_at = ?, last_error = 'turned into card edits'"
                         " WHERE id = ?", (to_db(now), r[0]))
        return resent, len(refreshes)

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

    async def fail_unreachable(self, chat_id: int, now: datetime) -> int:
        """The rows due now to a chat that blocked or removed the bot end failed, unsent."""
        return await self.db.write(
            "UPDATE outbox SET failed_at = ?, last_error = 'unreachable', attempts = attempts + 1"
            " WHERE chat_id = ? AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?",
            (to_db(now), chat_id, to_db(now)))

    async def hold_edits(self, chat_id: int, until: datetime) -> None:
        """Telegram asked to wait before writing to this chat again: its card edits wait too."""
        await self.db.write(
            "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?) WHERE chat_id = ?"
            " AND kind = 'edit' AND sent_at IS NULL AND failed_at IS NULL AND sending_at IS NULL",
            (to_db(until), chat_id))

    async def queue_texts(self, chat_ids: list[int], text: str, now: datetime) -> None:
        async with self.db.transaction() as conn:
            for chat in chat_ids:
                queue_text(conn, chat, text, now)

    async def retry_later(
        self, ids: Iterable[int], at: datetime, error: str, *, count_attempt: bool = True
    ) -> None:
        await self.db.write(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, attempts = attempts + ?,"
            " sending_at = NULL WHERE id = ?",
            [(to_db(at), error[:500], 1 if count_attempt else 0, i) for i in ids], many=True)

    async def mark_failed(self, ids: Iterable[int], now: datetime, error: str) -> None:
        await self.db.write(
            "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
            [(to_db(now), error[:500], i) for i in ids], many=True)

    async def last_event(self, case_id: int) -> int:
        """The case's latest event: a card drawn after reading it shows every change up to it."""
        row = await self.db.one("SELECT IFNULL(MAX(id), 0) FROM events WHERE case_id = ?",
                                (case_id,))
        return int(row[0]) if row else 0

    async def record_card(
        self, ref: CardRef, now: datetime, sent_item_id: int | None = None,
        shows_event: int | None = None, seen: access.Viewer | None = None,
    ) -> None:
        """A card was posted. ``shows_event``: the case's latest event when it was drawn; a
        change committed since found no card to edit, so an edit follows. With ``seen``, it
        showed personal data to them (bot/domain/access.py)."""
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
            # An older card of the case in this chat (the case came back to the same unit or
            # institution) is superseded: an edit takes its buttons away.
            conn.add(
                "INSERT INTO outbox(created_at, kind, chat_id, case_id, message_id, next_attempt_at)"
                " SELECT ?, 'edit', c.chat_id, c.case_id, c.message_id, ? FROM case_cards c"
                " WHERE c.case_id = ? AND c.chat_id = ? AND c.message_id < ?"
                f" AND NOT EXISTS ({_WAITING_EDIT}) ORDER BY c.message_id",
                (to_db(now), to_db(now), ref.case_id, ref.chat_id, ref.message_id))
            if shows_event is not None:
                conn.add(
                    "INSERT INTO outbox(created_at, kind, chat_id, case_id, message_id,"
                    " next_attempt_at) SELECT ?, 'edit', ?, ?, ?, ? WHERE EXISTS (SELECT 1"
                    " FROM events WHERE case_id = ? AND id > ?)",
                    (to_db(now), ref.chat_id, ref.case_id, ref.message_id, to_db(now),
                     ref.case_id, shows_event),
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

    async def superseded(self, ref: CardRef) -> bool:
        """Whether a newer card of the same case was posted in the same chat since, or is on
        its way there (the edit then does not show the card's name and contact for a moment)."""
        return await self.db.one(
            "SELECT 1 FROM case_cards WHERE case_id = ? AND chat_id = ? AND message_id > ?"
            " UNION ALL SELECT 1 FROM outbox INDEXED BY outbox_pending_chat WHERE chat_id = ?"
            " AND sent_at IS NULL AND failed_at IS NULL AND kind = 'card' AND case_id = ?",
            (ref.case_id, ref.chat_id, ref.message_id, ref.chat_id, ref.case_id)) is not None

    async def cards(self, case_id: int) -> list[CardRef]:
        return card_refs(await self.db.all(CARDS_SQL, (case_id,)))

    async def card_at(self, chat_id: int, message_id: int) -> CardRef | None:
        r = await self.db.one(
            "SELECT case_id, chat_id, message_id, unit_id, personal FROM case_cards"
            " WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return None if r is None else CardRef(r[0], r[1], r[2], r[3], bool(r[4]))

    async def about(self, chat_id: int, message_id: int) -> tuple[set[int], set[int]] | None:
        """Which cases a message the bot sent in a chat is about (a card, a notice, a reminder:
        several notices may share one message), and those for which it carried the working
        group an **Answer…** button; None when it is about no case, or also about other things
        (a digest)."""
        rows, cards = await self.db.batch(
            ("SELECT case_id, payload FROM outbox WHERE chat_id = ? AND message_id = ?"
             " AND kind = 'text' AND sent_at IS NOT NULL", (chat_id, message_id)),
            ("SELECT case_id FROM case_cards WHERE chat_id = ? AND message_id = ?",
             (chat_id, message_id)))
        cases = {int(r[0]) for r in cards}
        asks: set[int] = set()
        for case_id, payload in rows:
            if case_id is None:
                return None
            cases.add(int(case_id))
            buttons = json.loads(payload).get("buttons") or []
            if any(str(data).startswith("ans:") for row in buttons for _label, data in row):
                asks.add(int(case_id))
        return (cases, asks) if cases else None

    async def forget_card(self, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            conn.add(
                "DELETE FROM case_cards WHERE chat_id = ? AND message_id = ?",
                (chat_id, message_id),
            )


def backoff(attempts: int, now: datetime) -> datetime:
    """Retry after 5 s, 20 s, 80 s, … capped at 30 minutes."""
    return now + timedelta(seconds=min(5 * 4**attempts, 1800))
