"""The sender: delivers what the outbox holds, outside any transaction.

It wakes when a change commits (``wake()``) and every ``interval`` seconds. Everything it needs
is in the database, so a restart simply carries on with what is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain import access
from bot.domain.cases import CaseService, CaseView
from bot.domain.outbox import CardRef, OutboxItem, OutboxStore, backoff
from bot.health import Heartbeat, heartbeat_path
from bot.i18n import _, use_locale
from bot.jobs.throttle import Throttle
from bot.render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    card_buttons,
    card_text,
    cut,
    keyboard,
    moved_card_text,
    split_message,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
JOIN_LIMIT = MESSAGE_LIMIT - 596  # texts joined into one message: room for what HTML and emoji add


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
        self._wake = asyncio.Event()
        self._draining = asyncio.Lock()  # one drain at a time: an item is never sent twice
        self._alone: set[int] = set()  # rows that were refused in a joined message
        # Notices wait ``notice_seconds`` from when first seen, so that a burst goes as one message.
        self.notice_seconds = cases.settings.delivery.notice_seconds
        self.monotonic: Callable[[], float] = time.monotonic
        self._noticed: dict[int, float] = {}
        self._release: float | None = None  # when the first notice held back may go
        self._task: asyncio.Task[None] | None = None
        self.tz = cases.settings.tz
        self.heartbeat = Heartbeat(heartbeat_path(cases.settings.database_path), clock)  # casebot health
        self.access = access.AccessLog(cases.db, cases.units, cases.people)  # who saw personal data

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="casebot-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed; will retry")
            timeout = self.interval
            if self._release is not None:  # a notice held back: wake when it may go
                timeout = min(timeout, max(0.0, self._release - self.monotonic()) + 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()

    async def drain(self) -> int:
        """Deliver everything due now, as fast as Telegram's limits allow, in order per chat.
        Returns how many items were handled."""
        handled = 0
        async with self._draining:
            while True:
                self.heartbeat.beat()  # each turn: a long drain of a backlog still beats
                items = await self.store.due(self.clock(), limit=4 * self.concurrency)
                if not items:
                    return handled
                batch, wait = await self._pick(items)
                if batch:
                    await self.store.mark_sending([n for i in batch for n in i.ids], self.clock())
                    await asyncio.gather(*(self._deliver(i) for i in batch))
                    handled += len(batch)
                elif wait is not None:
                    await asyncio.sleep(min(wait, 1.0))
                else:
                    return handled

    async def _pick(self, items: list[OutboxItem]) -> tuple[list[OutboxItem], float | None]:
        """The items that may go now: one per chat (so each chat keeps its order), within the
        limits. Also the shortest wait when none may."""
        batch: list[OutboxItem] = []
        seen: set[object] = set()
        shortest: float | None = None
        self._release = None
        for item in items:
            chat = item.chat_id
            # A refresh has no chat (it edits the case's cards, each paced by its own chat):
            # one per case in a batch, not one refresh per batch.
            key = chat if chat is not None else ("case", item.case_id)
            if key in seen:
                continue
            seen.add(key)
            if item.unreachable:
                self._noticed.pop(item.id, None)
                await self.store.mark_failed((item.id,), self.clock(), "unreachable")
                continue
            item, go_now = await self._join(item)
            if not go_now and self._held(item):
                continue
            wait = self.throttle.ready_in(chat) if chat is not None else 0.0
            if wait > 0:
                shortest = wait if shortest is None else min(shortest, wait)
                continue
            batch.append(item)
            if len(batch) >= self.concurrency:
                break
        return batch, shortest

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

    def _held(self, item: OutboxItem) -> bool:
        """Whether a notice still waits for the rest of its burst (then ``_release`` says until
        when). Buttons, cards and card edits never wait: they answer what someone just did."""
        if not item.plain or self.notice_seconds <= 0:
            return False
        now = self.monotonic()
        release = self._noticed.setdefault(item.id, now) + self.notice_seconds
        if release <= now:
            return False
        self._release = release if self._release is None else min(self._release, release)
        return True

    async def _pace(self, chat_id: int) -> None:
        while (wait := self.throttle.take(chat_id)) > 0:
            await asyncio.sleep(wait)

    async def _deliver(self, item: OutboxItem) -> None:
        for n in item.ids:
            self._noticed.pop(n, None)
            if not item.joined:
                self._alone.discard(n)
        now = self.clock()
        try:
            # Texts were written in their reader's language; cards are drawn in their chat's.
            if item.kind == "text":
                message_id = await self._send_text(item)
            elif item.kind == "card":
                await self._post_card(item)
                return  # recorded together with the card
            elif item.kind == "refresh":
                message_id = None
                await self._refresh(item)
            else:
                raise ValueError(f"unknown outbox kind {item.kind}")
            await self.store.mark_sent(item.ids, self.clock(), message_id)
            log.debug("delivered outbox item %s (%s)", item.id, item.kind)
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            await self.store.retry_later(
                item.ids, now + timedelta(seconds=seconds), "retry after", count_attempt=False
            )
        except Forbidden as exc:  # blocked by the person, or removed from the group
            log.warning("outbox item %s (%s): chat unreachable", item.id, item.kind)
            await self.store.mark_failed(item.ids, now, exc.message)
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
                await self.store.retry_later(item.ids, backoff(item.attempts, now), exc.message)

    async def _unreachable(self, chat_id: int, reason: str, now: datetime) -> None:
        """Stop writing to a chat that blocked or removed the bot; tell the working group once."""
        if not await self.store.mark_unreachable(chat_id, reason, now):
            return
        wg_chats = await self.cases.working_group_chats()
        if chat_id in wg_chats:
            return
        name = await self.cases.chat_name(chat_id)
        for chat in wg_chats:
            with use_locale(await self.cases.units.language_of(chat)):
                text = "⚠️ " + _("I can no longer write to {who}: the bot was blocked or removed. "
                                 "Messages to it are stopped until it writes to me again or the "
                                 "chat is bound again.").format(who=html.escape(name))
            await self.store.queue_texts([chat], text, now)
        self.wake()

    async def _send_text(self, item: OutboxItem) -> int:
        assert item.chat_id is not None
        parts = split_message(item.text)
        buttons = item.payload.get("buttons")
        message_id = 0
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            await self._pace(item.chat_id)
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

    async def _post_card(self, item: OutboxItem) -> None:
        assert item.chat_id is not None and item.case_id is not None
        with use_locale(await self.cases.units.language_of(item.chat_id)):
            case = await self.cases.get(item.case_id)  # names in the chat's language
            unit_id = item.payload.get("unit_id")
            if unit_id is not None and unit_id != case.unit_id:
                await self.store.mark_sent((item.id,), self.clock())  # moved on before delivery
                return
            text, buttons = self._render(case, unit_id)
        personal = self._personal(case, unit_id)
        viewer = await self.access.chat(item.chat_id)
        await self._pace(item.chat_id)
        message: Message = await self.bot.send_message(
            item.chat_id, text, reply_markup=keyboard(buttons)
        )
        await self.store.record_card(  # with personal data: a view by that chat, recorded with it
            CardRef(case.id, item.chat_id, message.message_id, unit_id, personal), self.clock(),
            item.id, viewer if personal else None)
        files = 0
        for att in await self.cases.attachments(case.id):
            if att.purpose != "intake":
                continue
            caption = cut(f"#{case.id}", CAPTION_LIMIT)
            await self._pace(item.chat_id)
            try:
                if att.kind == "photo":
                    await self.bot.send_photo(item.chat_id, att.file_id, caption=caption,
                                              reply_to_message_id=message.message_id)
                else:
                    await self.bot.send_document(item.chat_id, att.file_id, caption=caption,
                                                 reply_to_message_id=message.message_id)
                files += 1
            except TelegramError as exc:  # the card is out; a bad file must not resend it
                log.warning("attachment %s of case %s not sent: %s", att.id, case.id, exc.message)
        if files:
            await access.record(self.cases.db, viewer, (case.id,), access.VIA_FILES, self.clock())

    async def _refresh(self, item: OutboxItem) -> None:
        assert item.case_id is not None
        row, refs = await self.cases.with_cards(item.case_id)
        for ref in refs:
            with use_locale(await self.cases.units.language_of(ref.chat_id)):
                case = self.cases.view(row)
                text, buttons = self._render(case, ref.unit_id)
            await self._pace(ref.chat_id)
            try:
                await self.bot.edit_message_text(
                    text, chat_id=ref.chat_id, message_id=ref.message_id,
                    reply_markup=keyboard(buttons),
                )
            except (BadRequest, Forbidden) as exc:
                msg = exc.message.lower()
                if "not modified" in msg:
                    pass  # shown already (by an earlier try, which may have died before recording it)
                elif isinstance(exc, Forbidden) or "not found" in msg or "can't be edited" in msg:
                    await self.store.forget_card(ref.chat_id, ref.message_id)
                    continue
                else:
                    raise
            personal = self._personal(case, ref.unit_id)
            if personal != ref.personal:  # the name and contact appear on it again: a new view
                seen = await self.access.chat(ref.chat_id) if personal else None
                await self.store.card_personal(ref, personal, self.clock(), seen)
