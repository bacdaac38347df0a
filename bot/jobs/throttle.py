"""Telegram's sending limits, kept on our side: about 30 messages a second overall, one a second
per chat, 20 a minute per group. (A ``retry_after`` from Telegram postpones the outbox row itself.)"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bot.config import DeliverySettings

# Telegram counts a message when it arrives, we when we send it, and requests sent together
# arrive spread over some milliseconds: a later one may overtake them. A margin on the edges alone
# still drew 429s (29 to 38 in 3,000 messages, bench/delivery.py); spacing the messages evenly, so that
# a second's allowance never leaves at once, drew none.
MARGIN = 0.03  # every window 3% longer than Telegram's


class Throttle:
    def __init__(self, limits: DeliverySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = limits.overall_per_second
        self.window = 1.0 * (1 + MARGIN)
        self.spacing = self.window / self.per_second  # between any two messages
        self.chat_gap = (1 + MARGIN) / limits.per_chat_per_second
        self.group_per_minute = limits.group_per_minute
        self.group_window = 60.0 * (1 + MARGIN)
        self.clock = clock
        self._overall: deque[float] = deque()
        self._last: dict[int, float] = {}
        self._groups: dict[int, deque[float]] = {}

    def ready_in(self, chat_id: int) -> float:
        """Seconds until a message to this chat keeps within every limit (0: now)."""
        now = self.clock()
        waits = [0.0]
        overall = self._overall
        while overall and now - overall[0] >= self.window:
            overall.popleft()
        if len(overall) >= self.per_second:
            waits.append(self.window - (now - overall[0]))
        if overall:
            waits.append(self.spacing - (now - overall[-1]))
        last = self._last.get(chat_id)
        if last is not None:
            waits.append(self.chat_gap - (now - last))
        if chat_id < 0:
            window = self._groups.setdefault(chat_id, deque())
            while window and now - window[0] >= self.group_window:
                window.popleft()
            if len(window) >= self.group_per_minute:
                waits.append(self.group_window - (now - window[0]))
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
