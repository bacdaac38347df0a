"""Citizens in the loop: the people who asked for help, on the channel they used.

A citizen is known by their channel and their address on it: a Telegram user id (they write to
the bot) or a page-scoped id on Messenger (they wrote to the minister's page). What the bot tells
them goes through the outbox like any message (``queue_to_citizen``): on Telegram as a text to
their private chat, on Messenger as a ``messenger`` row the sender delivers through the Send API
within Meta's 24-hour window. Texts to citizens are plain: escaped here for Telegram's HTML.

Nothing here is logged: a citizen's name, address, contact and words are personal data, erased on
their request with their cases' (bot/domain/erasure.py).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.db import Database, Row, Tx, from_db, to_db
from bot.domain import outbox

CHANNELS = ("telegram", "messenger")
MESSENGER_WINDOW = timedelta(hours=24)  # Meta's standard messaging window after their message
Choices = list[list[tuple[str, str]]]  # rows of (label, data): Telegram buttons, Messenger quick replies


@dataclass(frozen=True)
class Citizen:
    id: int
    channel: str
    address: str
    name: str
    contact: str
    language: str | None
    privacy_accepted_at: datetime | None
    last_inbound_at: datetime | None
    created_at: datetime
    erased_at: datetime | None

    @property
    def reachable(self) -> bool:
        """Whether anything may still be sent to them (not once their data is erased)."""
        return self.erased_at is None and bool(self.address)

    def in_window(self, now: datetime) -> bool:
        """Messenger: whether ``now`` falls in the 24 hours after their last message to the page
        (Telegram has no such window)."""
        if self.channel != "messenger":
            return True
        return self.last_inbound_at is not None and now - self.last_inbound_at < MESSENGER_WINDOW


def citizen(r: Row) -> Citizen:
    created = from_db(r["created_at"])
    assert created is not None
    return Citizen(r["id"], r["channel"], r["address"], r["name"], r["contact"], r["language"],
                   from_db(r["privacy_accepted_at"]), from_db(r["last_inbound_at"]), created,
                   from_db(r["erased_at"]))


class CitizenStore:
    """Reading and recording citizens; writes go into the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, citizen_id: int) -> Citizen | None:
        row = await self.db.one("SELECT * FROM citizens WHERE id = ?", (citizen_id,))
        return citizen(row) if row else None

    async def by_address(self, channel: str, address: str) -> Citizen | None:
        row = await self.db.one("SELECT * FROM citizens WHERE channel = ? AND address = ?",
                                (channel, address))
        return citizen(row) if row else None

    async def find_or_create(
        self, tx: Tx, channel: str, address: str, now: datetime, *,
        name: str = "", language: str | None = None, inbound: bool = True,
    ) -> Citizen:
        """The citizen at this address, created on first contact; ``inbound``: they just wrote
        to us (Messenger's window opens again). A name they give is kept (it may change)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        at = to_db(now)
        tx.add("INSERT INTO citizens(channel, address, name, language, created_at) VALUES(?,?,?,?,?)"
               " ON CONFLICT(channel, address) DO NOTHING",
               (channel, address, name.strip()[:200], language, at))
        sets, params = [], []
        if inbound:
            sets.append("last_inbound_at = CASE WHEN last_inbound_at IS NULL OR last_inbound_at < ?"
                        " THEN ? ELSE last_inbound_at END")
            params += [at, at]
        if name.strip():
            sets.append("name = ?")
            params.append(name.strip()[:200])
        if language:
            sets.append("language = COALESCE(language, ?)")
            params.append(language)
        if sets:
            tx.add(f"UPDATE citizens SET {', '.join(sets)} WHERE channel = ? AND address = ?"
                   " AND erased_at IS NULL", (*params, channel, address))
        row = await tx.one("SELECT * FROM citizens WHERE channel = ? AND address = ?", (channel, address))
        assert row is not None
        return citizen(row)

    @staticmethod
    def accept_privacy(tx: Tx, citizen_id: int, now: datetime) -> None:
        tx.add("UPDATE citizens SET privacy_accepted_at = COALESCE(privacy_accepted_at, ?) WHERE id = ?",
               (to_db(now), citizen_id))

    @staticmethod
    def set_contact(tx: Tx, citizen_id: int, name: str, contact: str) -> None:
        tx.add("UPDATE citizens SET name = ?, contact = ? WHERE id = ? AND erased_at IS NULL",
               (name.strip()[:200], contact.strip()[:200], citizen_id))

    @staticmethod
    def set_language(tx: Tx, citizen_id: int, language: str) -> None:
        tx.add("UPDATE citizens SET language = ? WHERE id = ?", (language, citizen_id))


def queue_to_citizen(
    tx: Tx, who: Citizen, text: str, now: datetime, *,
    choices: Choices | None = None, case_id: int | None = None, comment_id: str | None = None,
) -> bool:
    """Queue a plain ``text`` to the citizen on their channel, with ``choices`` (Telegram
    buttons, Messenger quick replies: their data carries ids only). ``comment_id``: Messenger's
    private reply to that comment (the one message a page may send about a comment). Written in
    the caller's transaction, sent by the outbox. False: they cannot be written to (erased)."""
    if not who.reachable or not text.strip():
        return False
    if who.channel == "telegram":
        outbox.queue_text(tx, int(who.address), html.escape(text), now, buttons=choices, case_id=case_id)
        return True
    payload: dict[str, object] = {}
    if choices:
        payload["quick_replies"] = [[label, data] for row in choices for label, data in row]
    if comment_id:
        payload["comment_id"] = comment_id
    tx.add("INSERT INTO outbox(created_at, kind, citizen_id, case_id, text, payload, next_attempt_at)"
           " VALUES(?, 'messenger', ?, ?, ?, ?, ?)",
           (to_db(now), who.id, case_id, text, json.dumps(payload, ensure_ascii=False), to_db(now)))
    return True
