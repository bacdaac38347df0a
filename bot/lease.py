"""Leases: what only one instance may do at a time, held by one instance, renewed, taken over.

Two ``casebot run`` processes may share one database (README, "Two instances"). Each process is an
*instance* with an id of its own, ``host:pid:random``. What must run once across them (the outbox
sender and the repeating jobs: the lease ``jobs``; polling Telegram's getUpdates: ``poller``) runs
only in the instance holding its lease, a row of the ``leases`` table:

- *acquire* and *renew* are one statement: the row becomes this instance's, for ``seconds`` more,
  if it has none, or its lease has expired, or it is this instance's already (``UPDATE … WHERE
  expires_at < now OR holder = me``, as an upsert). Standard SQL: the same on SQLite and
  PostgreSQL.
- the holder renews every ``seconds / 3``; an instance that cannot renew for ``2 × seconds / 3``
  gives the work up before its lease can expire (``Keeper``). A standby tries again right after
  the holder's lease expires, so a dead holder's work is taken over within ``seconds``.
- a holder that is a process of this same host (and process namespace) that no longer exists
  is known dead at once: a restarted single instance does not wait out its own lease.
- *release* (a clean stop) deletes the row: the other instance takes over at its next try.

Times are the wall clock's (``wall``), not the domain clock that tests move: a lease is about
real seconds passing on every instance (their clocks are assumed in step, as NTP keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JOBS = "jobs"        # the outbox sender and the repeating jobs (reminders, digests, audit, backups)
POLLER = "poller"    # long polling: Telegram allows one getUpdates at a time per bot
INSTANCE = "instance:"  # each instance's own lease, named after it: which instances are alive


def wall() -> datetime:
    return datetime.now(UTC)


def stamp(dt: datetime) -> str:
    """A lease's time as text: UTC to the millisecond, always the same width (text compares as
    time on both stores)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")


def _namespace() -> str:
    """The process namespace this process sees pids in ('' where there is no /proc): two
    containers sharing a host name are still told apart."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # 'pid:[4026531836]'
    except OSError:
        return ""
    return "".join(c for c in link if c.isdigit())


@dataclass(frozen=True)
class Instance:
    """This process as a holder: ``id`` is ``host:pid:random``; ``host`` the configured name or
    the host name, with the process namespace (``~n``) where there is one."""

    id: str
    host: str
    pid: int

    @classmethod
    def new(cls, name: str | None = None) -> Instance:
        ns = _namespace()
        host = (name or socket.gethostname() or "host").replace(":", "-") + (f"~{ns}" if ns else "")
        pid = os.getpid()
        return cls(f"{host}:{pid}:{secrets.token_hex(3)}", host, pid)

    def dead(self, holder: str) -> bool:
        """Whether ``holder`` is known to be gone: a process of this host and namespace whose
        pid no longer exists. Another host's, or a pid still there, is not known dead: its lease
        has to expire."""
        parts = holder.split(":")
        if len(parts) != 3:
            return False
        host, pid_text, _random = parts
        if host != self.host or not pid_text.isdigit() or int(pid_text) == self.pid:
            return False
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except OSError:  # there, but another user's
            return False
        return False


@dataclass(frozen=True)
class Holding:
    """Who holds a lease and until when (wall clock)."""

    holder: str
    expires_at: datetime


_ACQUIRE = (
    "INSERT INTO leases(name, holder, expires_at, renewed_at) VALUES(?, ?, ?, ?)"
    " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
    " renewed_at = excluded.renewed_at WHERE leases.expires_at < ? OR leases.holder = ?")


class Leases:
    """The ``leases`` table, as one instance uses it."""

    def __init__(self, db: Database, instance: Instance, seconds: float, clock: Clock = wall) -> None:
        self.db = db
        self.instance = instance
        self.seconds = seconds
        self.clock = clock

    @property
    def me(self) -> str:
        return self.instance.id

    async def acquire(self, name: str) -> Holding:
        """Take the lease, or renew it, for ``seconds`` from now: one atomic statement. Returns
        who holds it now (this instance, or the one that still does)."""
        now = self.clock()
        until = now + timedelta(seconds=self.seconds)
        changed = await self.db.write(_ACQUIRE, (name, self.me, stamp(until), stamp(now),
                                                 stamp(now), self.me))
        if changed:
            return Holding(self.me, until)
        current = await self.holding(name)
        if current is None:  # released in between: try once more at the next turn
            return Holding("", now)
        if self.instance.dead(current.holder):
            taken = await self.db.write(
                "UPDATE leases SET holder = ?, expires_at = ?, renewed_at = ? WHERE name = ?"
                " AND holder = ?", (self.me, stamp(until), stamp(now), name, current.holder))
            if taken:
                log.warning("lease %s: its holder %s is no longer running; taken over", name,
                            current.holder)
                return Holding(self.me, until)
        return current

    async def holding(self, name: str) -> Holding | None:
        row = await self.db.one("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
        if row is None:
            return None
        return Holding(str(row[0]), datetime.fromisoformat(str(row[1])))

    async def release(self, name: str) -> None:
        """Give the lease up now (a clean stop): the other instance need not wait for it."""
        await self.db.write("DELETE FROM leases WHERE name = ? AND holder = ?", (name, self.me))

    async def others_alive(self) -> bool:
        """Whether another instance holds its own lease (``instance:…``) now."""
        row = await self.db.one(
            "SELECT count(*) FROM leases WHERE name LIKE ? AND holder <> ? AND expires_at >= ?",
            (INSTANCE + "%", self.me, stamp(self.clock())))
        return bool(row and int(row[0]))

    async def forget_dead(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Instances' own leases long expired (processes gone without a clean stop)."""
        return await self.db.write("DELETE FROM leases WHERE name LIKE ? AND expires_at < ?",
                                   (INSTANCE + "%", stamp(self.clock() - older_than)))


@dataclass(frozen=True)
class Fence:
    """A condition for a write that only the holder of a lease may make (the outbox sender's
    "sending" mark): true while this instance holds ``name`` and it has not expired."""

    name: str
    holder: str
    clock: Clock = wall

    def sql(self) -> tuple[str, tuple[str, str, str]]:
        return ("EXISTS (SELECT 1 FROM leases WHERE name = ? AND holder = ? AND expires_at > ?)",
                (self.name, self.holder, stamp(self.clock())))


@dataclass
class _Wanted:
    name: str
    gained: Callable[[], Awaitable[None]]
    lost: Callable[[], Awaitable[None]]
    held: bool = False
    renewed: datetime | None = None   # the last renewal that went through
    retry_at: datetime | None = None  # a standby: when the holder's lease expires


@dataclass
class Keeper:
    """Holds the leases an instance wants, renewing them every ``seconds / 3``: ``gained`` runs
    when one is taken, ``lost`` when it is lost (taken by another after it expired, or not
    renewed for ``2 × seconds / 3``) or given up at ``stop``. ``every_turn`` runs after each
    turn (the inbox's claims are renewed there)."""

    leases: Leases
    every_turn: Callable[[], Awaitable[None]] | None = None
    _wanted: dict[str, _Wanted] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _poke: asyncio.Event = field(default_factory=asyncio.Event)
    others: bool = False  # another instance is alive (its own lease held)

    @property
    def renew_seconds(self) -> float:
        return self.leases.seconds / 3

    def want(self, name: str, gained: Callable[[], Awaitable[None]],
             lost: Callable[[], Awaitable[None]]) -> None:
        self._wanted[name] = _Wanted(name, gained, lost)

    def holds(self, name: str) -> bool:
        wanted = self._wanted.get(name)
        return wanted is not None and wanted.held

    def held_elsewhere(self, name: str) -> bool:
        """Another instance held the lease at the last turn, and it has not expired since."""
        wanted = self._wanted.get(name)
        return (wanted is not None and not wanted.held and wanted.retry_at is not None
                and wanted.retry_at > self.leases.clock())

    def poke(self) -> None:
        """Turn now (a write refused for want of a lease: find out at once)."""
        self._poke.set()

    async def start(self) -> None:
        """The first turn, before returning (a lone instance starts with its leases held), then
        the turns in the background."""
        self.want(INSTANCE + self.leases.me, _nothing, _nothing)
        with contextlib.suppress(Exception):
            await self.leases.forget_dead()
        await self.turn()
        self._task = asyncio.create_task(self._loop(), name="casebot-leases")

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), timeout=self._next_wait())
            self._poke.clear()
            try:
                await self.turn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease turn failed; trying again")

    def _next_wait(self) -> float:
        now = self.leases.clock()
        wait = self.renew_seconds
        for w in self._wanted.values():
            if not w.held and w.retry_at is not None:
                wait = min(wait, max(0.0, (w.retry_at - now).total_seconds()) + 0.05)
        return wait

    async def turn(self) -> None:
        for w in list(self._wanted.values()):
            await self._turn_one(w)
        try:
            self.others = await self.leases.others_alive()
            if self.every_turn is not None:
                await self.every_turn()
        except Exception as exc:
            log.warning("renewing the inbox's claims failed (%s)", type(exc).__name__)

    async def _turn_one(self, w: _Wanted) -> None:
        now = self.leases.clock()
        try:
            holding = await self.leases.acquire(w.name)
        except Exception as exc:  # the database is busy or away: hold on while the lease lasts
            log.warning("lease %s not renewed (%s)", w.name, type(exc).__name__)
            if w.held and (w.renewed is None or now - w.renewed >= timedelta(
                    seconds=2 * self.leases.seconds / 3)):
                log.error("lease %s not renewed for %g s: giving its work up", w.name,
                          (now - (w.renewed or now)).total_seconds())
                w.held = False
                await w.lost()
            return
        mine = holding.holder == self.leases.me
        if mine:
            w.renewed, w.retry_at = now, None
            if not w.held:
                w.held = True
                if not w.name.startswith(INSTANCE):
                    log.info("lease %s taken (instance %s)", w.name, self.leases.me)
                try:
                    await w.gained()
                except Exception as exc:  # e.g. the Bot API away: started again at the next turn
                    log.warning("lease %s: starting its work failed (%s); trying again", w.name,
                                type(exc).__name__)
                    w.held = False
            return
        w.retry_at = holding.expires_at
        if w.held:
            log.error("lease %s was taken by %s: giving its work up", w.name, holding.holder)
            w.held = False
            await w.lost()

    async def stop(self) -> None:
        """Stop renewing; give up what is held (``lost``), and release it at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for w in self._wanted.values():
            if w.held:
                w.held = False
                try:
                    await w.lost()
                finally:
                    with contextlib.suppress(Exception):
                        await self.leases.release(w.name)


async def _nothing() -> None:
    return None
