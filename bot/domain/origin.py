"""Which update asked for a change, recorded in the change's own transaction.

The inbox hands each update to the handlers inside ``handling(key)``; every change made meanwhile
(``record``) inserts ``<key>/<n>`` — the update's n-th change — into ``applied_updates`` with the
change itself. When the same update is handled again (re-delivered, or retried after a crash
between the change and its reply), its changes come in the same order, each finds its key taken,
and the transaction rolls back as ``AlreadyDone``: nothing is changed twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from bot.db import Tx, to_db, unique_violation
from bot.domain.errors import AlreadyDone


@dataclass
class Origin:
    key: str
    changes: int = 0


_current: ContextVar[Origin | None] = ContextVar("casebot_origin", default=None)


@contextmanager
def handling(key: str) -> Iterator[Origin]:
    origin = Origin(key)
    token = _current.set(origin)
    try:
        yield origin
    finally:
        _current.reset(token)


def record(tx: Tx, now: datetime) -> None:
    """Put this change's key into the transaction (outside an update, e.g. a job: nothing)."""
    origin = _current.get()
    if origin is None:
        return
    origin.changes += 1
    tx.add("INSERT INTO applied_updates(key, at) VALUES(?, ?)",
           (f"{origin.key}/{origin.changes}", to_db(now)))


def already_done(error: BaseException) -> bool:
    return unique_violation(error, "applied_updates", "key")


def translate(error: BaseException) -> BaseException:
    """The error a caller sees: a taken key becomes ``AlreadyDone``."""
    return AlreadyDone() if already_done(error) else error
