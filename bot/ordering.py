"""Updates from different chats are handled side by side; updates from one chat, one at a time
and in the order they came.

One official's slow network or a long export must not hold up everybody else, but the updates of
one chat must keep their order: conversations (``ConversationHandler`` keeps its state per chat
and person and expects them one by one), a reply to a question after the question, a second press
after the first. Every change to a case is still one transaction with its version checked
(``CaseService.apply``), so two chats pressing on the same case at once are safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT_UPDATES = 16  # chats handled at once; a burst beyond waits its turn


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """In order per chat (or per person, for updates without a chat), concurrent across chats."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[object, asyncio.Lock] = {}
        self._waiting: dict[object, int] = {}

    @staticmethod
    def key(update: object) -> object:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
        return None  # not from a chat or a person: one at a time, among themselves

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self.key(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:  # asyncio's locks are fair: the updates of a chat keep their order
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # nobody else queued for this chat: forget its lock
                del self._waiting[key]
                del self._locks[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
