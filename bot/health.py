"""``casebot health``: is the running bot well? For Docker's HEALTHCHECK and for monitoring.

Another process than the bot asks, so the bot leaves traces it can read: the database itself
(opened read-only and given ``PRAGMA quick_check``) and a heartbeat file beside it, which the
outbox sender rewrites every few seconds while its loop turns (``Heartbeat.beat``). A heartbeat
older than ``stale_after`` means the sender is stuck, or the bot is not running.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bot.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # the sender rewrites the heartbeat at most this often
MIN_STALE_SECONDS = 60.0


def heartbeat_path(database: Path | str) -> Path | None:
    """The heartbeat file beside the database (none for an in-memory database)."""
    if str(database) == ":memory:":
        return None
    path = Path(database)
    return path.with_name(path.name + ".heartbeat")


def stale_after(settings: Settings) -> float:
    """Seconds without a heartbeat after which the sender counts as dead: at least a minute, and
    room for three of the sender's idle waits (``outbox.interval_seconds``)."""
    return max(MIN_STALE_SECONDS, 3 * settings.outbox_interval_seconds + HEARTBEAT_SECONDS)


class Heartbeat:
    """Written by the outbox sender's loop: the time of its last turn, as ISO text in a file."""

    def __init__(self, path: Path | None, clock: Callable[[], datetime]) -> None:
        self.path = path
        self.clock = clock
        self._last: datetime | None = None
        self._warned = False

    def beat(self) -> None:
        """Record that the loop turned, unless that was done less than HEARTBEAT_SECONDS ago.
        Never raises: a full disk must not stop the sender (``health`` will then say so)."""
        if self.path is None:
            return
        now = self.clock()
        if self._last is not None and abs((now - self._last).total_seconds()) < HEARTBEAT_SECONDS:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(now.isoformat(timespec="seconds") + "\n", encoding="ascii")
            os.replace(tmp, self.path)  # a reader never sees a half-written file
        except OSError as exc:
            if not self._warned:
                log.warning("heartbeat %s not written: %s", self.path, exc.strerror or exc)
                self._warned = True
            return
        self._last = now
        self._warned = False


def database_problem(path: Path) -> str | None:
    """Why the database cannot serve the bot, as one line; None when it opens and is intact."""
    if str(path) == ":memory:":
        return "database: an in-memory database cannot be checked from another process"
    if not path.exists():
        return f"database {path} does not exist (the bot creates it when it starts)"
    if not path.is_file():
        return f"database {path} is not a file"
    try:
        # Read-only, so that a check never creates, migrates or changes anything.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return f"database {path} does not open: {exc}"
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in rows] != [("ok",)]:
            more = f" (and {len(rows) - 1} more problems)" if len(rows) > 1 else ""
            return f"database {path} is damaged: {rows[0][0]}{more}"
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if not version:
            return f"database {path} holds no casebot tables (schema version 0)"
    except sqlite3.Error as exc:
        return f"database {path} is damaged: {exc}"
    finally:
        conn.close()
    return None


def postgresql_problem(url: str) -> str | None:
    """Why the PostgreSQL database cannot serve the bot, as one line; None when it answers and
    holds casebot's tables."""
    from bot.pg import PgConnection, redacted

    try:
        conn = PgConnection.connect(url, connect_timeout=5)
    except Exception as exc:  # psycopg.Error, or a bad URL
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"database {redacted(url)} does not answer: {why}"
    try:
        if not conn.schema_version():
            return f"database {redacted(url)} holds no casebot tables (schema version 0)"
    finally:
        conn.close()
    return None


def heartbeat_problem(path: Path | None, now: datetime, max_age: float) -> str | None:
    """Why the outbox sender does not look alive, as one line; None when its heartbeat is fresh."""
    if path is None:
        return "outbox sender: an in-memory database has no heartbeat file"
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return f"outbox sender: no heartbeat at {path} (is `casebot run` running?)"
    except (OSError, UnicodeDecodeError) as exc:
        return f"outbox sender: cannot read the heartbeat {path}: {exc}"
    try:
        beat = datetime.fromisoformat(text)
        age = (now - beat).total_seconds()
    except (ValueError, TypeError):
        return f"outbox sender: the heartbeat {path} holds {text[:40]!r}, not a time"
    if age > max_age:
        return (f"outbox sender: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s): "
                "the sender is stuck or the bot is not running")
    return None


def check(settings: Settings, now: datetime, max_age: float | None = None) -> str | None:
    """The first problem found, as one line; None when the bot is healthy."""
    limit = stale_after(settings) if max_age is None else max_age
    problem = (database_problem(settings.database_path) if settings.database_url is None
               else postgresql_problem(settings.database_url))
    return problem or heartbeat_problem(
        heartbeat_path(settings.database_path), now, limit)
