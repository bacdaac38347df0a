"""Which stored update is handled next: each chat's one at a time and in order, chats side by side.

A chat is either waiting in ``ready`` (it has rows to handle and no worker) or held by exactly one
worker; a worker handles one row of its chat, then puts the chat at the back of ``ready`` when
it has more. So a chat flooding the bot never holds more than one of the workers and waits its
turn like everyone else: it delays only itself. Rows come from the inbox (``push``), never from
memory alone, so a row not handled when the process stops is handled at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

WORKERS = 16


class Scheduler:
    def __init__(self, handle: Callable[[int], Awaitable[None]], workers: int = WORKERS,
                 drained: Callable[[str], None] | None = None) -> None:
        self._handle = handle
        self._drained = drained  # told when a chat has no row left in memory (another instance
        # may have stored its next one: bot/service.py looks for it)
        self._size = workers
        self._rows: dict[str, deque[int]] = {}  # a chat's rows still to handle, in order
        self._known: set[int] = set()           # every row in _rows or in a worker's hands
        self._ready: deque[str] = deque()       # chats with rows and no worker, in turn
        self._held: set[str] = set()
        self._wake = asyncio.Condition()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    def push(self, rows: list[tuple[int, str]]) -> None:
        """Rows (id, chat key) to handle, in order; a row already known is ignored."""
        woke = False
        for row_id, chat in rows:
            if row_id in self._known:
                continue
            self._known.add(row_id)
            queue = self._rows.get(chat)
            if queue is None:
                queue = self._rows[chat] = deque()
                if chat not in self._held:
                    self._ready.append(chat)
                    woke = True
            queue.append(row_id)
        if woke:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._wake:
            self._wake.notify_all()

    def knows(self, row_id: int) -> bool:
        """The row is waiting for a worker or in one's hands."""
        return row_id in self._known

    @property
    def idle(self) -> bool:
        return not self._known

    def start(self) -> None:
        self._stopping = False
        self._workers = [asyncio.create_task(self._work(), name=f"inbox-worker-{n}")
                         for n in range(self._size)]

    async def stop(self, timeout: float) -> None:
        """Take no new row; let each worker finish the row in hand for up to ``timeout`` seconds,
        then cancel it (its row stays in the inbox, handled again at the next start)."""
        self._stopping = True
        await self._notify()
        if not self._workers:
            return
        _done, late = await asyncio.wait(self._workers, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("stopped %d update(s) in hand: handled again at the next start", len(late))
            await asyncio.wait(late)
        self._workers = []

    async def _next(self) -> str | None:
        async with self._wake:
            await self._wake.wait_for(lambda: self._stopping or bool(self._ready))
            if self._stopping:
                return None
            chat = self._ready.popleft()
            self._held.add(chat)
            return chat

    async def _work(self) -> None:
        while (chat := await self._next()) is not None:
            queue = self._rows[chat]
            row_id = queue.popleft()
            try:
                await self._handle(row_id)
            except Exception:  # the handler records failures itself; keep the worker alive
                log.exception("inbox row %d could not be handled", row_id)
            finally:
                self._known.discard(row_id)
                self._held.discard(chat)
                if queue:
                    self._ready.append(chat)
                    await self._notify()
                else:
                    del self._rows[chat]
                    if self._drained is not None and not self._stopping:
                        self._drained(chat)
