"""The Messenger sender: delivers the outbox's ``messenger`` rows through the Send API.

Each citizen is a lane: their rows go one after the other, in order, at most
``delivery.per_chat_per_second`` a second; all lanes together at most ``facebook.per_second``.
It runs beside the outbox's sender (bot/jobs/outbox.py), which wakes it when a change commits;
it also looks every ``outbox.interval_seconds``, and a restart carries on. Its pace never holds
up Telegram's chats, nor theirs it.

- Meta's 24-hour window: a row goes (``messaging_type`` RESPONSE) only while ``now`` is within
  24 hours of the citizen's last message; otherwise it is held until they write again, and the
  working group is told once that a message waits on the citizen (they may phone them). No
  message tag is ever used. A private reply to a comment does not wait for the window.
- Errors: an expired or revoked token (190) fails the row with the reason and tells the admins
  once; outside the window by Facebook's clock (10/2018278) holds the row; a person who cannot be
  reached (551) fails it; rate limits (4, 17, 32, 613) pause the page's sending and try again
  later, not counted as a failed try; no answer or a 5xx is retried with a growing wait, then
  failed after ``MAX_ATTEMPTS``.
- A private reply answers with the commenter's page-scoped id: it becomes their address, so that
  their later messages on Messenger are theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.domain.cases import CaseService
from bot.domain.citizens import CitizenStore
from bot.domain.outbox import OutboxStore, backoff
from bot.domain.rules import Role
from bot.i18n import _, use_locale
from bot.messenger.graph import Graph, GraphError
from bot.messenger.store import MessengerRow, MessengerRows, has_psid

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
PAGE = 50               # rows taken in at a time
RATE_PAUSE = 60         # seconds the page waits after a rate limit, doubling while it lasts
RATE_PAUSE_MAX = 3600
STOP_GRACE = 1.5        # seconds a stop waits for the messages being sent


class MessengerSender:
    def __init__(
        self, graph: Graph, store: OutboxStore, cases: CaseService, citizens: CitizenStore,
        clock: Callable[[], datetime], per_second: float, per_citizen_per_second: float,
        on_queued: Callable[[], None] = lambda: None, interval: float = 5.0,
    ) -> None:
        self.graph = graph
        self.store = store
        self.rows = MessengerRows(store.db)
        self.cases = cases
        self.citizens = citizens
        self.clock = clock
        self.on_queued = on_queued  # texts queued to Telegram chats (the working group, admins)
        self.spacing = 1.0 / per_second
        self.citizen_spacing = 1.0 / per_citizen_per_second
        self.monotonic: Callable[[], float] = time.monotonic
        self._next_slot = 0.0                  # the overall pace
        self._last: dict[int, float] = {}      # citizen: when their last call started
        self._paused_until: datetime | None = None  # a rate limit: the page waits
        self._rate_hits = 0
        self._token_told = False               # admins told of a refused token (this run)
        self._draining = asyncio.Lock()
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="casebot-messenger")

    async def stop(self) -> None:
        """Let the message being sent finish (up to ``STOP_GRACE`` seconds), then close the
        connection; what is left stays in the outbox for the next start."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.wait({task}, timeout=STOP_GRACE)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._stopping = False
        await self.graph.close()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("messenger drain failed; will retry")
            if self._stopping:
                return
            timeout = self.interval
            if self._paused_until is not None:
                timeout = min(timeout, max(0.0, (self._paused_until - self.clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.05))
            self._wake.clear()

    async def drain(self) -> int:
        """Send every row due now, lanes side by side; returns how many rows were handled."""
        async with self._draining:
            handled = 0
            seen: set[int] = set()
            while not self._paused() and not self._stopping:
                rows = await self.rows.due(self.clock(), PAGE, seen)
                if not rows:
                    break
                seen.update(r.id for r in rows)
                await asyncio.gather(*(self._one(row) for row in rows))
                handled += len(rows)
            return handled

    def _paused(self) -> bool:
        return self._paused_until is not None and self.clock() < self._paused_until

    async def _pace(self, citizen_id: int) -> None:
        now = self.monotonic()
        slot = max(now, self._next_slot, self._last.get(citizen_id, -1e9) + self.citizen_spacing)
        self._next_slot = max(self._next_slot, slot) + self.spacing
        self._last[citizen_id] = slot
        if slot > now:
            await asyncio.sleep(slot - now)
        if len(self._last) > 4096:
            self._last = {c: t for c, t in self._last.items() if t > now - 60}

    async def _one(self, row: MessengerRow) -> None:
        try:
            await self._send(row)
        except Exception:  # the database, most likely: the row stays pending for the next drain
            log.exception("messenger row %s: not handled", row.id)

    async def _send(self, row: MessengerRow) -> None:
        now = self.clock()
        who = await self.citizens.get(row.citizen_id)
        if who is None or not who.reachable:
            await self.store.mark_failed((row.id,), now, "the citizen's data was erased")
            return
        comment_id = row.comment_id
        if comment_id and await self.rows.replied_to(comment_id, row.id):
            comment_id = ""  # a comment gets one private reply: this one goes as a message
        if comment_id:
            recipient = {"comment_id": comment_id}
        elif not has_psid(who.address):
            await self._hold(row, "held: no Messenger conversation with the commenter yet")
            return
        elif not who.in_window(now):
            await self._hold(row, "held: outside Messenger's 24-hour window")
            return
        else:
            recipient = {"id": who.address}
        await self._pace(row.citizen_id)
        if self._paused():
            return
        await self.store.mark_sending((row.id,), now)
        try:
            sent = await self.graph.send(recipient, row.text, row.quick_replies)
        except GraphError as exc:
            await self._failed(row, exc, bool(comment_id))
            return
        self._rate_hits = 0
        self._token_told = False
        await self.store.mark_sent((row.id,), self.clock())
        if comment_id and await self.rows.learn_psid(row.citizen_id, sent.recipient_id):
            log.info("messenger: a commenter's Messenger id learnt from the private reply")
        log.debug("messenger row %s delivered", row.id)

    async def _failed(self, row: MessengerRow, exc: GraphError, private_reply: bool) -> None:
        now = self.clock()
        if exc.rate_limited:
            pause = min(RATE_PAUSE * 2 ** self._rate_hits, RATE_PAUSE_MAX)
            self._rate_hits += 1
            self._paused_until = now + timedelta(seconds=pause)
            log.warning("messenger row %s: Facebook's rate limit (code %d); the page waits %d s",
                        row.id, exc.code, pause)
            await self.store.retry_later((row.id,), self._paused_until, exc.reason, count_attempt=False)
        elif exc.outside_window and not private_reply:
            await self._hold(row, "held: outside Messenger's 24-hour window (Facebook)")
        elif exc.transient and row.attempts + 1 < MAX_ATTEMPTS:
            log.info("messenger row %s will be retried: %s", row.id, exc.reason)
            await self.store.retry_later((row.id,), backoff(row.attempts, now), exc.reason)
        else:
            log.warning("messenger row %s failed: %s", row.id, exc.reason)
            await self.store.mark_failed((row.id,), now, exc.reason)
            if exc.token_refused:
                await self._tell_admins_token(now)

    async def _hold(self, row: MessengerRow, reason: str) -> None:
        if await self.rows.hold(row.citizen_id, reason):
            await self._tell_waiting(row, self.clock())

    async def _tell_waiting(self, row: MessengerRow, now: datetime) -> None:
        """The working group, once per wait: a message to a citizen waits on the citizen."""
        chats = await self.cases.working_group_chats()
        for chat in chats:
            with use_locale(await self.cases.units.language_of(chat)):
                if row.case_id is not None:
                    text = _("✉️ A message to the citizen of #{n} waits: on Messenger the page may "
                             "write to them only within 24 hours of their last message. It goes "
                             "when they write again; to reach them sooner, call them.").format(n=row.case_id)
                else:
                    text = _("✉️ A message to a citizen waits: on Messenger the page may write to "
                             "them only within 24 hours of their last message. It goes when they "
                             "write again.")
            await self.store.queue_texts([chat], text, now)
        if chats:
            self.on_queued()

    async def _tell_admins_token(self, now: datetime) -> None:
        if self._token_told:
            return
        self._token_told = True
        admins = [a for a in await self.cases.people.holders(Role.ADMIN)
                  if await self.cases.people.has_private_chat(a)]
        for admin in admins:
            with use_locale(await self.cases.units.language_of(admin)):
                text = "⚠️ " + _("Facebook refused the page's access token (expired or revoked): "
                                 "messages to citizens on Messenger fail. Put a new page token in "
                                 "CASEBOT_FB_PAGE_TOKEN and restart the bot.")
            await self.store.queue_texts([admin], text, now)
        if admins:
            self.on_queued()
        else:
            log.error("Facebook refused the page's access token and no admin could be told")
