"""One try at handling a stored update: what the inbox (bot/service.py) and the error handler
(bot/handlers/errors.py) share, apart from both."""

from __future__ import annotations

import traceback
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Attempt:
    """The error handler notes the error here; the inbox tries again, or parks after the last."""

    final: bool
    error: BaseException | None = None
    may_wait: bool = False  # a 429 (Telegram's limit) is waited out, not counted as a try

    def retrying(self, error: BaseException) -> bool:
        """Whether the inbox tries the update again after ``error``."""
        return not self.final or (self.may_wait and type(error).__name__ == "RetryAfter")


current_attempt: ContextVar[Attempt | None] = ContextVar("casebot_attempt", default=None)


def describe(error: BaseException) -> str:
    """An error for the log and a parked row: its type and the last place in casebot's code,
    never its message (it may quote what a citizen wrote)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/bot/" in f.filename]
    place = f" at {frames[-1].filename.rsplit('/bot/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}{place}"
