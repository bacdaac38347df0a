"""The sender: delivers what the outbox holds, outside any transaction.

It wakes when a change commits (``wake()``) and every ``interval`` seconds. Everything it needs
is in the database, so a restart simply carries on with what is still pending.

Each chat is a lane: its texts and cards go one after the other, in order; its card edits go
before them (they change a message already there). Lanes wait on their own limits (one message a
second per chat, 20 a minute per group) side by side; only the overall 30 a second is shared. A
lane waiting on its limit never holds up another chat's messages: the sender starts whichever
lane may go next (a heap ordered by when each may) and takes in new rows as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import html
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain import access
from bot.domain.cases import CaseService, CaseView
from bot.domain.outbox import CardRef, OutboxItem, OutboxStore, backoff, note_change
from bot.domain.rules import Role
from bot.health import Heartbeat, heartbeat_path
from bot.i18n import _, use_locale
from bot.jobs.throttle import Throttle
from bot.lease import Fence
from bot.render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    card_buttons,
    card_text,
    cut,
    keyboard,
    moved_card_text,
    split_message,
    superseded_card_text,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
JOIN_LIMIT = MESSAGE_LIMIT - 596  # texts joined into one message: room for what HTML and emoji add
STOP_GRACE = 1.5     # seconds a stop waits for the messages being sent
REFILL_EVERY = 0.25  # seconds between reading the outbox while lanes are ready to go anyway
AHEAD = 2  # deliveries started ahead of their slot, their row in hand (see ``_Ticket``)


class Lane(Protocol):
    """Another channel's deliveries, woken with the outbox's (the Messenger sender): it runs on
    its own, so that its pace never holds up Telegram's chats."""

    def wake(self) -> None: ...

    async def drain(self) -> int: ...


class _Ticket:
    """A delivery just started: ``claim`` when its first call has taken its slot (or it ended
    without one). The scheduler keeps only ``AHEAD`` deliveries started and waiting for their
    slot, so that each slot is taken right before its call (the calls reach Telegram as evenly
    spaced as their slots), while the next one already has its row in hand."""

    __slots__ = ("first", "on_first")

    def __init__(self, on_first: Callable[[], None] = lambda: None) -> None:
        self.first = True
        self.on_first = on_first

    def claim(self) -> None:
        if self.first:
            self.first = False
            self.on_first()


KEEP_NOTICED = 4096  # notices seen waiting for their burst; more are pruned


class OutboxSender:
    def __init__(
        self, bot: Bot, store: OutboxStore, cases: CaseService, clock: Callable[[], datetime],
        interval: float = 5.0, throttle: Throttle | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.cases = cases
        self.clock = clock
        self.interval = interval
        self.throttle = throttle or Throttle(cases.settings.delivery)
        self.concurrency = max(1, int(cases.settings.delivery.overall_per_second))
        self.page = min(512, max(32, 4 * self.concurrency))  # rows taken in at a time
        self._wake = asyncio.Event()  # for the loop between drains
        self._kick = asyncio.Event()  # for a drain: a wake, or a delivery ended
        self._dirty = True            # the outbox may hold due rows not taken in yet
        self._draining = asyncio.Lock()  # one drain at a time: an item is never sent twice
        self._stopping = False
        self._recovered = False
        self._alone: set[int] = set()  # rows that were refused in a joined message
        # Notices wait ``notice_seconds`` from when first seen, so that a burst goes as one message.
        self.notice_seconds = cases.settings.delivery.notice_seconds
        self.monotonic: Callable[[], float] = time.monotonic
        self._noticed: dict[int, float] = {}
        self._release: float | None = None  # when the first notice held back may go
        self._task: asyncio.Task[None] | None = None
        self.tz = cases.settings.tz
        self.heartbeat = Heartbeat(heartbeat_path(cases.settings.database_path), clock)  # casebot health
        if cases.settings.database_url is not None:  # PostgreSQL: nothing else makes the folder
            try:
                cases.settings.database_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("no folder for the heartbeat %s: %s", cases.settings.database_path.parent,
                            exc.strerror or exc)
        self.access = access.AccessLog(cases.db, cases.units, cases.people)  # who saw personal data
        # Messages to citizens on Messenger (bot/messenger/sender.py): woken with this sender.
        self.messenger: Lane | None = None
        # Two instances (bot/service.py): a row is marked "sending" only while this instance
        # holds the sender's lease; ``fenced`` is told when it no longer does.
        self.fence: Fence | None = None
        self.fenced: Callable[[], None] = lambda: None

    def wake(self) -> None:
        """Rows were queued (a change committed: the services' ``on_commit``)."""
        note_change()  # for the error handler: this update changed something
        if self.messenger is not None:
            self.messenger.wake()
        self._dirty = True
        self._wake.set()
        self._kick.set()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._recovered = False  # (again: what another instance's sender left)
            self._task = asyncio.create_task(self._run(), name="casebot-outbox")

    async def stop(self) -> None:
        """Let the messages being sent finish (up to ``STOP_GRACE`` seconds), start no other:
        the rest stays in the outbox for the next start. A message still unfinished then is
        stopped and goes back to pending (it may reach the chat twice)."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._kick.set()
        self._wake.set()
        try:
            await asyncio.wait({task}, timeout=STOP_GRACE)
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._task = None
            self._stopping = False

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed; will retry")
            if self._stopping:
                return
            timeout = self.interval
            if self._release is not None:  # a notice held back: wake when it may go
                timeout = min(timeout, max(0.0, self._release - self.monotonic()) + 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            if self._stopping:
                return

    async def drain(self) -> int:
        """Deliver everything due now, as fast as Telegram's limits allow, in order per chat;
        waits on the limits, not on rows that are not due yet (backing off, or a notice held
        for the rest of its burst). Returns how many items were handled."""
        async with self._draining:
            if not self._recovered:
                await self._recover()
            return await _Drain(self).run()

    async def _recover(self) -> None:
        resent, turned = await self.store.recover(self.clock(), self.fence)
        self._recovered = True
        if resent:
            log.warning("%d outbox messages were being sent when the bot stopped; they go again "
                        "(each may arrive twice)", resent)
        if turned:
            log.info("%d card refreshes queued before the upgrade became card edits", turned)

    async def _nap(self, seconds: float | None) -> None:
        """Until ``seconds`` pass (None: no limit) or the drain is kicked (a wake, a delivery
        ended, a stop)."""
        if self._kick.is_set():
            self._kick.clear()
            return
        waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._kick.wait())}
        if seconds is not None:
            waits.add(asyncio.ensure_future(asyncio.sleep(max(0.0, seconds))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._kick.clear()

    async def _prepare(self, item: OutboxItem) -> tuple[OutboxItem | None, float | None]:
        """Just before a lane's row goes: the row to send (None: nothing to send), or when a
        notice held back for the rest of its burst may go."""
        if item.unreachable:
            self._noticed.pop(item.id, None)
            await self.store.fail_unreachable(item.chat_id or 0, self.clock())
            return None, None
        joined, go_now = await self._join(item)
        if not go_now:
            release = self._held(joined)
            if release is not None:
                return None, release
        return joined, None

    async def _join(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        """A plain text with more plain texts right behind it for the same chat takes them along
        in one message (one line each), as long as it stays one message. Also whether it should
        go now rather than wait for more (see ``OutboxStore.followers``)."""
        if item.id in self._alone:  # refused in a joined message: goes on its own
            return item, True
        if not (item.more and item.plain):
            return item, False
        followers, go_now = await self.store.followers(item, self.clock(), JOIN_LIMIT - len(item.text))
        followers = list(itertools.takewhile(lambda f: f.id not in self._alone, followers))
        if not followers:
            return item, go_now
        return replace(item, text="\n".join([item.text, *(f.text for f in followers)]),
                       joined=tuple(f.id for f in followers)), go_now

    def _held(self, item: OutboxItem) -> float | None:
        """When a notice still waiting for the rest of its burst may go (None: it need not
        wait). Buttons, cards and card edits never wait: they answer what someone just did."""
        if not item.plain or self.notice_seconds <= 0:
            return None
        now = self.monotonic()
        if len(self._noticed) > KEEP_NOTICED:  # rows that ended otherwise than delivered
            self._noticed = {n: t for n, t in self._noticed.items() if t > now - 60 - self.notice_seconds}
            self._alone.clear()  # (at worst a refused text is joined once more, and split again)
        release = self._noticed.setdefault(item.id, now) + self.notice_seconds
        return release if release > now else None

    @contextlib.asynccontextmanager
    async def _slot(self, chat_id: int, ticket: _Ticket) -> AsyncIterator[None]:
        """Around one call: take this chat's next slot right before it, and tell the throttle
        when it was answered. Only this delivery waits (the next part of a long text, an
        attachment): other lanes go on meanwhile."""
        while (wait := self.throttle.take(chat_id)) > 0:
            await asyncio.sleep(min(wait, self.interval))
            if wait > self.interval:  # a long wait: let the drain look for rows due meanwhile
                self._kick.set()
        ticket.claim()
        try:
            yield
        finally:
            self.throttle.done(chat_id)

    async def _deliver(self, item: OutboxItem, ticket: _Ticket) -> None:
        if not await self.store.mark_sending(item.ids, self.clock(), self.fence):
            log.warning("outbox item %s not sent: this instance no longer holds the sender's lease",
                        item.id)
            self.fenced()
            return
        for n in item.ids:
            self._noticed.pop(n, None)
            if not item.joined:
                self._alone.discard(n)
        now = self.clock()
        try:
            # Texts were written in their reader's language; cards are drawn in their chat's.
            if item.kind == "text":
                message_id: int | None = await self._send_text(item, ticket)
            elif item.kind == "card":
                await self._post_card(item, ticket)
                return  # recorded together with the card
            elif item.kind == "edit":
                await self._edit(item, ticket)
                message_id = item.message_id
            else:
                log.warning("outbox item %s: unknown kind %s", item.id, item.kind)
                await self.store.mark_failed(item.ids, now, f"unknown kind {item.kind}")
                return
            await self.store.mark_sent(item.ids, self.clock(), message_id)
            log.debug("delivered outbox item %s (%s)", item.id, item.kind)
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            # Handled: one line, no traceback.
            log.warning("outbox item %s (%s): Telegram asked to wait %g s (429); it waits",
                        item.id, item.kind, seconds)
            until = now + timedelta(seconds=seconds)
            await self.store.retry_later(item.ids, until, "retry after", count_attempt=False)
            if item.chat_id is not None:
                await self.store.hold_edits(item.chat_id, until)
        except Forbidden as exc:  # blocked by the person, or removed from the group
            log.warning("outbox item %s (%s): chat unreachable", item.id, item.kind)
            await self.store.mark_failed(item.ids, now, exc.message)
            if item.kind == "edit" and item.message_id is not None and item.chat_id is not None:
                await self.store.forget_card(item.chat_id, item.message_id)
            if item.chat_id is not None:
                await self._unreachable(item.chat_id, exc.message, now)
        except BadRequest as exc:
            if item.joined:  # one of the texts is at fault: each goes again on its own, in order
                self._alone.update(item.ids)
                await self.store.retry_later(item.ids, now, exc.message, count_attempt=False)
                return
            log.warning("outbox item %s (%s) refused: %s", item.id, item.kind, exc.message)
            await self.store.mark_failed(item.ids, now, exc.message)
        except (NetworkError, TelegramError) as exc:  # timeouts, 5xx: back off and retry
            if item.attempts + 1 >= MAX_ATTEMPTS:
                log.warning("outbox item %s (%s) gave up: %s", item.id, item.kind, exc.message)
                await self.store.mark_failed(item.ids, now, exc.message)
            else:
                log.info("outbox item %s (%s) will be retried: %s", item.id, item.kind,
                            type(exc).__name__)
                await self.store.retry_later(item.ids, backoff(item.attempts, now), exc.message)

    async def _unreachable(self, chat_id: int, reason: str, now: datetime) -> None:
        """Stop writing to a chat that blocked or removed the bot; tell those who can act, once:
        the working group, and the admins if it was one of the working group's own chats."""
        if not await self.store.mark_unreachable(chat_id, reason, now):
            return
        wg_chats = await self.cases.working_group_chats()
        recipients = [c for c in wg_chats if c != chat_id]
        wg_members = await self.cases.people.holders(Role.WORKING_GROUP)
        if chat_id in wg_chats or chat_id in wg_members:
            for admin in await self.cases.people.holders(Role.ADMIN):
                if (admin != chat_id and admin not in recipients
                        and await self.cases.people.has_private_chat(admin)):
                    recipients.append(admin)
        if not recipients:
            log.warning("a chat became unreachable and nobody could be told")
            return
        name = await self.cases.chat_name(chat_id)
        for chat in recipients:
            with use_locale(await self.cases.units.language_of(chat)):
                text = "⚠️ " + _("I can no longer write to {who}: the bot was blocked or removed. "
                                 "Messages to it are stopped until it writes to me again or the "
                                 "chat is bound again.").format(who=html.escape(name))
            await self.store.queue_texts([chat], text, now)
        self._queued()

    def _queued(self) -> None:
        self._dirty = True
        self._wake.set()
        self._kick.set()

    async def _send_text(self, item: OutboxItem, ticket: _Ticket) -> int:
        assert item.chat_id is not None
        parts = split_message(item.text)
        buttons = item.payload.get("buttons")
        message_id = 0
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            async with self._slot(item.chat_id, ticket):
                message = await self.bot.send_message(
                    item.chat_id, part, reply_markup=keyboard(buttons) if last else None
                )
            message_id = message.message_id
        return message_id

    @staticmethod
    def _personal(case: CaseView, unit_id: int | None) -> bool:
        """Whether the card posted for ``unit_id`` shows the citizen's name and contact now: not
        once the case has left that unit; never to another institution's liaisons."""
        return (unit_id is None or unit_id == case.unit_id) and case.unit_kind != "external"

    def _render(self, case: CaseView, unit_id: int | None) -> tuple[str, list[list[tuple[str, str]]]]:
        """The card as the unit it was posted for should see it now."""
        now = self.clock()
        if unit_id is not None and unit_id != case.unit_id:
            return moved_card_text(case), []
        return card_text(case, self.tz, now, personal=self._personal(case, unit_id)), card_buttons(case)

    async def _post_card(self, item: OutboxItem, ticket: _Ticket) -> None:
        assert item.chat_id is not None and item.case_id is not None
        shows = await self.store.last_event(item.case_id)  # read before the case
        with use_locale(await self.cases.units.language_of(item.chat_id)):
            case = await self.cases.get(item.case_id)  # names in the chat's language
            unit_id = item.payload.get("unit_id")
            if unit_id is not None and unit_id != case.unit_id:
                await self.store.mark_sent((item.id,), self.clock())  # moved on before delivery
                return
            text, buttons = self._render(case, unit_id)
        personal = self._personal(case, unit_id)
        viewer = await self.access.chat(item.chat_id)
        async with self._slot(item.chat_id, ticket):
            message: Message = await self.bot.send_message(
                item.chat_id, text, reply_markup=keyboard(buttons)
            )
        # A change committed meanwhile found no card to edit: recording it queues the edit. With
        # personal data, the card is a view by that chat, recorded with it.
        await self.store.record_card(
            CardRef(case.id, item.chat_id, message.message_id, unit_id, personal), self.clock(),
            item.id, shows_event=shows, seen=viewer if personal else None,
        )
        # Files follow the rule of the card: a ministry unit's card brings the request's files;
        # another institution's brings only those the working group shared with the forward.
        files = item.payload.get("files")
        sent_files = 0
        for att in await self.cases.attachments(case.id):
            goes = att.id in files if files is not None else (
                att.purpose == "intake" and case.unit_kind != "external")
            if not goes:
                continue
            caption = cut(f"#{case.id}", CAPTION_LIMIT)
            try:
                async with self._slot(item.chat_id, ticket):
                    if att.kind == "photo":
                        await self.bot.send_photo(item.chat_id, att.file_id, caption=caption,
                                                  reply_to_message_id=message.message_id)
                    else:
                        await self.bot.send_document(item.chat_id, att.file_id, caption=caption,
                                                     reply_to_message_id=message.message_id)
                sent_files += 1
            except TelegramError as exc:  # the card is out; a bad file must not resend it
                log.warning("attachment %s of case %s not sent: %s", att.id, case.id, exc.message)
        if sent_files:
            await access.record(self.cases.db, viewer, (case.id,), access.VIA_FILES, self.clock())

    async def _edit(self, item: OutboxItem, ticket: _Ticket) -> None:
        """Edit a posted card to the case's state now: every change committed before this
        edit was taken in hand shows (one taken after queues an edit of its own)."""
        assert item.chat_id is not None and item.message_id is not None
        ref = await self.store.card_at(item.chat_id, item.message_id)
        if ref is None:  # deleted in the chat since, or replaced: nothing to edit
            return
        superseded = await self.store.superseded(ref)
        with use_locale(await self.cases.units.language_of(ref.chat_id)):
            case = await self.cases.get(ref.case_id)
            text, buttons = self._render(case, ref.unit_id)
            if superseded:  # a newer card of the case is below it: only that one has buttons
                text, buttons = superseded_card_text(case), []
        try:
            async with self._slot(ref.chat_id, ticket):
                await self.bot.edit_message_text(
                    text, chat_id=ref.chat_id, message_id=ref.message_id,
                    reply_markup=keyboard(buttons),
                )
        except BadRequest as exc:
            msg = exc.message.lower()
            if "not found" in msg or "can't be edited" in msg:
                await self.store.forget_card(ref.chat_id, ref.message_id)
                return
            if "not modified" not in msg:
                raise
            # "not modified": shown already (by an earlier try, which may have died before
            # recording who saw it)
        personal = self._personal(case, ref.unit_id) and not superseded
        if personal != ref.personal:  # the name and contact appear on it again: a new view
            seen = await self.access.chat(ref.chat_id) if personal else None
            await self.store.card_personal(ref, personal, self.clock(), seen)


class _Drain:
    """One ``OutboxSender.drain``: lanes, one per chat, started as their limits allow."""

    def __init__(self, sender: OutboxSender) -> None:
        self.s = sender
        self.waiting: dict[int, OutboxItem] = {}       # chat -> its next row, taken in
        self.ready: list[tuple[float, int, int]] = []  # heap of (may go at, row id, chat)
        self.running: dict[asyncio.Task[None], OutboxItem] = {}
        self.held: dict[int, float] = {}               # chat -> when its notice may go
        self.handled = 0
        self.failure: BaseException | None = None
        self.refilled_at = float("-inf")
        self.starting = 0  # deliveries started that have not yet taken their first slot

    def loaded(self) -> set[int]:
        return {*self.waiting, *self.held, *(i.chat_id or 0 for i in self.running.values())}

    async def run(self) -> int:
        s = self.s
        s._dirty = True
        try:
            while True:
                s.heartbeat.beat()  # each turn: a long drain of a backlog still beats
                self.collect()
                if self.failure is not None or s._stopping:
                    if not self.running:
                        break
                    await s._nap(None)
                    continue
                self.release_holds()
                now = s.throttle.clock()
                if now - self.refilled_at >= s.interval:  # rows whose wait ended (a backoff)
                    s._dirty = True
                startable = bool(self.ready) and self.ready[0][0] <= now
                if s._dirty and (not startable or now - self.refilled_at >= REFILL_EVERY):
                    await self.refill()
                    continue
                await self.start_ready()
                if not self.running and not self.waiting:
                    if s._dirty:
                        continue
                    break
                await s._nap(self.next_wait())
        finally:
            await self.cleanup()
        s._release = min(self.held.values(), default=None)
        if self.failure is not None:
            raise self.failure
        return self.handled

    def collect(self) -> None:
        for task in [t for t in self.running if t.done()]:
            self.running.pop(task)
            self.handled += 1
            self.s._dirty = True  # the chat's next row may be due now
            if not task.cancelled() and (exc := task.exception()) is not None:
                self.failure = self.failure or exc

    def release_holds(self) -> None:
        now = self.s.monotonic()
        for chat, release in list(self.held.items()):
            if release <= now:
                del self.held[chat]
                self.s._dirty = True

    async def refill(self) -> None:
        s = self.s
        s._dirty = False
        self.refilled_at = s.throttle.clock()
        items = await s.store.due(s.clock(), limit=s.page, exclude=self.loaded())
        if len(items) >= s.page:
            s._dirty = True  # more may wait behind this page
        for item in items:
            if item.chat_id is None:
                continue
            known = self.waiting.get(item.chat_id)
            if known is not None and (known.kind == "edit" or item.kind != "edit"):
                continue  # a lane's edits go first, then its messages in order
            self.waiting[item.chat_id] = item
            heapq.heappush(self.ready, (s.throttle.chat_ready_at(item.chat_id), item.id,
                                        item.chat_id))

    async def start_ready(self) -> None:
        """Start the lanes whose own limits allow a message now, oldest row first, while fewer
        than ``AHEAD`` started ones wait for their slot of the overall limit."""
        s = self.s
        while (self.ready and len(self.running) < s.concurrency and not s._stopping
               and self.starting < AHEAD):
            at, item_id, chat = self.ready[0]
            item = self.waiting.get(chat)
            if item is None or item.id != item_id:  # replaced by an edit, or gone
                heapq.heappop(self.ready)
                continue
            if at > s.throttle.clock():  # the overall limit: the delivery waits for its slot
                return
            heapq.heappop(self.ready)
            if (later := s.throttle.chat_ready_at(chat)) > s.throttle.clock():  # moved since
                heapq.heappush(self.ready, (later, item_id, chat))
                continue
            del self.waiting[chat]
            prepared, release = await s._prepare(item)
            if release is not None:
                self.held[chat] = release
                continue
            if prepared is None:
                self.handled += 1
                s._dirty = True
                continue
            self.starting += 1
            ticket = _Ticket(self.started)
            task = asyncio.ensure_future(s._deliver(prepared, ticket))
            task.add_done_callback(functools.partial(self.ended, ticket))
            self.running[task] = prepared

    def started(self) -> None:
        self.starting -= 1
        self.s._kick.set()

    def ended(self, ticket: _Ticket, _task: asyncio.Task[None]) -> None:
        ticket.claim()  # if it ended before taking a slot
        self.s._kick.set()

    def next_wait(self) -> float | None:
        """How long until something may go, if nothing else happens (None: only a delivery
        ending or a wake can change anything)."""
        s = self.s
        waits = []
        if self.ready and len(self.running) < s.concurrency and self.starting < AHEAD:
            waits.append(self.ready[0][0] - s.throttle.clock())
        if self.held and (self.running or self.waiting):
            waits.append(min(self.held.values()) - s.monotonic())
        if s._dirty:
            waits.append(max(0.0, self.refilled_at + REFILL_EVERY - s.throttle.clock()))
        elif self.waiting and not self.running:  # (a delivery ending, or ``_slot``, kicks)
            waits.append(self.refilled_at + s.interval - s.throttle.clock())
        return max(0.0, min(waits)) if waits else None

    async def cleanup(self) -> None:
        """Deliveries still under way when the drain ends (stopped, or a failure): stopped,
        and their rows back to pending."""
        if not self.running:
            return
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        stopped = [n for t, i in self.running.items() if t.cancelled() for n in i.ids]
        self.running.clear()
        if stopped:
            log.warning("stopped %d outbox messages under way; they go again at the next start",
                        len(stopped))
            await self.s.store.release(stopped)
