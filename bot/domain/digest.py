"""The daily digest: what is new, done, stuck and late in a supervisor's units, or everywhere.

At the configured local time (``[digest] time``, 07:30 by default) every supervisor who has not
muted it gets a digest of their subtree, and the working group one of everything (in its chat, or
privately to each member when it has none). ``digest_log`` records each recipient's digest per
local day, in the same transaction that queues it, so a restart never sends it twice and a digest
missed while the bot was down goes out once when it starts again.

Cost: the per-unit aggregates are computed once per run (a handful of queries over the indexes
on status, unit and due date, and one pass for the last 24 hours); each scope is then a sum over
its units in Python, so a run grows with the number of scopes, not scopes × cases.

A digest holds numbers, units and case numbers only: never a citizen's name or contact. The one of
everything (the working group's) ends with the audit chain's head of the day (bot/audit.py): a
copy of it outside the database, against which a rewrite of the history shows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from html import escape

from bot import audit
from bot.config import Settings
from bot.db import Database, from_db, to_db
from bot.domain import outbox
from bot.domain.errors import Forbidden
from bot.domain.model import days_between, days_label
from bot.domain.people import PeopleService
from bot.domain.rules import OUTCOMES, STATUS_LABELS, UNFINISHED_STATUSES, Role, Status
from bot.domain.units import Unit, UnitService
from bot.i18n import _, label, ngettext, use_locale
from bot.render import when

DEFAULT_TIME = "07:30"
OVERDUE_LISTED = 10  # the oldest overdue cases named in a digest
# The order in which the statuses of unfinished cases are listed.
STATUS_ORDER = (Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_INFO,
                Status.FORWARDED, Status.ACKNOWLEDGED, Status.RESOLVED)
assert set(STATUS_ORDER) == UNFINISHED_STATUSES

_UNFINISHED = sorted(UNFINISHED_STATUSES)
_MARKS = ",".join("?" * len(_UNFINISHED))
# A case counts where it is: its unit, or (in the working group's queue) the place it concerns.
_HOME = "COALESCE(unit_id, place_unit_id)"

Recipient = tuple[int, str, set[int] | None]  # chat id, title, scope (None: everything)


@dataclass
class Tally:
    """Counts for one unit (or summed over a scope)."""

    by_status: dict[Status, int] = field(default_factory=dict)  # unfinished cases only
    overdue: int = 0
    bouncing: int = 0
    new: int = 0       # created in the last 24 hours (an imported backlog is not new)
    resolved: int = 0  # resolved in the last 24 hours (merged duplicates never count)
    closed: int = 0    # closed in the last 24 hours: confirmed or unreachable

    @property
    def unfinished(self) -> int:
        return sum(self.by_status.values())

    def add(self, other: Tally) -> None:
        for status, n in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + n
        self.overdue += other.overdue
        self.bouncing += other.bouncing
        self.new += other.new
        self.resolved += other.resolved
        self.closed += other.closed


@dataclass(frozen=True, order=True)
class Late:
    """An overdue case: what a digest may say about it."""

    due_at: str  # UTC text as stored: sorts like the time
    case_id: int
    unit_id: int | None = field(compare=False)  # None: in the working group's queue


@dataclass
class Snapshot:
    """The per-unit aggregates of one moment, shared by every digest of a run."""

    now: datetime
    tallies: dict[int, Tally]       # by unit (see _HOME)
    late: dict[int, list[Late]]     # by unit: its oldest overdue cases, at most OVERDUE_LISTED
    units: dict[int, Unit]          # active units
    children: dict[int | None, list[int]]
    requests_waiting: int = 0       # citizens' requests in the working group's /inbox

    def total(self, unit_ids: Iterable[int] | None) -> Tally:
        out = Tally()
        tallies = self.tallies.values() if unit_ids is None else (
            self.tallies[u] for u in unit_ids if u in self.tallies)
        for tally in tallies:
            out.add(tally)
        return out

    def oldest_late(self, unit_ids: Iterable[int] | None) -> list[Late]:
        lists = self.late.values() if unit_ids is None else (
            self.late[u] for u in unit_ids if u in self.late)
        return heapq.nsmallest(OVERDUE_LISTED, (c for cases in lists for c in cases))

    def name(self, unit_id: int | None) -> str:
        if unit_id is None:
            return _("queue")
        unit = self.units.get(unit_id)
        return unit.name if unit is not None else "?"


def parse_clock(value: object) -> time:
    """The digest time from the settings: a ``time`` or text like "07:30"."""
    if isinstance(value, time):
        return value
    return datetime.strptime(str(value), "%H:%M").time()


class DigestService:
    def __init__(
        self, db: Database, settings: Settings, units: UnitService, people: PeopleService,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.units = units
        self.people = people
        self.time = parse_clock(getattr(settings, "digest_time", DEFAULT_TIME))
        self.on_commit = on_commit or (lambda: None)

    # --- the daily run ---------------------------------------------------------------------

    async def send_due(self, now: datetime) -> int:
        """Queue today's digest for every recipient who has not had it, once the local time is
        past the digest time. Returns how many were queued (0 when all are done)."""
        local = now.astimezone(self.settings.tz)
        if local.time() < self.time:
            return 0
        day = local.date().isoformat()
        queued = 0
        with use_locale(self.settings.default_language):
            done = {int(r[0]) for r in await self.db.all(
                "SELECT chat_id FROM digest_log WHERE day = ?", (day,))}
            due = [r for r in await self.recipients() if r[0] not in done]
            if not due:
                return 0
            snap = await self.snapshot(now)
            units = await self._units()
            # The audit chain's head, published outside the database (bot/audit.py).
            _seq, head_hash = await audit.current_head(self.db)
            head = f"{head_hash}@{day}"
            for chat_id, _title, scope in due:
                with use_locale(await self.units.language_of(chat_id)):  # the reader's language
                    title = _("all units") if scope is None else self._title(scope, units)
                    text = self.render(snap, scope, title, head=head if scope is None else None)
                async with self.db.transaction() as conn:
                    cur = await conn.execute(
                        "INSERT OR IGNORE INTO digest_log(chat_id, day, queued_at) VALUES(?,?,?)",
                        (chat_id, day, to_db(now)))
                    if cur.rowcount == 1:  # not queued meanwhile by another run
                        outbox.queue_text(conn, chat_id, text, now)
                        queued += 1
        if queued:
            self.on_commit()
        return queued

    async def recipients(self) -> list[Recipient]:
        """Who gets a daily digest: the working group (its chat, or each member privately) with
        everything, and every supervisor with the union of their subtrees. Muted people are
        left out; a chat gets one digest (the working group's if it is both)."""
        out: list[Recipient] = []
        muted = {int(r[0]) for r in await self.db.all("SELECT tg_id FROM digest_mute")}
        everything = _("all units")
        wg_chat = await self.units.wg_chat_id()
        if wg_chat is not None:
            out.append((wg_chat, everything, None))
        else:
            out += [(tg, everything, None) for tg in await self.people.holders(Role.WORKING_GROUP)
                    if tg not in muted]
        rows = await self.db.all(
            "SELECT g.tg_id, g.unit_id FROM grants g JOIN units u ON u.id = g.unit_id"
            " WHERE g.role = ? AND g.revoked_at IS NULL AND u.active = 1 ORDER BY g.tg_id, g.unit_id",
            (Role.SUPERVISOR,))
        scopes: dict[int, set[int]] = {}
        for tg_id, unit_id in rows:
            if tg_id not in muted:
                scopes.setdefault(int(tg_id), set()).update(self.units.subtree(unit_id))
        taken = {chat for chat, _title, _scope in out}
        units = await self._units()
        for tg_id, scope in scopes.items():
            if tg_id not in taken:
                out.append((tg_id, self._title(scope, units), scope))
        return out

    # --- on demand -------------------------------------------------------------------------

    async def for_person(self, tg_id: int, now: datetime, chat_id: int | None = None) -> str:
        """A digest now for the person's scope (/digest); Forbidden if they have none."""
        scope = await self.people.unit_scope(tg_id)
        if scope is not None and not scope:
            await self.people.log_refusal(tg_id, "digest", None, chat_id, now)
            raise Forbidden()
        title = _("all units") if scope is None else self._title(scope, await self._units())
        return await self.build(scope, now, title)

    async def build(self, unit_ids: set[int] | None, now: datetime, title: str) -> str:
        """The digest of a scope (None: everything) as HTML."""
        return self.render(await self.snapshot(now), unit_ids, title)

    async def mute(self, tg_id: int, on: bool, now: datetime) -> None:
        """``on``: stop the person's daily digest (/digest off); otherwise resume it."""
        async with self.db.transaction() as conn:
            if on:
                conn.add("INSERT OR IGNORE INTO digest_mute(tg_id, since) VALUES(?, ?)",
                         (tg_id, to_db(now)))
            else:
                conn.add("DELETE FROM digest_mute WHERE tg_id = ?", (tg_id,))

    async def is_muted(self, tg_id: int) -> bool:
        return await self.db.one("SELECT 1 FROM digest_mute WHERE tg_id = ?", (tg_id,)) is not None

    # --- the aggregates ----------------------------------------------------------------------

    async def snapshot(self, now: datetime) -> Snapshot:
        """Every unit's counts, once; each digest then sums the units of its scope."""
        tallies: dict[int, Tally] = {}

        def tally(uid: int) -> Tally:
            t = tallies.get(uid)
            if t is None:
                t = tallies[uid] = Tally()
            return t

        # Unfinished cases by unit and status: the (status, unit_id) index covers the assigned
        # ones; those in the queue (unit_id NULL) count at their place.
        for uid, status, n in await self.db.all(
                f"SELECT unit_id, status, COUNT(*) FROM cases WHERE status IN ({_MARKS})"
                " AND unit_id IS NOT NULL GROUP BY status, unit_id", _UNFINISHED):
            tally(uid).by_status[Status(status)] = n
        for uid, status, n in await self.db.all(
                f"SELECT place_unit_id, status, COUNT(*) FROM cases WHERE status IN ({_MARKS})"
                " AND unit_id IS NULL GROUP BY status, place_unit_id", _UNFINISHED):
            t = tally(uid)
            t.by_status[Status(status)] = t.by_status.get(Status(status), 0) + n
        # Overdue (as CaseView.is_overdue): the (status, due_at) index; the oldest few per unit.
        late: dict[int, list[Late]] = {}
        for case_id, uid, home, due_at, n in await self.db.all(
                "SELECT id, unit_id, home, due_at, n FROM ("
                f" SELECT id, unit_id, {_HOME} AS home, due_at,"
                f"  ROW_NUMBER() OVER (PARTITION BY {_HOME} ORDER BY due_at, id) AS rn,"
                f"  COUNT(*) OVER (PARTITION BY {_HOME}) AS n"
                f" FROM cases WHERE status IN ({_MARKS}) AND due_at IS NOT NULL AND due_at < ?"
                ") AS ranked WHERE rn <= ?", [*_UNFINISHED, to_db(now), OVERDUE_LISTED]):
            tally(home).overdue = n
            late.setdefault(home, []).append(Late(due_at, case_id, uid))
        # Bouncing: a partial index holds the few flagged cases.
        for home, n in await self.db.all(
                f"SELECT {_HOME} AS home, COUNT(*) FROM cases WHERE bouncing = 1"
                f" AND status IN ({_MARKS}) GROUP BY home", _UNFINISHED):
            tally(home).bouncing = n
        # The last 24 hours: one pass over the cases (these times have no index).
        since = to_db(now - timedelta(days=1))
        for home, new, resolved, closed in await self.db.all(
                f"SELECT {_HOME} AS home, SUM(created_at >= ? AND external_ref IS NULL),"
                " SUM(resolved_at >= ? AND IFNULL(outcome, '') != 'merged'),"
                f" SUM(closed_at >= ? AND outcome IN ({','.join('?' * len(OUTCOMES))}))"
                " FROM cases WHERE created_at >= ? OR resolved_at >= ? OR closed_at >= ?"
                " GROUP BY home", [since, since, since, *OUTCOMES, since, since, since]):
            t = tally(home)
            t.new, t.resolved, t.closed = new or 0, resolved or 0, closed or 0
        units = await self._units()
        children: dict[int | None, list[int]] = {}
        for u in units.values():
            children.setdefault(u.parent_id, []).append(u.id)
        waiting = await self.db.one("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
        return Snapshot(now, tallies, late, units, children, int(waiting[0]) if waiting else 0)

    async def _units(self) -> dict[int, Unit]:
        return {u.id: u for u in await self.units.all()}

    @staticmethod
    def _tops(scope: set[int], units: dict[int, Unit]) -> list[int]:
        """The highest units of a scope: those whose parent is outside it."""
        return sorted(u for u in scope if u in units and units[u].parent_id not in scope)

    def _title(self, scope: set[int], units: dict[int, Unit]) -> str:
        return ", ".join(units[u].name for u in self._tops(scope, units)) or "—"

    # --- the text --------------------------------------------------------------------------

    def render(self, snap: Snapshot, scope: set[int] | None, title: str,
               head: str | None = None) -> str:
        tz, now = self.settings.tz, snap.now
        total = snap.total(scope)
        lines = ["📋 " + _("<b>Digest: {title}</b> · {when}").format(
            title=escape(title), when=when(now, tz))]
        lines.append(_("Last 24 hours: {new} new · {resolved} resolved · {closed} closed").format(
            new=total.new, resolved=total.resolved, closed=total.closed))
        if scope is None and snap.requests_waiting:  # the working group's: its queue of requests
            lines.append("📥 " + ngettext(
                "{n} request from citizens is waiting: /inbox",
                "{n} requests from citizens are waiting: /inbox",
                snap.requests_waiting).format(n=snap.requests_waiting))
        lines.append("")
        lines.append(_("<b>Open: {n}</b>").format(n=total.unfinished))
        for status in STATUS_ORDER:  # the statuses some case has, not a column of zeros
            if total.by_status.get(status, 0):
                lines.append("• " + _("{label}: {n}").format(
                    label=label(STATUS_LABELS, status), n=total.by_status[status]))
        lines.append("")
        overdue = _("<b>Overdue: {n}</b>").format(n=total.overdue)
        lines.append(("⚠️ " + overdue) if total.overdue else overdue)
        oldest = snap.oldest_late(scope)
        for case in oldest:
            due = from_db(case.due_at)
            assert due is not None
            lines.append(f"• <b>#{case.case_id}</b> · {escape(snap.name(case.unit_id))} · " + _(
                "overdue by {days}").format(days=days_label(max(1, days_between(due, now)))))
        if total.overdue > len(oldest):
            lines.append(_("… and {n} more: /overdue lists them.").format(
                n=total.overdue - len(oldest)))
        bouncing = _("Bouncing: {n}").format(n=total.bouncing)
        if total.bouncing:
            bouncing = "⚠️ " + bouncing + " · " + _("/bouncing lists them.")
        lines.append(bouncing)
        breakdown = self._breakdown(snap, scope)
        if breakdown:
            lines.append("")
            lines.append(_("<b>By unit</b>"))
            lines += breakdown
        if head is not None:
            lines.append("")
            lines.append("🔗 " + _("Audit head (keep it: casebot verify-audit --head checks the "
                                  "history against it): {head}").format(head=f"<code>{escape(head)}</code>"))
        return "\n".join(lines)

    def _unit_line(self, snap: Snapshot, name: str, unit_ids: Iterable[int]) -> str:
        t = snap.total(unit_ids)
        return "• " + _("{unit}: {open} open · {overdue} overdue").format(
            unit=escape(name), open=t.unfinished, overdue=t.overdue)

    def _breakdown(self, snap: Snapshot, scope: set[int] | None) -> list[str]:
        """Counts per child unit of each supervised unit; for everything, per top-level unit of
        the ministry, with each institution on a line of its own."""
        units = snap.units
        if scope is None:
            parents = [u for u in snap.children.get(None, []) if units[u].kind != "external"]
            institutions = [u.id for u in units.values() if u.kind == "external"]
        else:
            parents, institutions = self._tops(scope, units), []

        def below(unit_id: int) -> set[int]:
            sub = self.units.subtree(unit_id)
            return sub if scope is None else sub & scope

        out: list[str] = []
        for parent in parents:
            kids = [c for c in snap.children.get(parent, [])
                    if units[c].kind != "external" and (scope is None or c in scope)]
            if not kids:
                continue
            if len(parents) > 1:
                out.append(f"<i>{escape(units[parent].name)}</i>")
            own = snap.total([parent])
            if own.unfinished or own.overdue:
                out.append(self._unit_line(
                    snap, _("{unit} itself").format(unit=units[parent].name), [parent]))
            for child in kids:
                out.append(self._unit_line(snap, units[child].name, below(child)))
        for inst in institutions:
            out.append(self._unit_line(snap, units[inst].name, below(inst)))
        return out
