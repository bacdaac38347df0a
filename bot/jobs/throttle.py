"""Telegram's sending limits, kept on our side: about 30 messages a second overall, one a second
per chat, 20 a minute per group. (A ``retry_after`` from Telegram postpones the outbox row itself.)"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bot.config import DeliverySettings

MARGIN = 0.05  # seconds: our clock and Telegram's are not the same; stay clear of the edges


class Throttle:
    def __init__(self, limits: DeliverySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = limits.overall_per_second
        self.chat_gap = 1.0 / limits.per_chat_per_second
        self.group_per_minute = limits.group_per_minute
        self.clock = clock
        self._overall: deque[float] = deque()
        self._last: dict[int, float] = {}
        self._groups: dict[int, deque[float]] = {}

    def ready_in(self, chat_id: int) -> float:
        """Seconds until a message to this chat keeps within every limit (0: now)."""
        now = self.clock()
        waits = [0.0]
        overall = self._overall
        while overall and now - overall[0] >= 1.0 + MARGIN:
            overall.popleft()
        if len(overall) >= self.per_second:
            waits.append(1.0 + MARGIN - (now - overall[0]))
        last = self._last.get(chat_id)
        if last is not None:
            waits.append(self.chat_gap + MARGIN - (now - last))
        if chat_id < 0:
            window = self._groups.setdefault(chat_id, deque())
            while window and now - window[0] >= 60.0 + MARGIN:
                window.popleft()
            if len(window) >= self.group_per_minute:
                waits.append(60.0 + MARGIN - (now - window[0]))
        return max(waits)

    def take(self, chat_id: int) -> float:
        """Reserve a slot now if there is one (returns 0), else return the seconds to wait.
        No await between the check and the reservation: concurrent senders cannot overshoot."""
        wait = self.ready_in(chat_id)
        if wait > 0:
            return wait
        now = self.clock()
        self._overall.append(now)
        self._last[chat_id] = now
        if chat_id < 0:
            self._groups.setdefault(chat_id, deque()).append(now)
        return 0.0
