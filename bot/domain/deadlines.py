"""Deadlines and the reminder ladder: which deadline a case's step is under, when it is next
looked at, and what waiting, snoozing, warning, reminding and escalating do to a case.

The ladder of a step: a warning when its deadline is near (``reminders.warn_before_days``), a
reminder once it has passed and every day after, escalations when it is overdue long enough.
A run of the repeating job takes every case due in one transaction (``run_ladder``): each case's
steps go through the one write path and record their events, and what they tell is gathered and
sent as one message per chat (bot/domain/telling.py), however many cases are due.

A part of ``CaseService`` (bot/domain/cases.py), which runs these inside its one transaction.
"""


import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.db import Database, Tx, from_db, to_db
from bot.domain.errors import (
    Invalid,
)
from bot.domain.model import (
    CASE_BY_ID,
    SYSTEM,
    Actor,
    CaseView,
    Change,
    Step,
    case_view,
)
from bot.domain.rules import (
    Action,
    DeadlinePolicy,
    ReminderPolicy,
    Status,
)
from bot.domain.telling import LadderNote
from bot.i18n import _

log = logging.getLogger(__name__)
LADDER_CHUNK = 1000  # cases per transaction of a run (and per message a chat gets from it)
# Actions that leave the deadline as it was: an imported case with only these since its import
# still has the import's deadline.
KEEP_DEADLINE = frozenset({Action.IMPORT, Action.NOTE, Action.WARN, Action.REMIND, Action.ESCALATE,
                           Action.SNOOZE, Action.HELP})


class Deadlines:
    db: Database
    settings: Settings
    policy: DeadlinePolicy
    reminders: ReminderPolicy

    if TYPE_CHECKING:  # CaseService's, which runs the ladder's steps through its one write path
        async def get(self, case_id: int) -> CaseView: ...

        async def apply(self, case_id: int, action: Action, actor: Actor, change: Change,
                        now: datetime, *, expected_version: int | None = None) -> CaseView: ...

        async def _apply(self, case_id: int, action: Action, actor: Actor, change: Change,
                         now: datetime, expected_version: int | None, tx: Tx | None = None,
                         ladder: list[LadderNote] | None = None) -> CaseView: ...

        async def _tell_ladder(self, conn: Tx, notes: list[LadderNote], now: datetime) -> None: ...

        on_commit: Callable[[], None]

    async def _do_pause(self, st: Step) -> None:  # waiting for information stops the clock
        st.updates["paused_at"] = to_db(st.now)

    async def _do_unpause(self, st: Step) -> None:
        """The information came back: the resolution deadline moves by the time spent waiting."""
        case = st.case
        if case.paused_at is not None and case.due_at is not None:
            waited = st.now - case.paused_at
            st.updates["due_at"] = to_db(self.policy.shift(case.due_at, case.paused_at, st.now))
            st.data["paused_hours"] = round(waited.total_seconds() / 3600, 1)
        st.updates["paused_at"] = None

    async def _do_set_due(self, st: Step) -> None:
        if st.change.due is None:
            raise Invalid(_("Give the new deadline as YYYY-MM-DD."))
        if st.change.due <= st.now:
            raise Invalid(_("The deadline must be in the future."))
        st.updates.update(due_at=to_db(st.change.due), accept_due_at=None)
        st.data["due"] = to_db(st.change.due)

    def _check_snoozes(self, case: CaseView) -> None:
        if case.snoozes >= self.reminders.max_snoozes:
            raise Invalid(_("#{n} was already snoozed {count} times: update its status or ask for "
                            "help.").format(n=case.id, count=case.snoozes))

    async def _do_snooze(self, st: Step) -> None:
        self._check_snoozes(st.case)
        st.updates.update(snoozes=st.case.snoozes + 1,
                          next_action_at=to_db(self.reminders.next_allowed(st.now + timedelta(days=1))))

    async def _do_warn(self, st: Step) -> None:
        deadline = self._deadline(st.case)
        assert deadline is not None
        st.updates["next_action_at"] = to_db(self.reminders.next_allowed(deadline))
        st.data.update(step=self._step_name(st.case), due=to_db(deadline))

    async def _do_remind(self, st: Step) -> None:
        st.updates.update(
            reminder_level=max(st.case.reminder_level, 1),
            next_action_at=to_db(self.reminders.next_allowed(st.now + timedelta(days=1))))
        deadline = self._deadline(st.case)
        st.data.update(step=self._step_name(st.case),
                       overdue_days=self.policy.days_after(deadline, st.now) if deadline else 0)

    async def _do_escalate(self, st: Step) -> None:
        level = st.change.level or 2
        st.updates["reminder_level"] = max(st.case.reminder_level, level)
        st.data["level"] = level

    # --- deadlines and the reminder ladder ----------------------------------------------------

    def _resolve_due(self, case: CaseView, now: datetime) -> datetime:
        return self.policy.resolve_due(now, case.priority, case.category_key)

    @staticmethod
    def _step_name(case: CaseView) -> str:
        if case.status is Status.ASSIGNED and case.accept_due_at is not None:
            return "accept"
        return {Status.FORWARDED: "acknowledge", Status.RESOLVED: "verify"}.get(case.status, "resolve")

    @staticmethod
    def _deadline(case: CaseView) -> datetime | None:
        """The deadline reminders chase at the case's current step (None: nothing to chase)."""
        if case.status is Status.ASSIGNED and case.accept_due_at is not None:
            return case.accept_due_at
        if case.status in (Status.ASSIGNED, Status.IN_PROGRESS, Status.FORWARDED,
                           Status.ACKNOWLEDGED, Status.RESOLVED):
            return case.due_at
        return None  # in the queue, waiting for information (paused), finished

    def _reschedule(self, st: Step) -> None:
        """After a change of step: the first reminder falls at the new deadline."""
        merged = {k: st.updates.get(k, getattr(st.case, k)) for k in ("due_at", "accept_due_at")}
        after = replace(
            st.case, status=Status(st.updates["status"]),
            due_at=from_db(merged["due_at"]) if isinstance(merged["due_at"], str) else merged["due_at"],
            accept_due_at=from_db(merged["accept_due_at"]) if isinstance(merged["accept_due_at"], str)
            else merged["accept_due_at"],
        )
        deadline = self._deadline(after)
        st.updates.update(
            reminder_level=0,  # snoozes are counted per case: a new step does not reset them
            next_action_at=to_db(self._first_look(deadline, st.now)) if deadline else None)

    def _first_look(self, deadline: datetime, since: datetime) -> datetime:
        """When the ladder first looks at a deadline set at ``since``: to warn that it is near
        (unless it is near already), else when it passes; at an allowed time either way."""
        warn = self.reminders.warn_at(deadline)
        at = warn if warn is not None and warn > since else deadline
        return self.reminders.next_allowed(at)

    def import_due(self, status: Status, received: datetime, resolved: datetime | None,
                   category_key: str | None, with_unit: bool) -> datetime | None:
        """The deadline of an imported case's step, as if its step had begun in the bot: the
        category's time to resolve from the day it was received, or the time to verify from the
        day it was resolved; none in the queue or closed."""
        if status is Status.CLOSED or not with_unit:
            return None
        if status is Status.RESOLVED:
            return self.policy.verify_due(resolved) if resolved is not None else None
        return self.policy.resolve_due(received, "normal", category_key)

    @staticmethod
    def _hold(conn: Tx, case_id: int, until: datetime | None) -> None:
        """Scheduling only, no change to the case: the next look at it is ``until``."""
        conn.add("UPDATE cases SET next_action_at = ? WHERE id = ?",
                 (to_db(until) if until else None, case_id))

    async def due_reminders(self, now: datetime, limit: int = 200) -> list[int]:
        """Cases whose next reminder or escalation is due: an indexed range, whatever the total."""
        rows = await self.db.all(
            "SELECT id FROM cases WHERE next_action_at IS NOT NULL AND next_action_at <= ?"
            " ORDER BY next_action_at, id LIMIT ?", (to_db(now), limit))
        return [int(r[0]) for r in rows]

    async def run_ladder(self, now: datetime, chunk: int = LADDER_CHUNK) -> int:
        """Every case whose next look is due: warned, reminded, escalated or held, in
        transactions of ``chunk`` cases, each chat told once per transaction. How many cases."""
        handled: set[int] = set()
        while True:
            due = [c for c in await self.due_reminders(now, chunk) if c not in handled]
            if not due:
                return len(handled)
            handled.update(due)
            await self._ladder_run(due, now, due_only=True)

    async def run_reminder(self, case_id: int, now: datetime) -> None:
        """The ladder's step for one case (what ``run_ladder`` does for each)."""
        await self._ladder_run([case_id], now)

    async def _ladder_run(self, case_ids: list[int], now: datetime, due_only: bool = False) -> None:
        """One transaction: each case's step, its events through the one write path, then what
        they tell, one message per chat. A case whose step fails is left as it was and looked at
        again in an hour; the others go on. ``due_only``: a case whose next look is no longer
        due when the transaction reads it is left alone: another run (another instance's, whose
        lease ran out mid-way) took that step already, and it is not taken twice."""
        notes: list[LadderNote] = []
        async with self.db.transaction() as conn:
            for case_id in case_ids:
                told: list[LadderNote] = []
                try:
                    async with conn.savepoint():
                        await self._ladder_step(conn, case_id, now, told, due_only)
                except Exception:
                    log.exception("reminder for case %s failed", case_id)
                    self._hold(conn, case_id, now + timedelta(hours=1))
                    continue
                notes += told
            await self._tell_ladder(conn, notes, now)
        self.on_commit()

    async def _ladder_step(self, conn: Tx, case_id: int, now: datetime, notes: list[LadderNote],
                           due_only: bool = False) -> None:
        """Warn when the deadline is near; remind once it has passed, and escalate when it is
        overdue long enough; or hold until quiet hours and non-working days are over."""
        rows = await conn.all(CASE_BY_ID, (case_id,))
        if not rows:
            return
        case = case_view(rows[0])
        if due_only and (case.next_action_at is None or case.next_action_at > now):
            return
        allowed = self.reminders.next_allowed(now)
        deadline = self._deadline(case)
        if deadline is None:
            self._hold(conn, case_id, None)
            return
        passed = self.reminders.next_allowed(deadline)
        if deadline > now:
            warn = self.reminders.warn_at(deadline) if case.reminder_level == 0 else None
            if warn is not None and warn <= now and allowed <= now:
                await self._apply(case_id, Action.WARN, SYSTEM, Change(), now, None, conn, notes)
                return
            if warn is not None and warn > now:
                later = self.reminders.next_allowed(warn)
            elif warn is not None and allowed < deadline:
                later = allowed  # the end of quiet hours, still before the deadline: warn then
            else:
                later = max(allowed, passed)
            self._hold(conn, case_id, later)
            return
        if allowed > now:
            self._hold(conn, case_id, max(allowed, passed))
            return
        await self._apply(case_id, Action.REMIND, SYSTEM, Change(), now, None, conn, notes)
        overdue = self.policy.days_after(deadline, now)  # in working days, when they are set
        due_level = (3 if overdue >= self.reminders.escalate_again_after_days
                     else 2 if overdue >= self.reminders.escalate_after_days else 1)
        for level in range(max(case.reminder_level, 1) + 1, due_level + 1):
            await self._apply(case_id, Action.ESCALATE, SYSTEM, Change(level=level), now, None, conn, notes)

    async def enter_ladder(self, now: datetime) -> int:
        """Imported cases that an earlier version left out of the ladder (no next look at their
        deadline) enter it, as a case imported now does: those whose deadline is still the
        import's get their category's (or, resolved, the time to verify), and every one a next
        look. Run at start; how many cases."""
        statuses = (Status.ASSIGNED, Status.IN_PROGRESS, Status.FORWARDED, Status.ACKNOWLEDGED,
                    Status.RESOLVED)
        rows = await self.db.all(
            "SELECT c.id, c.external_ref, cat.key AS category_key FROM cases c"
            " JOIN categories cat ON cat.id = c.category_id"
            f" WHERE c.next_action_at IS NULL AND c.status IN ({','.join('?' * len(statuses))})",
            statuses)
        if not rows:
            return 0
        touched: set[int] = set()
        ids = [int(r[0]) for r in rows if r[1] is not None]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found = await self.db.all(
                f"SELECT DISTINCT case_id FROM events WHERE case_id IN ({','.join('?' * len(chunk))})"
                f" AND action NOT IN ({','.join('?' * len(KEEP_DEADLINE))})",
                [*chunk, *sorted(KEEP_DEADLINE)])
            touched.update(int(r[0]) for r in found)
        changes: list[tuple[str | None, str, int]] = []  # due_at, next_action_at, id
        for r in rows:
            case = await self.get(int(r[0]))
            due = case.due_at
            if r[1] is not None and case.id not in touched:  # the import's deadline
                due = self.import_due(case.status, case.received_at, case.resolved_at,
                                      r["category_key"], case.unit_id is not None)
            deadline = self._deadline(replace(case, due_at=due))
            if deadline is not None:
                changes.append((to_db(due) if due else None, to_db(self._first_look(deadline, now)),
                                case.id))
        async with self.db.transaction() as conn:
            conn.add_many("UPDATE cases SET due_at = ?, next_action_at = ? WHERE id = ?"
                          " AND next_action_at IS NULL", changes)  # unless a change came first
        entered = len(changes)
        if entered:
            log.info("%d cases without a reminder entered the reminder ladder", entered)
        return entered
