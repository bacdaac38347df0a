"""The rules of a case, as data: statuses, actions, the transition table and the permission table.

Each table fits on one screen. ``bot.domain.cases.CaseService.apply`` is the only code that
changes a case, and it consults both tables on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.i18n import N_


class Status(StrEnum):
    NEW = "new"                    # in the working group's queue, not assigned to a unit
    ASSIGNED = "assigned"          # pushed to a unit, not yet accepted
    IN_PROGRESS = "in_progress"
    WAITING_INFO = "waiting_info"  # the unit asked the working group / citizen for information
    RESOLVED = "resolved"


OPEN_STATUSES = frozenset({Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_INFO})
ALL_STATUSES = frozenset(Status)


class Action(StrEnum):
    CREATE = "create"
    ASSIGN = "assign"
    ACCEPT = "accept"
    NEED_INFO = "need_info"
    PROVIDE_INFO = "provide_info"
    RESUME = "resume"
    RETURN = "return"              # "Not ours": back to the working group's queue
    RESOLVE = "resolve"
    REOPEN = "reopen"
    NOTE = "note"


class Role(StrEnum):
    ADMIN = "admin"                  # everything, everywhere
    WORKING_GROUP = "working_group"  # dispatchers: every case
    OFFICIAL = "official"            # member of the unit the case is assigned to
    SUPERVISOR = "supervisor"        # of that unit or a unit above it
    LIAISON = "liaison"              # of the external institution the case is with


GLOBAL_ROLES = frozenset({Role.ADMIN, Role.WORKING_GROUP})  # held without a unit


S = Status
# action               allowed from                                       -> to (None: unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status | None]] = {
    Action.CREATE:       (frozenset(),                                      S.NEW),
    Action.ASSIGN:       (frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.WAITING_INFO}), S.ASSIGNED),
    Action.ACCEPT:       (frozenset({S.ASSIGNED}),                          S.IN_PROGRESS),
    Action.NEED_INFO:    (frozenset({S.ASSIGNED, S.IN_PROGRESS}),           S.WAITING_INFO),
    Action.PROVIDE_INFO: (frozenset({S.WAITING_INFO}),                      S.IN_PROGRESS),
    Action.RESUME:       (frozenset({S.WAITING_INFO}),                      S.IN_PROGRESS),
    Action.RETURN:       (frozenset({S.ASSIGNED, S.IN_PROGRESS, S.WAITING_INFO}), S.NEW),
    Action.RESOLVE:      (frozenset({S.ASSIGNED, S.IN_PROGRESS, S.WAITING_INFO}), S.RESOLVED),
    Action.REOPEN:       (frozenset({S.RESOLVED}),                          S.ASSIGNED),
    Action.NOTE:         (ALL_STATUSES,                                     None),
}

R = Role
# action               who may do it (roles relative to the case; see CaseService.roles)
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.CREATE:       frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.ASSIGN:       frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR}),  # supervisor: own subtree
    Action.ACCEPT:       frozenset({R.ADMIN, R.OFFICIAL}),
    Action.NEED_INFO:    frozenset({R.ADMIN, R.OFFICIAL}),
    Action.PROVIDE_INFO: frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.RESUME:       frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL}),
    Action.RETURN:       frozenset({R.ADMIN, R.OFFICIAL}),
    Action.RESOLVE:      frozenset({R.ADMIN, R.OFFICIAL}),
    Action.REOPEN:       frozenset({R.ADMIN, R.WORKING_GROUP}),
    Action.NOTE:         frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR}),
}
# Reading a case (/case, lists, exports) and seeing the citizen's name and contact.
READ_ROLES = frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR, R.LIAISON})
SEES_PERSONAL_DATA = frozenset({R.ADMIN, R.WORKING_GROUP, R.OFFICIAL, R.SUPERVISOR})

# People: which roles a role may hand out by invitation (and take back), and where.
#   "any": any unit (or none); "subtree": only at or below a unit the inviter supervises.
INVITES: dict[Role, tuple[frozenset[Role], str]] = {
    R.ADMIN:      (frozenset(Role), "any"),
    R.SUPERVISOR: (frozenset({R.OFFICIAL}), "subtree"),
}
SEES_PEOPLE = frozenset({R.ADMIN, R.WORKING_GROUP, R.SUPERVISOR})  # /people (supervisors: subtree)


# Free text an action must carry (minimum length); the rest is optional.
REQUIRED_TEXT: dict[Action, int] = {
    Action.NEED_INFO: 3,
    Action.PROVIDE_INFO: 1,
    Action.RETURN: 3,
    Action.RESOLVE: 10,
    Action.REOPEN: 3,
    Action.NOTE: 1,
}

def can_transition(action: Action, status: Status) -> bool:
    allowed_from, _ = TRANSITIONS[action]
    return status in allowed_from


def target_status(action: Action, status: Status) -> Status:
    _, to = TRANSITIONS[action]
    return status if to is None else to


def is_allowed(action: Action, roles: frozenset[Role]) -> bool:
    return bool(PERMISSIONS[action] & roles)


# Deadline policy: calendar days to resolve, counted from assignment.
@dataclass(frozen=True)
class DeadlinePolicy:
    resolve_days: int = 15
    urgent_resolve_days: int = 3

    def due_at(self, assigned_at: datetime, priority: str) -> datetime:
        days = self.urgent_resolve_days if priority == "urgent" else self.resolve_days
        return assigned_at + timedelta(days=days)


ROLE_LABELS: dict[Role, str] = {
    R.ADMIN: N_("admin"),
    R.WORKING_GROUP: N_("working group"),
    R.OFFICIAL: N_("official"),
    R.SUPERVISOR: N_("supervisor"),
    R.LIAISON: N_("liaison"),
}

STATUS_LABELS: dict[Status, str] = {
    S.NEW: N_("New — in the working group's queue"),
    S.ASSIGNED: N_("Assigned — awaiting acceptance"),
    S.IN_PROGRESS: N_("In progress"),
    S.WAITING_INFO: N_("Waiting for information"),
    S.RESOLVED: N_("Resolved"),
}

ACTION_LABELS: dict[Action, str] = {
    Action.CREATE: N_("created"),
    Action.ASSIGN: N_("assigned"),
    Action.ACCEPT: N_("accepted"),
    Action.NEED_INFO: N_("asked for information"),
    Action.PROVIDE_INFO: N_("information provided"),
    Action.RESUME: N_("work resumed"),
    Action.RETURN: N_("returned as not ours"),
    Action.RESOLVE: N_("resolved"),
    Action.REOPEN: N_("reopened"),
    Action.NOTE: N_("note"),
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
