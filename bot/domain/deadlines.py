"""Deadlines and the reminder ladder: which deadline a case's step is under, when it is next
looked at, and what waiting, snoozing, reminding and escalating do to a case.

A part of ``CaseService`` (bot/domain/cases.py), which runs these inside its one transaction.
"""


from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.db import Database, from_db, to_db
from bot.domain.errors import (
    Invalid,
)
from bot.domain.model import (
    SYSTEM,
    Actor,
    CaseView,
    Change,
    Step,
)
from bot.domain.rules import (
    Action,
    DeadlinePolicy,
    ReminderPolicy,
    Status,
)
from bot.i18n import _


class Deadlines:
    db: Database
    settings: Settings
    policy: DeadlinePolicy
    reminders: ReminderPolicy

    if TYPE_CHECKING:  # CaseService's, which runs the ladder's steps through its one write path
        async def get(self, case_id: int) -> CaseView: ...

        async def apply(self, case_id: int, action: Action, actor: Actor, change: Change,
                        now: datetime, *, expected_version: int | None = None) -> CaseView: ...

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
            next_action_at=to_db(self.reminders.next_allowed(deadline)) if deadline else None)

    async def hold_reminder(self, case_id: int, until: datetime | None) -> None:
        """Scheduling only, no change to the case: the next look at it is ``until``."""
        async with self.db.transaction() as conn:
            conn.add("UPDATE cases SET next_action_at = ? WHERE id = ?",
                     (to_db(until) if until else None, case_id))

    async def due_reminders(self, now: datetime, limit: int = 200) -> list[int]:
        """Cases whose next reminder or escalation is due: an indexed range, whatever the total."""
        rows = await self.db.all(
            "SELECT id FROM cases WHERE next_action_at IS NOT NULL AND next_action_at <= ?"
            " ORDER BY next_action_at LIMIT ?", (to_db(now), limit))
        return [int(r[0]) for r in rows]

    async def run_reminder(self, case_id: int, now: datetime) -> None:
        """One step of the ladder for one case: remind; escalate when overdue long enough;
        or hold until quiet hours and non-working days are over."""
        case = await self.get(case_id)
        allowed = self.reminders.next_allowed(now)
        deadline = self._deadline(case)
        if deadline is None or deadline > now or allowed > now:
            later = None if deadline is None else max(allowed, self.reminders.next_allowed(deadline))
            await self.hold_reminder(case_id, later)
            return
        await self.apply(case_id, Action.REMIND, SYSTEM, Change(), now)
        overdue = self.policy.days_after(deadline, now)  # in working days, when they are set
        due_level = (3 if overdue >= self.reminders.escalate_again_after_days
                     else 2 if overdue >= self.reminders.escalate_after_days else 1)
        for level in range(max(case.reminder_level, 1) + 1, due_level + 1):
            await self.apply(case_id, Action.ESCALATE, SYSTEM, Change(level=level), now)
