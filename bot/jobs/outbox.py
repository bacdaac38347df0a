"""The sender: delivers what the outbox holds, outside any transaction.

It wakes when a change commits (``wake()``) and every ``interval`` seconds. Everything it needs
is in the database, so a restart simply carries on with what is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain.cases import CaseService, CaseView
from bot.domain.outbox import CardRef, OutboxItem, OutboxStore, backoff
from bot.i18n import use_locale
from bot.render import (
    CAPTION_LIMIT,
    card_buttons,
    card_text,
    cut,
    keyboard,
    moved_card_text,
    split_message,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6


class OutboxSender:
    def __init__(
        self, bot: Bot, store: OutboxStore, cases: CaseService, clock: Callable[[], datetime],
        interval: float = 5.0,
    ) -> None:
        self.bot = bot
        self.store = store
        self.cases = cases
        self.clock = clock
        self.interval = interval
        self._wake = asyncio.Event()
        self._draining = asyncio.Lock()  # one drain at a time: an item is never sent twice
        self._task: asyncio.Task[None] | None = None
        self.language = cases.settings.default_language
        self.tz = cases.settings.tz

    def wake(self) -> None:
        self._wake.set()

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()

    async def drain(self) -> int:
        """Deliver everything due now. Returns how many items were handled."""
        handled = 0
        async with self._draining:
            while True:
                items = await self.store.due(self.clock())
                if not items:
                    return handled
                for item in items:
                    await self._deliver(item)
                    handled += 1

    async def _deliver(self, item: OutboxItem) -> None:
        now = self.clock()
        try:
            with use_locale(self.language):
                if item.kind == "text":
                    await self._send_text(item)
                elif item.kind == "card":
                    await self._post_card(item)
                    return  # recorded together with the card
                elif item.kind == "refresh":
                    await self._refresh(item)
                else:
                    raise ValueError(f"unknown outbox kind {item.kind}")
            await self.store.mark_sent(item.id, self.clock())
            log.debug("delivered outbox item %s (%s)", item.id, item.kind)
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            await self.store.retry_later(
                item.id, now + timedelta(seconds=seconds), "retry after", count_attempt=False
            )
        except (Forbidden, BadRequest) as exc:
            log.warning("outbox item %s (%s) refused: %s", item.id, item.kind, exc.message)
            await self.store.mark_failed(item.id, now, exc.message)
        except (NetworkError, TelegramError) as exc:
            if item.attempts + 1 >= MAX_ATTEMPTS:
                log.warning("outbox item %s (%s) gave up: %s", item.id, item.kind, exc.message)
                await self.store.mark_failed(item.id, now, exc.message)
            else:
                await self.store.retry_later(item.id, backoff(item.attempts, now), exc.message)

    async def _send_text(self, item: OutboxItem) -> None:
        assert item.chat_id is not None
        parts = split_message(item.text)
        buttons = item.payload.get("buttons")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            await self.bot.send_message(
                item.chat_id, part, reply_markup=keyboard(buttons) if last else None
            )

    def _render(self, case: CaseView, unit_id: int | None) -> tuple[str, list[list[tuple[str, str]]]]:
        """The card as the unit it was posted for should see it now."""
        now = self.clock()
        if unit_id is not None and unit_id != case.unit_id:
            return moved_card_text(case), []
        # Another institution's liaisons do not see the citizen's name and contact.
        personal = case.unit_kind != "external"
        return card_text(case, self.tz, now, personal=personal), card_buttons(case)

    async def _post_card(self, item: OutboxItem) -> None:
        assert item.chat_id is not None and item.case_id is not None
        case = await self.cases.get(item.case_id)
        unit_id = item.payload.get("unit_id")
        if unit_id is not None and unit_id != case.unit_id:
            await self.store.mark_sent(item.id, self.clock())  # moved on before delivery
            return
        text, buttons = self._render(case, unit_id)
        message: Message = await self.bot.send_message(
            item.chat_id, text, reply_markup=keyboard(buttons)
        )
        await self.store.record_card(
            CardRef(case.id, item.chat_id, message.message_id, unit_id), self.clock(), item.id
        )
        for att in await self.cases.attachments(case.id):
            if att.purpose != "intake":
                continue
            caption = cut(f"#{case.id}", CAPTION_LIMIT)
            try:
                if att.kind == "photo":
                    await self.bot.send_photo(item.chat_id, att.file_id, caption=caption,
                                              reply_to_message_id=message.message_id)
                else:
                    await self.bot.send_document(item.chat_id, att.file_id, caption=caption,
                                                 reply_to_message_id=message.message_id)
            except BadRequest as exc:  # the card is out; a bad file id must not resend it
                log.warning("attachment %s of case %s not sent: %s", att.id, case.id, exc.message)

    async def _refresh(self, item: OutboxItem) -> None:
        assert item.case_id is not None
        case = await self.cases.get(item.case_id)
        for ref in await self.store.cards(case.id):
            text, buttons = self._render(case, ref.unit_id)
            try:
                await self.bot.edit_message_text(
                    text, chat_id=ref.chat_id, message_id=ref.message_id,
                    reply_markup=keyboard(buttons),
                )
            except BadRequest as exc:
                msg = exc.message.lower()
                if "not modified" in msg:
                    continue
                if "not found" in msg or "can't be edited" in msg:
                    await self.store.forget_card(ref.chat_id, ref.message_id)
                    continue
                raise
