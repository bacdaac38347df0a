"""Telegram's sending limits, kept on our side: about 30 messages a second overall, one a second
per chat, 20 a minute per group. (A ``retry_after`` from Telegram postpones the outbox row itself.)"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from bot.config import DeliverySettings

# Telegram counts a message when it arrives, we when we send it, and requests sent together
# arrive spread over some milliseconds: a later one may overtake them. A margin on the edges alone
# still drew 429s (29 to 38 in 3,000 messages, bench/delivery.py); spacing the messages evenly, so that
# a second's allowance never leaves at once, drew none.
MARGIN = 0.03  # every window 3% longer than Telegram's
# A call held up on its way (a busy machine, a slow network) reaches Telegram later than we sent
# it, and may then arrive close to the ones after it: a call that took longer than the quickest
# of the last ``LATENCIES`` counts, once answered, as sent that much later (see ``done``).
LATENCIES = 64


class _Sent:
    """When a message counts as sent (moved later by ``Throttle.done`` if it was held up)."""

    __slots__ = ("answered", "at", "taken")

    def __init__(self, at: float) -> None:
        self.at = at
        self.taken = at
        self.answered = False  # until then, it may yet be moved later


KEEP_CHATS = 2048  # past this many chats, those out of every window are forgotten


class Throttle:
    def __init__(self, limits: DeliverySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = limits.overall_per_second
        self.window = 1.0 * (1 + MARGIN)
        self.spacing = self.window / self.per_second  # between any two messages
        self.chat_gap = (1 + MARGIN) / limits.per_chat_per_second
        self.group_per_minute = limits.group_per_minute
        self.group_window = 60.0 * (1 + MARGIN)
        self.clock = clock
        self._overall: deque[_Sent] = deque()
        self._latest = float("-inf")  # when the latest message left
        self._last: dict[int, float] = {}
        self._groups: dict[int, deque[_Sent]] = {}
        self._open: dict[int, _Sent] = {}  # each chat's message under way
        self._latencies: deque[float] = deque(maxlen=LATENCIES)

    def ready_in(self, chat_id: int) -> float:
        """Seconds until a message to this chat keeps within every limit (0: now)."""
        return max(0.0, self.overall_ready_in(), self.chat_ready_at(chat_id) - self.clock())

    def overall_ready_in(self) -> float:
        """Seconds until the overall limit (30 a second, evenly spaced) allows a message."""
        now = self.clock()
        waits = [0.0, self.spacing - (now - self._latest)]
        wait = _window_wait(self._overall, now, self.window, self.per_second)
        if wait is not None:
            waits.append(wait)
        return max(waits)

    def chat_ready_at(self, chat_id: int) -> float:
        """When (on ``clock``) this chat's own limits allow a message; the overall limit aside.
        It moves only when a message to this chat takes a slot (or is answered)."""
        now = self.clock()
        at = float("-inf")
        last = self._last.get(chat_id)
        if last is not None:
            at = last + self.chat_gap
        if chat_id < 0:
            window = self._groups.get(chat_id)
            wait = None if window is None else _window_wait(
                window, now, self.group_window, self.group_per_minute)
            if wait is not None:
                at = max(at, now + wait)
        return at

    def take(self, chat_id: int) -> float:
        """Reserve a slot now if there is one (returns 0), else return the seconds to wait.
        No await between the check and the reservation: concurrent senders cannot overshoot."""
        wait = self.ready_in(chat_id)
        if wait > 0:
            return wait
        now = self.clock()
        sent = _Sent(now)
        self._overall.append(sent)
        self._latest = max(self._latest, now)
        self._last[chat_id] = now
        previous = self._open.pop(chat_id, None)
        if previous is not None:  # never answered (``done`` not called): as it stands
            previous.answered = True
        self._open[chat_id] = sent
        if chat_id < 0:
            self._groups.setdefault(chat_id, deque()).append(sent)
        if len(self._last) > KEEP_CHATS:
            self._forget(now)
        return 0.0

    def _forget(self, now: float) -> None:
        """Chats whose last message is older than every window: nothing of them limits a message
        any more (the maps stay as large as the chats written to within a minute)."""
        old = now - max(self.group_window, self.chat_gap, self.window)
        for chat_id in [c for c, at in self._last.items() if at < old and c not in self._open]:
            del self._last[chat_id]
            window = self._groups.get(chat_id)
            if window is not None and all(s.answered and s.at < old for s in window):
                del self._groups[chat_id]

    def done(self, chat_id: int) -> None:
        """The call that took this chat's last slot was answered. If it took longer than the
        quickest calls lately, it may have reached Telegram that much later than it left: it
        counts as sent then, in the windows Telegram counts (30 a second, one a second per chat,
        20 a minute per group)."""
        sent = self._open.pop(chat_id, None)
        if sent is None:
            return
        sent.answered = True
        now = self.clock()
        self._latencies.append(now - sent.taken)
        later = now - min(self._latencies)
        if later > sent.at:  # (the even spacing stays from when it left: it is our pace)
            sent.at = later
            self._last[chat_id] = max(self._last.get(chat_id, later), later)


def _window_wait(sent: deque[_Sent], now: float, window: float, limit: float) -> float | None:
    """Seconds until fewer than ``limit`` messages were sent within ``window`` (None: already).
    Forgets those long out of it."""
    while sent and sent[0].answered and now - sent[0].at >= window:
        sent.popleft()
    inside = sorted(_recent(sent, now, window))
    if len(inside) < limit:
        return None
    return inside[len(inside) - int(limit)] + window - now


def _recent(sent: Iterable[_Sent], now: float, window: float) -> Iterable[float]:
    return (s.at for s in sent if now - s.at < window)
