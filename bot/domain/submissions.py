"""A citizen's own request from Telegram: the privacy notice accepted, the limits, the request
stored once.

Anyone who writes to the bot in a private chat and holds no role is a citizen (bot/handlers/
citizens.py). Their row is created only when they act: they choose a language, accept the privacy
notice, or send a request; reading the welcome or their (empty) list stores nothing about them.

A request is stored under ``tg:<citizen id>:<update id>``: the update that pressed **Send**, the
inbox's own key for it (``tg:<update id>``, bot/service.py). The same update handled twice —
delivered twice, or tried again after a crash between the commit and the reply — finds its
request there and stores nothing.

The limits are the same for everyone (``[citizens]``): at most ``max_open_requests`` open, at most
``max_requests`` in ``per_hours`` hours. They never block a person for good; each answer says when
or how they can send again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import CitizenSettings
from bot.db import Database
from bot.domain.citizens import Citizen, CitizenStore
from bot.domain.requests import RequestService

CHANNEL = "telegram"


@dataclass(frozen=True)
class Limit:
    """Why a citizen cannot send a request now: ``open`` (``count`` open, the most allowed) or
    ``rate`` (``count`` sent in the window; the next one from ``until``)."""

    kind: str
    count: int
    until: datetime | None = None


class LimitReached(Exception):
    def __init__(self, limit: Limit) -> None:
        super().__init__(limit.kind)
        self.limit = limit


@dataclass(frozen=True)
class Submitted:
    request_id: int
    new: bool  # False: this update had stored it already (a copy)


class Submissions:
    def __init__(
        self, db: Database, citizens: CitizenStore, requests: RequestService,
        limits: CitizenSettings, on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.citizens = citizens
        self.requests = requests
        self.limits = limits
        self.on_commit = on_commit

    async def citizen(self, tg_id: int) -> Citizen | None:
        """The citizen writing from this Telegram account, if they have acted before (and their
        data is not erased)."""
        who = await self.citizens.by_address(CHANNEL, str(tg_id))
        return who if who is not None and who.erased_at is None else None

    async def limit(self, citizen_id: int, now: datetime) -> Limit | None:
        """The limit a new request would go past, or None."""
        open_now = await self.requests.open_count(citizen_id)
        if open_now >= self.limits.max_open_requests:
            return Limit("open", open_now)
        window = timedelta(hours=self.limits.per_hours)
        recent = [r.received_at for r in await self.requests.of_citizen(citizen_id)
                  if r.received_at > now - window]
        if len(recent) >= self.limits.max_requests:
            # of_citizen is newest first: the next request is welcome once the oldest of the
            # last ``max_requests`` leaves the window
            return Limit("rate", len(recent), recent[self.limits.max_requests - 1] + window)
        return None

    async def accept_privacy(self, tg_id: int, now: datetime, *, language: str) -> Citizen:
        async with self.db.transaction() as tx:
            who = await self.citizens.find_or_create(tx, CHANNEL, str(tg_id), now, language=language)
            self.citizens.accept_privacy(tx, who.id, now)
        found = await self.citizens.get(who.id)
        assert found is not None
        return found

    async def set_language(self, tg_id: int, language: str, now: datetime) -> None:
        async with self.db.transaction() as tx:
            who = await self.citizens.find_or_create(tx, CHANNEL, str(tg_id), now, language=language)
            self.citizens.set_language(tx, who.id, language)

    async def submit(
        self, tg_id: int, update_id: int, now: datetime, *, name: str, language: str,
        contact: str, text: str, data: dict[str, Any],
    ) -> Submitted:
        """Store the request (and the contact they shared) in one transaction; the working group
        is pinged (RequestService). Raises ``LimitReached`` for a new request past a limit."""
        who = await self.citizen(tg_id)
        if who is not None:
            key = f"tg:{who.id}:{update_id}"
            earlier = await self._stored(key)
            if earlier is not None:
                return Submitted(earlier, new=False)
            limit = await self.limit(who.id, now)
            if limit is not None:
                raise LimitReached(limit)
        async with self.db.transaction() as tx:
            who = await self.citizens.find_or_create(tx, CHANNEL, str(tg_id), now, name=name,
                                                     language=language)
            self.citizens.accept_privacy(tx, who.id, now)  # asked before the questions
            if contact:
                self.citizens.set_contact(tx, who.id, name, contact)
            key = f"tg:{who.id}:{update_id}"
            request_id = await self.requests.receive(tx, key, "telegram", who.id, text, now, data)
        if request_id is None:  # a copy that came in between: the first one stored it
            stored = await self._stored(key)
            assert stored is not None
            return Submitted(stored, new=False)
        self.on_commit()
        return Submitted(request_id, new=True)

    async def _stored(self, key: str) -> int | None:
        row = await self.db.one("SELECT id FROM requests WHERE key = ?", (key,))
        return int(row[0]) if row else None
