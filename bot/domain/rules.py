"""The rules of a case, as data: statuses, actions, the transition table and the permission table.

Each table fits on one screen. ``bot.domain.cases.CaseService.apply`` is the only code that
changes a case, and it consults both tables on every call.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import cast
from zoneinfo import ZoneInfo

from bot.i18n import N_


class Status(StrEnum):
    NEW = "new"                    # in the working group's queue, not assigned to a unit
    ASSIGNED = "assigned"          # pushed to a unit, not yet accepted
    IN_PROGRESS = "in_progress"
    WAITING_INFO = "waiting_info"  # the unit asked the working group / citizen for information
    FORWARDED = "forwarded"        # sent to another institution, not yet acknowledged
    ACKNOWLEDGED = "acknowledged"  # the institution took it on; still on the working group's books
    RESOLVED = "resolved"          # resolved, awaiting verification with the citizen: not closed
    CLOSED = "closed"              # verified; outcome: confirmed or unreachable
    MERGED = "merged"              # a duplicate, closed into another case; never counts as resolved


OPEN_STATUSES = frozenset({Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_INFO,
                           Status.FORWARDED, Status.ACKNOWLEDGED})
UNFINISHED_STATUSES = OPEN_STATUSES | {Status.RESOLVED}  # what lists show: work still owed
ALL_STATUSES = frozenset(Status)


class Action(StrEnum):
    CREATE = "create"
    IMPORT = "import"              # a case from the carried-over backlog
    ASSIGN = "assign"
    ACCEPT = "accept"
    NEED_INFO = "need_info"
    PROVIDE_INFO = "provide_info"
    RESUME = "resume"
    RETURN = "return"              # "Not ours": back to the working group's queue
    FORWARD = "forward"            # to another institution (a unit of kind external)
    ACKNOWLEDGE = "acknowledge"    # the institution takes it on
    DECLINE = "decline"            # the institution: "not ours"
    OUTCOME = "outcome"            # what an institution without a chat reported
    RESOLVE = "resolve"
    VERIFY = "verify"              # confirmed with the citizen, or the citizen unreachable
    REOPEN = "reopen"              # includes a citizen disputing the resolution
    MERGE = "merge"                # a duplicate into another case
    NOTE = "note"
    SET_DUE = "set_due"            # the working group sets a deadline by hand
    WARN = "warn"                  # the bot: a deadline is near
    REMIND = "remind"              # the bot: a deadline has passed
    ESCALATE = "escalate"          # the bot: overdue long enough to tell those above
    SNOOZE = "snooze"              # "Snooze 1 day" under a reminder (reason required)
    HELP = "help"                  # "Ask for help": to the supervisors
    ERASE = "erase"                # the citizen's personal data removed (on request, or retention)
    ASK_CITIZEN = "ask_citizen"    # the working group passes the unit's question to the citizen
    WITHDRAW = "withdraw"          # the citizen no longer wants it: closed, outcome "withdrawn"


class Role(StrEnum):
    ADMIN = "admin"                  # everything, everywhere
    WORKING_GROUP = "working_group"  # dispatchers: every case
    OFFICIAL = "official"            # member of the unit the case is assigned to
    SUPERVISOR = "supervisor"        # of that unit or a unit above it
    LIAISON = "liaison"              # of the external institution the case is with
    SYSTEM = "system"                # the bot's own jobs (reminders, escalations)
    CITIZEN = "citizen"              # the person who asked, on their own case only


GLOBAL_ROLES = frozenset({Role.ADMIN, Role.WORKING_GROUP})  # held without a unit


S = Status
WORKING = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.WAITING_INFO})  # with a unit of the ministry
AWAY = frozenset({S.FORWARDED, S.ACKNOWLEDGED})                    # with another institution
# action               allowed from                                  -> to (None: unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status | None]] = {
    Action.CREATE:       (frozenset(),                                 S.NEW),
    Action.IMPORT:       (frozenset(),                                 None),  # any status, as recorded
    Action.ASSIGN:       (WORKING | {S.NEW},                           S.ASSIGNED),
    Action.ACCEPT:       (frozenset({S.ASSIGNED}),                     S.IN_PROGRESS),
    Action.NEED_INFO:    (frozenset({S.ASSIGNED, S.IN_PROGRESS}),      S.WAITING_INFO),
    Action.PROVIDE_INFO: (frozenset({S.WAITING_INFO}),                 S.IN_PROGRESS),
    Action.RESUME:       (frozenset({S.WAITING_INFO}),                 S.IN_PROGRESS),
    Action.RETURN:       (WORKING,                                     S.NEW),
    Action.FORWARD:      (WORKING | {S.NEW},                           S.FORWARDED),
    Action.ACKNOWLEDGE:  (frozenset({S.FORWARDED}),                    S.ACKNOWLEDGED),
    Action.DECLINE:      (AWAY,                                        S.NEW),
    Action.OUTCOME:      (AWAY,                                        S.RESOLVED),
    Action.RESOLVE:      (WORKING | AWAY,                              S.RESOLVED),
    Action.VERIFY:       (frozenset({S.RESOLVED}),                     S.CLOSED),
    Action.REOPEN:       (frozenset({S.RESOLVED, S.CLOSED}),           S.ASSIGNED),  # ACKNOWLEDGED if away
    Action.MERGE:        (OPEN_STATUSES | {S.RESOLVED},                S.MERGED),
    Action.NOTE:         (ALL_STATUSES,                                None),
    Action.SET_DUE:      (UNFINISHED_STATUSES - {S.NEW},               None),
    Action.WARN:         (UNFINISHED_STATUSES,                         None),
    Action.REMIND:       (UNFINISHED_STATUSES,                         None),
    Action.ESCALATE:     (UNFINISHED_STATUSES,                         None),
    Action.SNOOZE:       (UNFINISHED_STATUSES,                         None),
    Action.HELP:         (UNFINISHED_STATUSES,                         None),
    Action.ERASE:        (ALL_STATUSES,                                None),
    Action.ASK_CITIZEN:  (frozenset({S.WAITING_INFO}),                 None),
    Action.WITHDRAW:     (OPEN_STATUSES | {S.RESOLVED},                S.CLOSED),
}
# Actions that leave the card's buttons valid (they change no status).
KEEPS_VERSION = frozenset({Action.NOTE, Action.WARN, Action.REMIND, Action.ESCALATE, Action.SNOOZE,
                           Action.HELP, Action.ERASE, Action.ASK_CITIZEN})
HANDOFFS = frozenset({Action.FORWARD, Action.DECLINE, Action.RETURN})  # counted towards "bouncing"

R = Role
# action               who may do it (roles relative to the case; see CaseService.roles)
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.CREATE:       frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.IMPORT:       frozenset({R.ADMIN, R.WORKING_GROUP, R.SYSTEM}),  # SYSTEM: the command line
    Action.ASSIGN:       frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR}),  # supervisor: own subtree
    Action.ACCEPT:       frozenset({R.ADMIN, R.OFFICIAL}),
    Action.NEED_INFO:    frozenset({R.ADMIN, R.OFFICIAL}),
    Action.PROVIDE_INFO: frozenset({R.ADMIN, R.WORKING_GROUP, R.CITIZEN}),
    Action.RESUME:       frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL}),
    Action.RETURN:       frozenset({R.ADMIN, R.OFFICIAL}),
    Action.FORWARD:      frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.ACKNOWLEDGE:  frozenset({R.ADMIN, R.LIAISON}),
    Action.DECLINE:      frozenset({R.ADMIN, R.LIAISON}),
    Action.OUTCOME:      frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.RESOLVE:      frozenset({R.ADMIN, R.OFFICIAL, R.LIAISON}),
    Action.VERIFY:       frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR, R.CITIZEN}),  # never the resolver
    Action.REOPEN:       frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR, R.CITIZEN}),  # never the resolver
    Action.MERGE:        frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.NOTE:         frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR, R.LIAISON}),
    Action.SET_DUE:      frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.WARN:         frozenset({R.SYSTEM}),
    Action.REMIND:       frozenset({R.SYSTEM}),
    Action.ESCALATE:     frozenset({R.SYSTEM}),
    Action.SNOOZE:       frozenset({R.ADMIN, R.OFFICIAL, R.LIAISON}),
    Action.HELP:         frozenset({R.ADMIN, R.OFFICIAL, R.LIAISON}),
    Action.ERASE:        frozenset({R.ADMIN, R.SYSTEM, R.CITIZEN}),  # SYSTEM: the CLI, retention
    Action.ASK_CITIZEN:  frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.WITHDRAW:     frozenset({R.ADMIN, R.WORKING_GROUP, R.CITIZEN}),  # WG: said by phone
}
NOT_BY_RESOLVER = frozenset({Action.VERIFY, Action.REOPEN})  # a second person verifies
# Reading a case (/case, lists, exports) and seeing the citizen's name and contact.
READ_ROLES = frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR, R.LIAISON})
SEES_PERSONAL_DATA = frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR})

# People: which roles a role may hand out by invitation (and take back), and where.
#   "any": any unit (or none); "subtree": only at or below a unit the inviter supervises.
INVITES: dict[Role, tuple[frozenset[Role], str]] = {
    R.ADMIN:      (frozenset(Role) - {R.SYSTEM, R.CITIZEN}, "any"),
    R.SUPERVISOR: (frozenset({R.OFFICIAL}), "subtree"),
}
SEES_PEOPLE = frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR})  # /people (supervisors: subtree)
SEES_ACCESS_LOG = frozenset({R.ADMIN})  # /accesslog: who saw a case's personal data


# Free text an action must carry (minimum length); the rest is optional.
REQUIRED_TEXT: dict[Action, int] = {
    Action.NEED_INFO: 3,
    Action.PROVIDE_INFO: 1,
    Action.RETURN: 3,
    Action.FORWARD: 3,
    Action.DECLINE: 3,
    Action.OUTCOME: 10,
    Action.RESOLVE: 10,
    Action.REOPEN: 3,
    Action.NOTE: 1,
    Action.SNOOZE: 3,
    Action.HELP: 3,
    Action.ERASE: 3,  # why: the citizen's request, the retention period
}

OUTCOMES = ("confirmed", "unreachable")              # how a verified case is closed
CONFIRMED_VIA = ("citizen", "phone")                 # confirmed by the citizen themself, or by phone
FORWARD_CHANNELS = ("telegram", "letter", "phone", "email", "in_person")

# The Khmer words typed for a command's keywords (a Khmer keyboard has no "in_progress"): the
# glossary's terms (docs/glossary.md), and the forms people write for them.
KHMER_KEYWORDS: dict[str, str] = {
    "កំពុងដោះស្រាយ": "in_progress",
    "រង់ចាំព័ត៌មាន": "waiting_info",
    "ត្រូវការព័ត៌មាន": "waiting_info",
    "បានបញ្ជាក់": "confirmed",
    "បញ្ជាក់": "confirmed",
    "ពលរដ្ឋបានបញ្ជាក់": "confirmed",
    "ទាក់ទងមិនបាន": "unreachable",
    "មិនអាចទាក់ទងបាន": "unreachable",
    "ជំទាស់": "disputed",
    "ពលរដ្ឋជំទាស់": "disputed",
    "លិខិត": "letter",
    "ទូរស័ព្ទ": "phone",
    "អ៊ីមែល": "email",
    "ដោយផ្ទាល់": "in_person",
    "បើក": "on",
    "បិទ": "off",
}


def keyword(word: str) -> str:
    """A command's keyword as typed, in English (any case) or in Khmer: its English form."""
    word = word.strip()
    return KHMER_KEYWORDS.get(word, word.lower())

def can_transition(action: Action, status: Status) -> bool:
    allowed_from, _ = TRANSITIONS[action]
    return status in allowed_from


def target_status(action: Action, status: Status) -> Status:
    _, to = TRANSITIONS[action]
    return status if to is None else to


def is_allowed(action: Action, roles: frozenset[Role]) -> bool:
    return bool(PERMISSIONS[action] & roles)


# Deadline policy: each step's deadline, in working days when they are configured.
@dataclass(frozen=True)
class DeadlinePolicy:
    tz: ZoneInfo
    resolve_days: int = 15           # from assignment, reopening or acknowledgment
    urgent_resolve_days: int = 3
    accept_days: int = 1             # a unit accepts an assignment
    ack_days: int = 3                # an institution acknowledges a forward (or its own ack_days)
    verify_days: int = 7             # the working group verifies a resolution
    working_days: frozenset[int] | None = None  # ISO weekdays; None: every day counts
    holidays: Container[date] = frozenset()  # a HolidayCalendar (bot/domain/holiday_calendar.py) or a set
    by_category: tuple[tuple[str, int | None, int | None], ...] = ()  # key, resolve, urgent

    def is_working_day(self, day: date) -> bool:
        working = self.working_days is None or day.isoweekday() in self.working_days
        return working and day not in self.holidays

    def add_days(self, start: datetime, days: int) -> datetime:
        if self.working_days is None and not self.holidays:
            return start + timedelta(days=days)
        local = start.astimezone(self.tz)
        day, counted = local.date(), 0
        while counted < days:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)

    def sub_days(self, end: datetime, days: int) -> datetime:
        """``days`` (working) days before ``end``, at the same local time: when a warning falls."""
        if self.working_days is None and not self.holidays:
            return end - timedelta(days=days)
        local = end.astimezone(self.tz)
        day, counted = local.date(), 0
        while counted < days:
            day -= timedelta(days=1)
            counted += self.is_working_day(day)
        return datetime.combine(day, local.timetz()).astimezone(end.tzinfo)

    def days_after(self, start: datetime, end: datetime) -> int:
        """Whole days from start to end (how late a deadline is), in working days when they are
        configured: the largest n with ``add_days(start, n) <= end``. Counted by whole weeks, so
        that a case years overdue (an imported backlog) costs no more than one days late."""
        if self.working_days is None and not self.holidays:
            return max(0, (end - start).days)
        local, stop = start.astimezone(self.tz), end.astimezone(self.tz)
        last = stop.date()
        if datetime.combine(last, local.timetz()) > stop:
            last -= timedelta(days=1)
        return self.working_days_between(local.date(), last)

    def working_days_between(self, after: date, upto: date) -> int:
        """How many working days d with ``after < d <= upto``."""
        n = (upto - after).days
        if n <= 0:
            return 0
        if self.working_days is None:
            count = n
        else:
            full, rest = divmod(n, 7)  # each whole week holds each weekday once
            count = full * len(self.working_days) + sum(
                (after + timedelta(days=i)).isoweekday() in self.working_days
                for i in range(n - rest + 1, n + 1))
        off = self._holidays_between(after, upto)
        return count - sum(self.working_days is None or d.isoweekday() in self.working_days for d in off)

    def _holidays_between(self, after: date, upto: date) -> Iterable[date]:
        if not self.holidays:
            return ()
        between = getattr(self.holidays, "between", None)  # a HolidayCalendar
        if between is not None:
            return cast(Iterable[date], between(after, upto))
        if isinstance(self.holidays, set | frozenset):
            return [d for d in self.holidays if after < d <= upto]
        days = (after + timedelta(days=i) for i in range(1, (upto - after).days + 1))
        return [d for d in days if d in self.holidays]

    def shift(self, due: datetime, start: datetime, end: datetime) -> datetime:
        """A deadline moved by a pause from start to end: by the time of the pause that fell on
        working days, counted forward over working days only (when they are configured)."""
        if self.working_days is None and not self.holidays:
            return due + max(end - start, timedelta(0))

        def midnight_after(t: datetime) -> datetime:
            return datetime.combine(t.date() + timedelta(days=1), time(0), tzinfo=self.tz)

        paused, local, stop = timedelta(0), start.astimezone(self.tz), end.astimezone(self.tz)
        while local < stop:
            if self.is_working_day(local.date()):
                paused += min(midnight_after(local), stop) - local
            local = midnight_after(local)
        local = due.astimezone(self.tz)
        while True:
            room = midnight_after(local) - local if self.is_working_day(local.date()) else timedelta(0)
            if paused <= room:
                return (local + paused).astimezone(due.tzinfo)
            paused -= room
            local = midnight_after(local)

    def resolve_due(self, start: datetime, priority: str, category: str | None = None) -> datetime:
        normal, urgent = self.resolve_days, self.urgent_resolve_days
        for key, days, urgent_days in self.by_category:
            if key == category:
                normal, urgent = days or normal, urgent_days or urgent
        return self.add_days(start, urgent if priority == "urgent" else normal)

    def accept_due(self, start: datetime) -> datetime:
        return self.add_days(start, self.accept_days)

    def ack_due(self, start: datetime, institution_days: int | None) -> datetime:
        return self.add_days(start, institution_days or self.ack_days)

    def verify_due(self, start: datetime) -> datetime:
        return self.add_days(start, self.verify_days)


# Reminder policy: quiet hours and non-working days hold reminders until the next allowed time.
@dataclass(frozen=True)
class ReminderPolicy:
    deadlines: DeadlinePolicy
    quiet_start: time = time(20, 0)
    quiet_end: time = time(7, 0)
    escalate_after_days: int = 2       # E1: the unit's supervisors
    escalate_again_after_days: int = 5  # E2: the parent unit's supervisors and the working group
    max_snoozes: int = 2
    warn_before_days: int = 1  # a warning this many (working) days before a deadline; 0: none

    def warn_at(self, deadline: datetime) -> datetime | None:
        """When a deadline is near enough to warn of it (None: no warnings)."""
        if self.warn_before_days <= 0:
            return None
        return self.deadlines.sub_days(deadline, self.warn_before_days)

    def is_quiet(self, t: time) -> bool:
        if self.quiet_start > self.quiet_end:  # across midnight, e.g. 20:00–07:00
            return t >= self.quiet_start or t < self.quiet_end
        return self.quiet_start <= t < self.quiet_end

    def next_allowed(self, at: datetime) -> datetime:
        tz = self.deadlines.tz
        local = at.astimezone(tz)
        for _ in range(370):
            if self.deadlines.is_working_day(local.date()) and not self.is_quiet(local.timetz()):
                return local.astimezone(at.tzinfo)
            if local.time() < self.quiet_end and self.deadlines.is_working_day(local.date()):
                local = datetime.combine(local.date(), self.quiet_end, tzinfo=tz)
            else:
                local = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=tz)
        return at  # no allowed time in a year: a configuration nobody means; do not hold forever


ROLE_LABELS: dict[Role, str] = {
    R.ADMIN: N_("admin"),
    R.WORKING_GROUP: N_("working group"),
    R.OFFICIAL: N_("official"),
    R.SUPERVISOR: N_("supervisor"),
    R.LIAISON: N_("liaison"),
    R.SYSTEM: N_("casebot"),
    R.CITIZEN: N_("citizen"),
}

STATUS_LABELS: dict[Status, str] = {
    S.NEW: N_("New — in the working group's queue"),
    S.ASSIGNED: N_("Assigned — awaiting acceptance"),
    S.IN_PROGRESS: N_("In progress"),
    S.WAITING_INFO: N_("Waiting for information"),
    S.FORWARDED: N_("Forwarded — awaiting acknowledgment"),
    S.ACKNOWLEDGED: N_("With the institution"),
    S.RESOLVED: N_("Resolved — awaiting verification"),
    S.CLOSED: N_("Closed"),
    S.MERGED: N_("Merged into another case"),
}

OUTCOME_LABELS: dict[str, str] = {
    "confirmed": N_("closed, citizen confirmed"),
    "unreachable": N_("closed, citizen could not be reached"),
    "merged": N_("merged as a duplicate"),
    "withdrawn": N_("withdrawn by the citizen"),
}

ACTION_LABELS: dict[Action, str] = {
    Action.CREATE: N_("created"),
    Action.IMPORT: N_("imported"),
    Action.ASSIGN: N_("assigned"),
    Action.ACCEPT: N_("accepted"),
    Action.NEED_INFO: N_("asked for information"),
    Action.PROVIDE_INFO: N_("information provided"),
    Action.RESUME: N_("work resumed"),
    Action.RETURN: N_("returned as not ours"),
    Action.RESOLVE: N_("resolved"),
    Action.REOPEN: N_("reopened"),
    Action.NOTE: N_("note"),
    Action.FORWARD: N_("forwarded"),
    Action.ACKNOWLEDGE: N_("acknowledged"),
    Action.DECLINE: N_("declined as not theirs"),
    Action.OUTCOME: N_("outcome reported"),
    Action.VERIFY: N_("verified"),
    Action.MERGE: N_("merged"),
    Action.SET_DUE: N_("deadline set"),
    Action.WARN: N_("deadline near: warned"),
    Action.REMIND: N_("reminder sent"),
    Action.ESCALATE: N_("escalated"),
    Action.SNOOZE: N_("reminders snoozed for a day"),
    Action.HELP: N_("asked the supervisors for help"),
    Action.ERASE: N_("personal data erased"),
    Action.ASK_CITIZEN: N_("question passed to the citizen"),
    Action.WITHDRAW: N_("withdrawn by the citizen"),
}

# What someone tried, in /refusals (the codes recorded with a refused attempt).
ATTEMPT_LABELS: dict[str, str] = {
    Action.CREATE: N_("create a case"),
    Action.IMPORT: N_("import cases"),
    Action.ASSIGN: N_("assign"),
    Action.ACCEPT: N_("accept"),
    Action.NEED_INFO: N_("ask for information"),
    Action.PROVIDE_INFO: N_("answer a question"),
    Action.RESUME: N_("resume work"),
    Action.RETURN: N_("return as not ours"),
    Action.FORWARD: N_("forward"),
    Action.ACKNOWLEDGE: N_("acknowledge"),
    Action.DECLINE: N_("decline"),
    Action.OUTCOME: N_("record an outcome"),
    Action.RESOLVE: N_("resolve"),
    Action.VERIFY: N_("verify"),
    Action.REOPEN: N_("reopen"),
    Action.MERGE: N_("merge"),
    Action.NOTE: N_("add a note"),
    Action.SET_DUE: N_("set a deadline"),
    Action.REMIND: N_("remind"),
    Action.ESCALATE: N_("escalate"),
    Action.SNOOZE: N_("snooze reminders"),
    Action.HELP: N_("ask for help"),
    Action.ASK_CITIZEN: N_("pass a question to the citizen"),
    Action.WITHDRAW: N_("withdraw a request"),
    "read": N_("read a case"),
    "digest": N_("see a digest"),
    "accesslog": N_("see who saw personal data"),
    "inbox": N_("see the requests from citizens"),
    "decide_request": N_("decide on a request from a citizen"),
}

CHANNEL_LABELS: dict[str, str] = {
    "telegram": N_("Telegram"),
    "letter": N_("letter"),
    "phone": N_("phone"),
    "email": N_("email"),
    "in_person": N_("in person"),
}

SOURCES: dict[str, str] = {
    "facebook_comment": N_("Facebook comment"),
    "facebook_message": N_("Facebook message"),
    "telegram": N_("Telegram"),
    "phone": N_("Phone"),
    "walk_in": N_("Walk-in"),
    "letter": N_("Letter"),
    "other": N_("Other"),
}

PRIORITIES: dict[str, str] = {"normal": N_("Normal"), "urgent": N_("Urgent")}
