"""A case's history as the figures read it: what the case was at any moment of the past.

The figures of a past period come from here, not from the case as it is today: a case that was
open and past its deadline on 30 April counts as overdue at the end of April even after it was
resolved in May (which clears its deadline), and a resolution in April still counts after a
reopening in May. So a past period's report changes only when its data is corrected (an
import of cases received then).

Each event that changes a case's step records the deadline in force from then on (``due`` in
its data, null for none; ``CaseService._apply``); an import records the deadline the case was
under while open and the date it was resolved (``CaseService.import_cases``), and its history
starts on the day the case was received, not the day of the import. Events written before the
deadline was recorded (``LEGACY``): the deadline is known only while it is still the case's
current one; before that the case counts as under no deadline.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from bot.db import from_db

# Statuses (as stored) and the actions read.
OPEN = frozenset({"new", "assigned", "in_progress", "waiting_info", "forwarded", "acknowledged"})
DONE = frozenset({"resolved", "closed"})          # resolved: awaiting verification
FINISHED = frozenset({"closed", "merged"})
PAUSED = "waiting_info"                           # waiting for information stops the clock
# Actions whose event sets the deadline, whether or not it recorded it (older events did not).
SETS_DEADLINE = frozenset({"assign", "return", "decline", "forward", "acknowledge", "resolve", "outcome",
                           "verify", "reopen", "merge", "set_due", "provide_info", "resume"})
# Events that change nothing the figures read (no step, no deadline): left out of the query.
NO_STEP = ("note", "remind", "escalate", "snooze", "help")
# What the figures read of each step event; its data's fields taken out by SQLite (in the
# database's thread, beside the Python that reads them).
EVENTS_SQL = ("SELECT case_id, at, action, to_status, json_type(data, '$.due') IS NOT NULL AS has_due,"
              " json_extract(data, '$.due') AS due, json_extract(data, '$.unit') AS unit,"
              " json_extract(data, '$.bouncing') AS bouncing, json_extract(data, '$.outcome') AS outcome,"
              " json_extract(data, '$.resolved') AS resolved"
              " FROM events WHERE to_status IS NOT NULL"
              f" AND action NOT IN ({', '.join(repr(a) for a in NO_STEP)}) ORDER BY case_id, id")
_LEGACY = object()  # an event from before deadlines were recorded
_since = itemgetter(0)


class State(NamedTuple):
    """What the case was from ``since`` until the next state (a tuple: a report makes
    hundreds of thousands)."""

    since: datetime
    status: str
    due: datetime | None     # the deadline in force (resolution, or acknowledgment while forwarded)
    unit_id: int | None      # the unit or institution it was with; None: the working group's queue
    bouncing: bool

    @property
    def unfinished(self) -> bool:
        return self.status not in FINISHED

    @property
    def in_progress(self) -> bool:
        """Still being handled (not resolved, closed or merged)."""
        return self.status in OPEN

    def overdue(self, at: datetime) -> bool:
        """In progress, past its deadline at ``at``, and not waiting for information."""
        return (self.status in OPEN and self.status != PAUSED and self.due is not None
                and self.due < at)


@dataclass(slots=True)
class CaseHistory:
    id: int
    unit_id: int | None          # now (for a supervisor's scope)
    place_unit_id: int
    category: str
    received_at: datetime
    states: list[State] = field(default_factory=list)
    resolved: list[datetime] = field(default_factory=list)           # resolutions (and reported outcomes)
    closed: list[tuple[datetime, str]] = field(default_factory=list)  # verifications: when, outcome
    reopened: list[datetime] = field(default_factory=list)
    merged_at: datetime | None = None
    row: Any = None              # the case's row, for an export

    def at(self, moment: datetime) -> State | None:
        """The state just before ``moment`` (after every event before it); None: not yet received."""
        i = bisect.bisect_left(self.states, moment, key=_since)
        return self.states[i - 1] if i else None

    def unit_at(self, moment: datetime) -> int:
        """The unit it was with (its place while in the queue or before it was received)."""
        state = self.at(moment)
        unit = state.unit_id if state is not None else None
        return unit if unit is not None else self.place_unit_id

    def last_close(self, start: datetime, end: datetime) -> tuple[datetime, str] | None:
        found = [c for c in self.closed if start <= c[0] < end]
        return found[-1] if found else None

    def any_in(self, times: list[datetime], start: datetime, end: datetime) -> bool:
        return any(start <= t < end for t in times)

    def waiting(self) -> list[tuple[datetime, datetime | None, int]]:
        """The stretches of time it waited to be closed (from its receipt, or a reopening, to its
        close or merge; None: still waiting), split by the unit it was with: (from, to, unit)."""
        out: list[tuple[datetime, datetime | None, int]] = []
        begin: datetime | None = None
        unit = self.place_unit_id
        for s in self.states:
            here = s.unit_id if s.unit_id is not None else self.place_unit_id
            if s.unfinished:
                if begin is None:
                    begin, unit = s.since, here
                elif here != unit:
                    out.append((begin, s.since, unit))
                    begin, unit = s.since, here
            elif begin is not None:
                out.append((begin, s.since, unit))
                begin = None
        if begin is not None:
            out.append((begin, None, unit))
        return out


def build(case: Any, events: list[Any], units: dict[str, int]) -> CaseHistory:
    """The history of one case from its row (``id``, ``unit_id``, ``place_unit_id``,
    ``category``, ``status``, ``received_at``, ``due_at``, ``resolved_at``) and its step events in
    order (``EVENTS_SQL``: ``at``, ``action``, ``to_status`` and fields of the data); ``units``
    maps unit keys to ids. (Run for every case of every report: kept plain.)"""
    parse = datetime.fromisoformat
    received = parse(case["received_at"])
    h = CaseHistory(case["id"], case["unit_id"], case["place_unit_id"], case["category"], received)
    steps: list[tuple[datetime, str, object, int | None, bool, str]] = []  # ..., action
    legacy = False
    unit: int | None = None
    bouncing = False
    for n, e in enumerate(events):
        at = parse(e["at"])
        action, status = e["action"], e["to_status"]
        if e["has_due"]:
            due: object = parse(e["due"]) if e["due"] else None
        else:
            due, legacy = _LEGACY, True
        if n == 0 and action == "import":
            unit = None if status == "new" else case["place_unit_id"]
            if status in DONE:
                when = parse(e["resolved"]) if e["resolved"] else _legacy_resolution(case, events, at)
                when = max(received, min(when or at, at))
                steps.append((received, "in_progress", due, unit, False, action))
                steps.append((when, status, None, unit, False, action))
                h.resolved.append(when)
                if status == "closed":
                    h.closed.append((when, "confirmed"))
            else:
                steps.append((received, status, due, unit, False, action))
            continue
        if n == 0 and received < at:  # created: from its receipt (a forwarded message keeps its date)
            at = received
        if action == "assign" or action == "forward":
            unit = units.get(str(e["unit"]), unit)
        elif action == "return" or action == "decline":
            unit = None
        elif action == "resolve" or action == "outcome":
            h.resolved.append(at)
        elif action == "verify":
            h.closed.append((at, str(e["outcome"] or "confirmed")))
        elif action == "reopen":
            h.reopened.append(at)
        elif action == "merge":
            h.merged_at = at
        if not bouncing and e["bouncing"]:
            bouncing = True
        steps.append((at, status, due, unit, bouncing, action))
    if not steps:  # no history at all: the case as it is, since its receipt
        steps.append((received, str(case["status"]), _LEGACY, case["unit_id"], False, "import"))
        legacy = True
    dues = _legacy_dues(case, steps) if legacy else [s[2] for s in steps]
    h.states = [State(at, status, due if isinstance(due, datetime) else None, unit_id, bounce)
                for (at, status, _d, unit_id, bounce, _a), due in zip(steps, dues, strict=True)]
    return h


def _legacy_dues(case: Any, steps: list[tuple[datetime, str, object, int | None, bool, str]],
                 ) -> list[object]:
    """The deadline after each step, where older events did not record it: the case's current
    one holds back to the step that set it; before that, none is known, but a step that sets no
    deadline (an acceptance, a request for information) keeps the one before it."""
    current = from_db(case["due_at"])
    known = True
    dues: list[object] = [None] * len(steps)
    for i in range(len(steps) - 1, -1, -1):
        due, action = steps[i][2], steps[i][5]
        if due is _LEGACY:
            dues[i] = current if known else None
            if action in SETS_DEADLINE or action in ("create", "import"):
                known = False
        else:
            dues[i] = due
            known = False
    previous: object = None
    for i, step in enumerate(steps):
        action = step[5]
        if step[2] is _LEGACY and dues[i] is None and action not in SETS_DEADLINE \
                and action not in ("create", "import"):
            dues[i] = previous
        previous = dues[i]
    return dues


def _legacy_resolution(case: Any, events: list[Any], imported_at: datetime) -> datetime | None:
    """An import recorded before its resolution date was: the case's, unless a reopening cleared it."""
    if any(e["action"] == "reopen" for e in events):
        return None
    return from_db(case["resolved_at"]) or imported_at
