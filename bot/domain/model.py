"""What a case is made of, as the domain passes it around: the actor, a draft, a change, the case as
read (``CaseView``), its events. Values only: no database, no Telegram."""


from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.db import Row, Tx, from_db
from bot.domain import outbox
from bot.domain.rules import (
    AWAY,
    OPEN_STATUSES,
    ROLE_LABELS,
    UNFINISHED_STATUSES,
    Action,
    Role,
    Status,
)
from bot.domain.units import localized
from bot.i18n import label, ngettext

PAGE_SIZE = 10
SUMMARY_MAX = 200
TEXT_MAX = 3000


@dataclass(frozen=True)
class Actor:
    tg_id: int
    name: str
    chat_id: int | None = None  # the chat the action came from
    citizen_id: int | None = None  # a citizen acting on their own case (``citizen_actor``)


SYSTEM = Actor(0, "casebot")  # the bot's own jobs act under this name
# A citizen's events carry this actor id and the name "citizen": no personal data goes into the
# immutable history, whatever channel they came by.
CITIZEN_ACTOR_ID = -1


CITIZEN_NAME = "citizen"


def citizen_actor(citizen_id: int) -> Actor:
    """The citizen ``citizen_id`` acting on their own case (confirming, disputing, answering)."""
    return Actor(CITIZEN_ACTOR_ID, CITIZEN_NAME, None, citizen_id)


def actor_shown(name: str, actor_id: int | None = None) -> str:
    """Who did something, as the reader sees it: a citizen's events say "citizen" in the
    reader's language (their name is never recorded); anyone else by name."""
    if actor_id == CITIZEN_ACTOR_ID or (actor_id is None and name == CITIZEN_NAME):
        return label(ROLE_LABELS, Role.CITIZEN)
    return name


@dataclass(frozen=True)
class AttachmentIn:
    kind: str  # photo | document
    file_id: str
    file_name: str | None = None


@dataclass(frozen=True)
class Attachment:
    id: int
    kind: str
    file_id: str
    file_name: str | None
    purpose: str


@dataclass
class Draft:
    """A case being written in /new (kept in the conversation until Create)."""

    source: str = "other"
    received_at: datetime | None = None
    category_id: int | None = None
    place_unit_id: int | None = None
    summary: str = ""
    description: str = ""
    citizen_name: str = ""
    citizen_contact: str = ""
    priority: str = "normal"
    attachments: list[AttachmentIn] = field(default_factory=list)
    citizen_id: int | None = None  # the citizen who asked (a request from Facebook or Telegram)
    request_id: int | None = None  # the incoming request the case is made of


@dataclass(frozen=True)
class ImportedCase:
    """One validated row of the carried-over backlog (see bot/importer.py)."""

    external_ref: str
    received_at: datetime
    source: str
    category_id: int
    unit_id: int                 # the unit handling it (also its place)
    summary: str
    description: str
    citizen_name: str
    citizen_contact: str
    status: Status
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Change:
    """What an action carries besides its name."""

    text: str = ""
    unit_key: str | None = None   # assign: the unit; forward: the institution
    assignee: str | None = None   # @username or Telegram id
    attachments: tuple[AttachmentIn, ...] = ()
    outcome: str | None = None    # verify: confirmed | unreachable; reopen: "disputed" or None
    channel: str | None = None    # forward to an institution without a chat: letter, phone, …
    reference: str | None = None  # acknowledge: the institution's own reference
    into: int | None = None       # merge: the surviving case
    due: datetime | None = None   # set_due: the new deadline
    level: int | None = None      # escalate: 2 (the unit's supervisors) or 3 (those above)
    share_files: bool = False     # forward: the request's files go to the institution's chat too


@dataclass(frozen=True)
class CaseView:
    id: int
    status: Status
    version: int
    source: str
    received_at: datetime
    created_at: datetime
    updated_at: datetime
    category: str
    place_unit_id: int
    place: str
    unit_id: int | None
    unit_key: str | None
    unit_name: str | None
    summary: str
    description: str
    citizen_name: str
    citizen_contact: str
    priority: str
    assignee_id: int | None
    assignee_name: str | None
    due_at: datetime | None
    resolved_at: datetime | None
    n_attachments: int
    last_actor: str | None
    last_action: str | None
    last_at: datetime | None
    unit_kind: str | None = None
    outcome: str | None = None
    closed_at: datetime | None = None
    resolved_by: int | None = None
    reopen_count: int = 0
    handoffs: int = 0
    bouncing: bool = False
    merged_into: int | None = None
    forward_channel: str | None = None
    their_reference: str | None = None
    category_key: str | None = None
    accept_due_at: datetime | None = None
    paused_at: datetime | None = None
    next_action_at: datetime | None = None
    reminder_level: int = 0
    snoozes: int = 0
    erased_at: datetime | None = None  # the citizen's personal data was erased then
    external_ref: str | None = None  # the old register's reference (imported backlog)
    citizen_id: int | None = None  # the citizen in the loop (told of milestones, asked to confirm)
    request_id: int | None = None  # the incoming request it was made of
    confirmed_via: str | None = None  # citizen | phone: how a confirmed case was verified

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_away(self) -> bool:
        """With another institution (forwarded), still on the working group's books."""
        return self.status in AWAY

    def is_overdue(self, now: datetime) -> bool:
        return (self.status in UNFINISHED_STATUSES and self.due_at is not None and self.due_at < now
                and self.paused_at is None)  # waiting for information stops the clock


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str
    data: dict[str, Any]
    erased: bool = False  # it had a free text, erased with the case's personal data


@dataclass
class Step:
    """One change in the making, inside its transaction."""

    conn: Tx
    case: CaseView
    action: Action
    actor: Actor
    roles: frozenset[Role]
    change: Change
    text: str
    now: datetime
    updates: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    new_unit_chat: int | None = None  # a card goes there
    new_unit_id: int | None = None
    card_files: list[int] | None = None  # the attachments sent with that card (None: the unit's rule)
    ladder: list[Any] | None = None  # the ladder's run: what its steps tell, gathered (telling.LadderNote)


Message = str | tuple[str, "outbox.Buttons | None"]  # what a notice builder returns

CASE_SELECT = """
SELECT c.*, cat.name AS category, cat.name_km AS category_km, cat.key AS category_key,
       pu.name AS place, pu.name_km AS place_km, u.key AS unit_key, u.name AS unit_name,
       u.name_km AS unit_name_km,
       u.kind AS unit_kind,
       p.name AS assignee_name,
       (SELECT COUNT(*) FROM attachments a WHERE a.case_id = c.id) AS n_attachments,
       e.actor_name AS last_actor, e.action AS last_action, e.at AS last_at
FROM cases c
JOIN categories cat ON cat.id = c.category_id
JOIN units pu ON pu.id = c.place_unit_id
LEFT JOIN units u ON u.id = c.unit_id
LEFT JOIN people p ON p.tg_id = c.assignee_id
LEFT JOIN events e ON e.id = (SELECT MAX(id) FROM events WHERE case_id = c.id)
"""
CASE_BY_ID = CASE_SELECT + " WHERE c.id = ?"
# A case's history: its events with their free texts (kept apart, erasable: bot/audit.py).
EVENTS_OF_CASE = ("SELECT e.*, t.text AS note FROM events e LEFT JOIN event_texts t ON t.event_id = e.id"
                  " WHERE e.case_id = ? ORDER BY e.id")


def case_view(r: Row) -> CaseView:
    def ts(key: str) -> datetime:
        value = from_db(r[key])
        assert value is not None
        return value

    return CaseView(
        id=r["id"], status=Status(r["status"]), version=r["version"], source=r["source"],
        received_at=ts("received_at"), created_at=ts("created_at"), updated_at=ts("updated_at"),
        category=localized(r["category"], r["category_km"]), place_unit_id=r["place_unit_id"],
        place=localized(r["place"], r["place_km"]), unit_id=r["unit_id"], unit_key=r["unit_key"],
        unit_name=localized(r["unit_name"], r["unit_name_km"]) if r["unit_name"] else None,
        summary=r["summary"], description=r["description"], citizen_name=r["citizen_name"],
        citizen_contact=r["citizen_contact"], priority=r["priority"],
        assignee_id=r["assignee_id"], assignee_name=r["assignee_name"],
        due_at=from_db(r["due_at"]), resolved_at=from_db(r["resolved_at"]),
        n_attachments=r["n_attachments"], last_actor=r["last_actor"],
        last_action=r["last_action"], last_at=from_db(r["last_at"]), unit_kind=r["unit_kind"],
        outcome=r["outcome"], closed_at=from_db(r["closed_at"]), resolved_by=r["resolved_by"],
        reopen_count=r["reopen_count"], handoffs=r["handoffs"], bouncing=bool(r["bouncing"]),
        merged_into=r["merged_into"], forward_channel=r["forward_channel"],
        their_reference=r["their_reference"], category_key=r["category_key"],
        accept_due_at=from_db(r["accept_due_at"]), paused_at=from_db(r["paused_at"]),
        next_action_at=from_db(r["next_action_at"]), reminder_level=r["reminder_level"],
        snoozes=r["snoozes"], erased_at=from_db(r["erased_at"]), external_ref=r["external_ref"],
        citizen_id=r["citizen_id"], request_id=r["request_id"], confirmed_via=r["confirmed_via"],
    )


def clean(text: str, limit: int = TEXT_MAX) -> str:
    return text.strip()[:limit]


def cut_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def days_between(start: datetime, end: datetime) -> int:
    return max(0, (end - start).days)


def days_label(days: int) -> str:
    return ngettext("{n} day", "{n} days", days).format(n=days)


def files_label(data: dict[str, Any]) -> str:
    """A forward's record of the request's files: shared with the institution or kept back
    (empty when the case had none)."""
    n = int(data.get("files") or 0)
    if not n:
        return ""
    if data.get("shared_files"):
        return ngettext("{n} file shared", "{n} files shared", n).format(n=n)
    return ngettext("{n} file not shared", "{n} files not shared", n).format(n=n)
