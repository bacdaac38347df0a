"""The Messenger processor: what a stored page event (bot/messenger/events.py) means.

The runner (bot/service.py) hands each ``fb:`` inbox row here under ``origin.handling(key)``,
so a change to a case asked for twice is made once (``AlreadyDone``), and a request is stored
once under the event's key: a webhook delivered twice, or an event handled again after a crash,
changes nothing twice.

- A message: its sender is the citizen (channel ``messenger``, address their page-scoped id;
  found or created, their 24-hour window opened, their language taken from the script of their
  first words: Khmer letters → ``km``, else the default). Any reply held back because the window
  was closed goes now. Then a quick reply ``cz:…`` is the citizen's choice on their case (Yes /
  No, because… / Answer / Withdraw / Status: bot/domain/conversation.py, which checks it again);
  free text goes where the conversation routes it (a pending question's answer, a "No"'s reason,
  a case number's status), and otherwise is a **new request** (``facebook_message``), which the
  citizen is told was received at once.
- A comment on a page post: a new request (``facebook_comment``) with the comment's and the
  post's ids, and no reply now: the case number goes later as the comment's one private reply.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.app import Services
from bot.db import IntegrityError, json_field_pattern
from bot.domain import origin
from bot.domain.citizens import Citizen, citizen, queue_to_citizen
from bot.domain.conversation import Reply, Route
from bot.domain.errors import AlreadyDone
from bot.i18n import _, use_locale
from bot.messenger.events import COMMENT, Inbound
from bot.messenger.store import COMMENTER, release

log = logging.getLogger(__name__)
CHANNEL = "messenger"


def language_of(text: str, default: str) -> str:
    """Khmer when the words are written in Khmer script, else the default."""
    return "km" if any("\u1780" <= c <= "\u17ff" or "\u19e0" <= c <= "\u19ff" for c in text) else default


def attachment_lines(event: Inbound) -> str:
    """The files they sent, as lines for a unit to open (Messenger's links; they expire)."""
    return "\n".join(f"📎 {a.type}: {a.url}" for a in event.attachments if a.url)


class MessengerInbound:
    def __init__(self, services: Services) -> None:
        self.s = services

    @property
    def default_language(self) -> str:
        return self.s.settings.default_language

    async def handle(self, event: Inbound, now: datetime) -> None:
        if event.kind == COMMENT:
            await self._comment(event, now)
        else:
            await self._message(event, now)

    # --- Messenger ------------------------------------------------------------------------

    async def _message(self, event: Inbound, now: datetime) -> None:
        async with self.s.db.transaction() as tx:
            who = await self.s.citizens.find_or_create(
                tx, CHANNEL, event.sender, min(event.at, now),
                language=language_of(event.text, self.default_language), inbound=True)
            release(tx, who.id, now)
        self.s.sender.wake()  # what was held for their window goes now
        if who.erased_at is not None:
            return  # their data was erased: nothing more is kept of them (they may write again)
        if event.payload.startswith("cz:"):
            reply = await self._done_once(self.s.conversation.press(who.id, event.payload, now))
            await self._reply(who, reply, now)
            return
        words = "\n".join(part for part in (event.text.strip(), attachment_lines(event)) if part)
        if not words:
            return
        routed = await self._done_once(self.s.conversation.route_text(who.id, words, now))
        if routed is None:
            return
        if routed.route is not Route.NEW:
            await self._reply(who, routed.reply, now)
            return
        await self._new_request(who, event, now)

    async def _new_request(self, who: Citizen, event: Inbound, now: datetime) -> None:
        """A new request, or — while their last one still waits in the queue — more words for
        it (people write in several short messages on Messenger), without a second
        acknowledgement. Once: a copy of the event finds its request stored under its key, and
        words joined to a request are recorded as the event's change."""
        data: dict[str, Any] = {"mid": event.id}
        files = [{"type": a.type, "url": a.url} for a in event.attachments]
        if files:
            data["attachments"] = files
        try:
            async with self.s.db.transaction() as tx:
                if await tx.one("SELECT 1 FROM requests WHERE key = ?", (event.key,)) is not None:
                    return  # stored before: this is a copy
                if await self.s.requests.add_to_pending(tx, who.id, "facebook_message", event.text, files):
                    origin.record(tx, now)
                    return
                request_id = await self.s.requests.receive(
                    tx, event.key, "facebook_message", who.id, event.text, now, data, received_at=event.at)
                if request_id is not None:
                    with use_locale(who.language or self.default_language):
                        text = _("We received your message; the working group will give it a case "
                                 "number.")
                    queue_to_citizen(tx, who, text, now)
        except IntegrityError as exc:
            if not origin.already_done(exc):
                raise
            return
        self.s.sender.wake()

    async def _reply(self, who: Citizen, reply: Reply | None, now: datetime) -> None:
        """An answer given at once (nothing was changed: a status, a stale choice), recorded as
        the event's change: the event handled again (after a crash) does not answer twice."""
        if reply is None:
            return
        try:
            async with self.s.db.transaction() as tx:
                origin.record(tx, now)
                queue_to_citizen(tx, who, reply.text, now, choices=reply.choices)
        except IntegrityError as exc:
            if not origin.already_done(exc):
                raise
            return
        self.s.sender.wake()

    @staticmethod
    async def _done_once(call: Any) -> Any:
        """The conversation's answer; None when this event's change was made before (handled
        again after a crash, or delivered twice): nothing more to do."""
        try:
            return await call
        except AlreadyDone:
            return None

    # --- the page's posts -----------------------------------------------------------------

    async def _comment(self, event: Inbound, now: datetime) -> None:
        data: dict[str, Any] = {"comment_id": event.id, "post_id": event.post_id, "from_id": event.sender}
        if event.parent_id:
            data["parent_id"] = event.parent_id
        if event.attachments:
            data["attachments"] = [{"type": a.type, "url": a.url} for a in event.attachments]
        async with self.s.db.transaction() as tx:
            who = await self._commenter(tx, event, now)
            await self.s.requests.receive(tx, event.key, "facebook_comment", who.id, event.text, now,
                                          data, received_at=event.at)
        self.s.sender.wake()

    async def _commenter(self, tx: Any, event: Inbound, now: datetime) -> Citizen:
        """The citizen who commented: the one an earlier comment of theirs made (who may have
        a Messenger id by now, learnt from a private reply), else one known by their feed id."""
        row = await tx.one(
            "SELECT c.id FROM requests r JOIN citizens c ON c.id = r.citizen_id"
            " WHERE r.source = 'facebook_comment' AND r.data LIKE ? ESCAPE '\\'"
            " AND c.erased_at IS NULL ORDER BY r.id DESC LIMIT 1",
            (json_field_pattern("from_id", event.sender),))
        if row is not None:
            found = await tx.one("SELECT * FROM citizens WHERE id = ?", (row[0],))
            if found is not None:
                return citizen(found)
        return await self.s.citizens.find_or_create(
            tx, CHANNEL, COMMENTER + event.sender, min(event.at, now), name=event.name,
            language=language_of(event.text, self.default_language), inbound=False)
