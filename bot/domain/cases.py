"""The single path for every change to a case.

``CaseService.apply`` takes the case, the action, the actor and the payload; checks the
permission table and the transition table; and in one transaction updates the case, appends an
immutable event and queues the notifications that follow in the outbox. Handlers, jobs and the
CLI all call it; nothing else writes to ``cases`` or ``events``.
"""

from __future__ import annotations

import html
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from babel.dates import format_date

from bot.config import Settings
from bot.db import Database, Row, Tx, from_db, to_db
from bot.domain import origin, outbox
from bot.domain.errors import (
    CaseNotFound,
    Forbidden,
    Invalid,
    InvalidTransition,
    NoChat,
    OwnResolution,
    StaleCase,
)
from bot.domain.people import PeopleService
from bot.domain.rules import (
    ACTION_LABELS,
    AWAY,
    CHANNEL_LABELS,
    FORWARD_CHANNELS,
    GLOBAL_ROLES,
    HANDOFFS,
    KEEPS_VERSION,
    NOT_BY_RESOLVER,
    OPEN_STATUSES,
    OUTCOME_LABELS,
    OUTCOMES,
    PERMISSIONS,
    PRIORITIES,
    READ_ROLES,
    REQUIRED_TEXT,
    SEES_PERSONAL_DATA,
    SOURCES,
    STATUS_LABELS,
    UNFINISHED_STATUSES,
    Action,
    DeadlinePolicy,
    ReminderPolicy,
    Role,
    Status,
    can_transition,
    is_allowed,
    target_status,
)
from bot.domain.units import UnitService, localized
from bot.i18n import _, current_locale, label, ngettext, use_locale

PAGE_SIZE = 10
SUMMARY_MAX = 200
TEXT_MAX = 3000


@dataclass(frozen=True)
class Actor:
    tg_id: int
    name: str
    chat_id: int | None = None  # the chat the action came from


SYSTEM = Actor(0, "casebot")  # the bot's own jobs act under this name


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


@dataclass
class _Step:
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


Message = str | tuple[str, "outbox.Buttons | None"]  # what a notice builder returns

_CASE_SELECT = """
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
_CASE_BY_ID = _CASE_SELECT + " WHERE c.id = ?"


def _view(r: Row) -> CaseView:
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
        snoozes=r["snoozes"],
    )


def _clean(text: str, limit: int = TEXT_MAX) -> str:
    return text.strip()[:limit]


class CaseService:
    def __init__(
        self, db: Database, settings: Settings, units: UnitService, people: PeopleService,
        clock: Callable[[], datetime], on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.units = units
        self.people = people
        self.clock = clock
        d, r = settings.deadlines, settings.reminders
        self.policy = DeadlinePolicy(
            settings.tz, d.resolve_days, d.urgent_resolve_days, d.accept_days, d.ack_days,
            d.verify_days, frozenset(d.working_days) if d.working_days else None,
            frozenset(d.holidays),
            tuple((c.key, c.resolve_days, c.urgent_resolve_days) for c in settings.categories),
        )
        self.reminders = ReminderPolicy(
            self.policy, r.quiet_start, r.quiet_end, r.escalate_after_days,
            r.escalate_again_after_days, r.max_snoozes,
        )
        self.on_commit = on_commit or (lambda: None)

    # --- rights --------------------------------------------------------------------------

    async def roles(self, actor: Actor, case: CaseView | None) -> frozenset[Role]:
        """The actor's roles relative to a case (None: no case, e.g. creating one)."""
        if actor.tg_id == SYSTEM.tg_id:
            return frozenset({Role.SYSTEM})
        roles: set[Role] = set()
        unit_id = None if case is None else case.unit_id
        # Supervisors see what is with their units and what concerns their area (its place),
        # even while it sits in the working group's queue or with another institution.
        above: set[int] = set()
        if case is not None:
            for u in (case.unit_id, case.place_unit_id):
                if u is not None:
                    above.update(self.units.ancestors_or_self(u))
        for g in await self.people.grants(actor.tg_id):
            if g.role in GLOBAL_ROLES:
                roles.add(g.role)
            elif g.role is Role.SUPERVISOR:
                if g.unit_id in above:
                    roles.add(g.role)
            elif unit_id is not None and g.unit_id == unit_id:
                roles.add(g.role)
        return frozenset(roles)

    async def is_staff(self, actor: Actor) -> bool:
        """Admin or working group: sees and manages every case."""
        return bool(await self.people.global_roles(actor.tg_id))

    async def may(self, actor: Actor, action: Action, case: CaseView) -> bool:
        """Whether the actor could do the action now (to offer its button)."""
        return can_transition(action, case.status) and is_allowed(
            action, await self.roles(actor, case))

    async def _refused(self, actor: Actor, action: str, case_id: int | None, now: datetime) -> None:
        await self.people.log_refusal(actor.tg_id, action, case_id, actor.chat_id, now)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, case_id: int) -> CaseView:
        row = await self.db.one(_CASE_BY_ID, (case_id,))
        if row is None:
            raise CaseNotFound(case_id)
        return _view(row)

    async def with_cards(self, case_id: int) -> tuple[Row, list[outbox.CardRef]]:
        """The case's row and its posted cards, in one trip. ``view`` the row under each
        reader's locale: names are in their language."""
        rows, cards = await self.db.batch((_CASE_BY_ID, (case_id,)), (outbox.CARDS_SQL, (case_id,)))
        if not rows:
            raise CaseNotFound(case_id)
        return rows[0], outbox.card_refs(cards)

    @staticmethod
    def view(row: Row) -> CaseView:
        return _view(row)

    async def visible(self, actor: Actor, case_id: int, now: datetime) -> tuple[CaseView, bool]:
        """The case if the actor may read it, and whether personal data may be shown where
        they asked: a group sees it only if it is the case's unit chat or the working group's."""
        case = await self.get(case_id)
        roles = await self.roles(actor, case)
        if not roles & READ_ROLES:
            await self._refused(actor, "read", case_id, now)
            raise Forbidden()
        personal = bool(roles & SEES_PERSONAL_DATA)
        chat = actor.chat_id
        if chat is not None and chat < 0:
            personal = personal and (chat == await self._unit_chat(case.unit_id) or chat in (
                await self.working_group_chats()))
        return case, personal

    async def contacts(self, case_id: int) -> list[str]:
        """Further citizens behind the case (from merged duplicates): personal data."""
        rows = await self.db.all(
            "SELECT name, contact, from_case FROM case_contacts WHERE case_id = ? ORDER BY id",
            (case_id,))
        return [f"{r[0]}" + (f" · {r[1]}" if r[1] else "") + f" (#{r[2]})" for r in rows]

    async def bouncing(self, actor: Actor) -> list[CaseView]:
        """Unfinished cases handed off again and again, in the actor's scope."""
        scope = await self.people.unit_scope(actor.tg_id)
        rows = await self.db.all(_CASE_SELECT + " WHERE c.bouncing = 1 ORDER BY c.received_at, c.id")
        out = [_view(r) for r in rows if Status(r["status"]) in UNFINISHED_STATUSES]
        if scope is None:
            return out
        return [c for c in out
                if scope & set(self.units.ancestors_or_self(c.unit_id or c.place_unit_id))]

    async def history(self, case_id: int) -> list[Event]:
        rows = await self.db.all(
            "SELECT * FROM events WHERE case_id = ? ORDER BY id", (case_id,)
        )
        return [
            Event(r["id"], from_db(r["at"]) or datetime.min, r["actor_id"], r["actor_name"],
                  r["action"], r["from_status"], r["to_status"], r["note"], json.loads(r["data"]))
            for r in rows
        ]

    async def attachments(self, case_id: int) -> list[Attachment]:
        rows = await self.db.all(
            "SELECT id, kind, file_id, file_name, purpose FROM attachments WHERE case_id = ?"
            " ORDER BY id",
            (case_id,),
        )
        return [Attachment(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def open_cases(
        self, actor: Actor, page: int, now: datetime, *, overdue_only: bool = False
    ) -> tuple[list[CaseView], int]:
        """Open cases in the actor's scope, oldest first, one page, and the total."""
        where = [f"c.status IN ({','.join('?' * len(UNFINISHED_STATUSES))})"]
        params: list[Any] = sorted(UNFINISHED_STATUSES)
        scope = await self.people.unit_scope(actor.tg_id)
        if scope is not None:
            if not scope:
                return [], 0
            unit_ids = sorted(scope)
            where.append(f"c.unit_id IN ({','.join('?' * len(unit_ids))})")
            params += unit_ids
        if overdue_only:
            where.append("c.due_at IS NOT NULL AND c.due_at < ? AND c.paused_at IS NULL")
            params.append(to_db(now))
        clause = " WHERE " + " AND ".join(where)
        total_row = await self.db.one("SELECT COUNT(*) FROM cases c" + clause, params)
        total = int(total_row[0]) if total_row else 0
        rows = await self.db.all(
            _CASE_SELECT + clause + " ORDER BY c.received_at, c.id LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, max(page, 0) * PAGE_SIZE],
        )
        return [_view(r) for r in rows], total

    # --- the one write path ---------------------------------------------------------------

    @asynccontextmanager
    async def _change(self, now: datetime) -> AsyncIterator[Tx]:
        """A transaction that changes cases, recording which update asked for it (a second
        time, ``AlreadyDone`` and nothing changed: bot/domain/origin.py)."""
        try:
            async with self.db.transaction() as tx:
                origin.record(tx, now)
                yield tx
        except sqlite3.IntegrityError as exc:
            raise origin.translate(exc) from None

    async def create(self, actor: Actor, draft: Draft, now: datetime) -> CaseView:
        if not is_allowed(Action.CREATE, await self.roles(actor, None)):
            await self._refused(actor, Action.CREATE, None, now)
            raise Forbidden()
        self._check_draft(draft)
        assert draft.category_id is not None and draft.place_unit_id is not None
        received = draft.received_at or now
        async with self._change(now) as conn:
            cur = await conn.execute(
                "INSERT INTO cases(status, source, received_at, created_at, updated_at,"
                " category_id, place_unit_id, summary, description, citizen_name,"
                " citizen_contact, priority, created_by) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (Status.NEW, draft.source, to_db(min(received, now)), to_db(now), to_db(now),
                 draft.category_id, draft.place_unit_id, _clean(draft.summary, SUMMARY_MAX),
                 _clean(draft.description), _clean(draft.citizen_name, 200),
                 _clean(draft.citizen_contact, 200), draft.priority, actor.tg_id),
            )
            case_id = cur.lastrowid
            assert case_id is not None
            self._add_attachments(conn, case_id, draft.attachments, "intake", actor, now)
            self._event(conn, case_id, actor, Action.CREATE, None, Status.NEW, "", now,
                        {"source": draft.source})
            await self._tell_working_group(conn, lambda: _("#{n} created by {who}: {summary}").format(
                n=case_id, who=html.escape(actor.name), summary=html.escape(draft.summary)), now, case_id)
        self.on_commit()
        return await self.get(case_id)

    async def import_cases(
        self, actor: Actor, rows: list[ImportedCase], now: datetime
    ) -> tuple[list[int], list[str]]:
        """Add backlog cases in one transaction; their history starts with "imported".
        Rows whose external reference is already known are skipped (importing twice changes
        nothing). Returns the new case numbers and the skipped references."""
        if not is_allowed(Action.IMPORT, await self.roles(actor, None)):
            await self._refused(actor, Action.IMPORT, None, now)
            raise Forbidden()
        created: list[int] = []
        skipped: list[str] = []
        async with self._change(now) as conn:
            for row in rows:
                if await conn.one("SELECT id FROM cases WHERE external_ref = ?",
                                  (row.external_ref,)) is not None:
                    skipped.append(row.external_ref)
                    continue
                status = row.status
                finished = status in (Status.RESOLVED, Status.CLOSED)
                unit_id = None if status is Status.NEW else row.unit_id
                due = (None if finished or unit_id is None
                       else self.policy.resolve_due(row.received_at, "normal"))
                cur = await conn.execute(
                    "INSERT INTO cases(status, source, received_at, created_at, updated_at, category_id,"
                    " place_unit_id, unit_id, summary, description, citizen_name, citizen_contact,"
                    " created_by, due_at, resolved_at, resolved_by, closed_at, outcome, external_ref)"
                    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (status, row.source, to_db(row.received_at), to_db(now), to_db(now),
                     row.category_id, row.unit_id, unit_id, _clean(row.summary, SUMMARY_MAX),
                     _clean(row.description), _clean(row.citizen_name, 200),
                     _clean(row.citizen_contact, 200), actor.tg_id, to_db(due) if due else None,
                     to_db(row.resolved_at) if row.resolved_at else None,
                     actor.tg_id if row.resolved_at else None,
                     to_db(row.resolved_at) if status is Status.CLOSED and row.resolved_at else None,
                     "confirmed" if status is Status.CLOSED else None, row.external_ref))
                case_id = cur.lastrowid
                assert case_id is not None
                self._event(conn, case_id, actor, Action.IMPORT, None, status, "", now,
                            {"external_ref": row.external_ref})
                created.append(case_id)
        return created, skipped

    async def known_external_refs(self, refs: list[str]) -> set[str]:
        """Which of these backlog references are already imported (to say so before importing)."""
        known: set[str] = set()
        for i in range(0, len(refs), 500):  # within SQLite's limit on parameters
            chunk = refs[i:i + 500]
            rows = await self.db.all(
                f"SELECT external_ref FROM cases WHERE external_ref IN ({','.join('?' * len(chunk))})",
                chunk)
            known.update(str(r[0]) for r in rows)
        return known

    def _check_draft(self, d: Draft) -> None:
        if d.category_id is None:
            raise Invalid(_("Choose a category."))
        if d.place_unit_id is None:
            raise Invalid(_("Choose a unit."))
        if d.source not in SOURCES:
            raise Invalid(_("Unknown source."))
        if d.priority not in PRIORITIES:
            raise Invalid(_("Unknown priority."))
        if len(d.summary.strip()) < 3:
            raise Invalid(_("The summary needs at least 3 characters."))
        if not d.citizen_name.strip():
            raise Invalid(_("The citizen's name is needed."))

    async def apply(
        self, case_id: int, action: Action, actor: Actor, change: Change, now: datetime,
        *, expected_version: int | None = None,
    ) -> CaseView:
        """Do ``action`` on the case, or raise a DomainError and change nothing."""
        if action is Action.CREATE:
            raise Invalid(_("Use /new to create a case."))
        try:
            return await self._apply(case_id, action, actor, change, now, expected_version)
        except Forbidden:
            await self._refused(actor, action, case_id, now)
            raise

    async def _apply(
        self, case_id: int, action: Action, actor: Actor, change: Change, now: datetime,
        expected_version: int | None,
    ) -> CaseView:
        text = change.text.strip()
        async with self._change(now) as conn:
            rows = await conn.all(_CASE_BY_ID, (case_id,))
            if not rows:
                raise CaseNotFound(case_id)
            case = _view(rows[0])
            roles = await self.roles(actor, case)
            self._guard(case, action, roles, expected_version, actor)
            self.check_text(action, text)
            step = _Step(conn, case, action, actor, roles, change, text, now,
                         {"status": target_status(action, case.status)})
            effect = self._effects.get(action)
            if effect is not None:
                await effect(self, step)
            if action in HANDOFFS:
                self._count_handoff(step)
            if action not in KEEPS_VERSION:
                step.updates["version"] = case.version + 1
                self._reschedule(step)
            step.updates["updated_at"] = to_db(now)
            sets = ", ".join(f"{k} = ?" for k in step.updates)
            conn.add(f"UPDATE cases SET {sets} WHERE id = ?", [*step.updates.values(), case_id])
            purpose = "evidence" if action in (Action.RESOLVE, Action.OUTCOME) else "note"
            self._add_attachments(conn, case_id, list(change.attachments), purpose, actor, now)
            if change.attachments:
                step.data["attachments"] = len(change.attachments)
            to = step.updates["status"]
            self._event(conn, case_id, actor, action, case.status, to, text, now, step.data)
            await self._notify(step)
            rows = await conn.commit(_CASE_BY_ID, (case_id,))  # as committed
        self.on_commit()
        return _view(rows[0])

    # --- what each action does besides its status (the transition table gives the status) ---

    async def _do_assign(self, st: _Step) -> None:
        st.new_unit_chat = await self._assign(st.case, st.actor, st.roles, st.change, st.updates,
                                              st.data, st.now)
        st.new_unit_id = st.updates["unit_id"]

    async def _do_accept(self, st: _Step) -> None:
        st.conn.add(
            "INSERT OR IGNORE INTO people(tg_id, name, first_seen, last_seen) VALUES(?,?,?,?)",
            (st.actor.tg_id, st.actor.name, to_db(st.now), to_db(st.now)))
        st.updates.update(assignee_id=st.actor.tg_id, accept_due_at=None)

    async def _do_back_to_queue(self, st: _Step) -> None:  # Not ours; an institution declines
        st.updates.update(unit_id=None, assignee_id=None, due_at=None, accept_due_at=None,
                          paused_at=None)
        st.data.update(unit=st.case.unit_key, unit_name=st.case.unit_name)

    async def _do_forward(self, st: _Step) -> None:
        if not st.change.unit_key:
            raise Invalid(_("Name the institution to forward to."))
        inst = await self.units.by_key(st.change.unit_key)
        if inst.kind != "external":
            raise Invalid(_("{unit} is a unit of the ministry: assign the case instead.").format(
                unit=html.escape(inst.name)))
        if inst.chat_id is not None:
            channel = "telegram"
        elif st.change.channel in FORWARD_CHANNELS and st.change.channel != "telegram":
            channel = st.change.channel
        else:
            raise Invalid(_("{unit} has no chat here: say how it was sent (letter, phone, email "
                            "or in_person).").format(unit=html.escape(inst.name)))
        due = self.policy.ack_due(st.now, inst.ack_days)
        st.updates.update(unit_id=inst.id, assignee_id=None, due_at=to_db(due), accept_due_at=None,
                          forward_channel=channel, their_reference=None)
        st.data.update(unit=inst.key, unit_name=inst.name, channel=channel,
                       from_unit=st.case.unit_key)
        st.new_unit_chat = inst.chat_id
        st.new_unit_id = inst.id

    async def _do_acknowledge(self, st: _Step) -> None:
        reference = (st.change.reference or "").strip()[:100] or None
        st.updates.update(their_reference=reference, due_at=to_db(self._resolve_due(st.case, st.now)))
        if reference:
            st.data["reference"] = reference

    async def _do_resolve(self, st: _Step) -> None:  # also an institution's reported outcome
        st.updates.update(resolved_at=to_db(st.now), resolved_by=st.actor.tg_id, paused_at=None,
                          accept_due_at=None, due_at=to_db(self.policy.verify_due(st.now)))

    async def _do_verify(self, st: _Step) -> None:
        if st.change.outcome not in OUTCOMES:
            raise Invalid(_("Say how it ended: confirmed or unreachable."))
        st.updates.update(outcome=st.change.outcome, closed_at=to_db(st.now), due_at=None)
        st.data["outcome"] = st.change.outcome

    async def _do_reopen(self, st: _Step) -> None:
        case = st.case
        to = Status.ACKNOWLEDGED if case.unit_kind == "external" else Status.ASSIGNED
        if case.unit_id is None:
            to = Status.NEW
        st.updates.update(status=to, resolved_at=None, resolved_by=None, closed_at=None,
                          outcome=None, reopen_count=case.reopen_count + 1,
                          due_at=to_db(self._resolve_due(case, st.now)),
                          accept_due_at=to_db(self.policy.accept_due(st.now)) if to is Status.ASSIGNED
                          else None)
        if st.change.outcome == "disputed":
            st.data["disputed"] = True

    async def _do_merge(self, st: _Step) -> None:
        into = st.change.into
        if into is None or into == st.case.id:
            raise Invalid(_("Name another case to merge into."))
        target = await st.conn.one("SELECT status FROM cases WHERE id = ?", (into,))
        if target is None:
            raise CaseNotFound(into)
        if Status(target[0]) not in UNFINISHED_STATUSES:
            raise Invalid(_("Case #{n} is finished: merge into a case still being handled.").format(
                n=into))
        conn, now, case = st.conn, to_db(st.now), st.case
        conn.add("UPDATE attachments SET case_id = ? WHERE case_id = ?", (into, case.id))
        conn.add("UPDATE case_contacts SET case_id = ? WHERE case_id = ?", (into, case.id))
        conn.add(
            "INSERT INTO case_contacts(case_id, name, contact, from_case, added_at) VALUES(?,?,?,?,?)",
            (into, case.citizen_name, case.citizen_contact, case.id, now))
        conn.add("UPDATE cases SET version = version + 1, updated_at = ? WHERE id = ?",
                 (now, into))
        self._event(conn, into, st.actor, Action.MERGE, None, None, st.text, st.now,
                    {"merged_from": case.id})
        st.updates.update(merged_into=into, outcome="merged", closed_at=now, due_at=None)
        st.data["into"] = into

    async def _do_pause(self, st: _Step) -> None:  # waiting for information stops the clock
        st.updates["paused_at"] = to_db(st.now)

    async def _do_unpause(self, st: _Step) -> None:
        """The information came back: the resolution deadline moves by the time spent waiting."""
        case = st.case
        if case.paused_at is not None and case.due_at is not None:
            waited = st.now - case.paused_at
            st.updates["due_at"] = to_db(self.policy.shift(case.due_at, case.paused_at, st.now))
            st.data["paused_hours"] = round(waited.total_seconds() / 3600, 1)
        st.updates["paused_at"] = None

    async def _do_set_due(self, st: _Step) -> None:
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

    async def _do_snooze(self, st: _Step) -> None:
        self._check_snoozes(st.case)
        st.updates.update(snoozes=st.case.snoozes + 1,
                          next_action_at=to_db(self.reminders.next_allowed(st.now + timedelta(days=1))))

    async def _do_remind(self, st: _Step) -> None:
        st.updates.update(
            reminder_level=max(st.case.reminder_level, 1),
            next_action_at=to_db(self.reminders.next_allowed(st.now + timedelta(days=1))))
        deadline = self._deadline(st.case)
        st.data.update(step=self._step_name(st.case),
                       overdue_days=self.policy.days_after(deadline, st.now) if deadline else 0)

    async def _do_escalate(self, st: _Step) -> None:
        level = st.change.level or 2
        st.updates["reminder_level"] = max(st.case.reminder_level, level)
        st.data["level"] = level

    _effects: ClassVar[dict[Action, Callable[[CaseService, _Step], Awaitable[None]]]] = {
        Action.ASSIGN: _do_assign,
        Action.ACCEPT: _do_accept,
        Action.RETURN: _do_back_to_queue,
        Action.DECLINE: _do_back_to_queue,
        Action.FORWARD: _do_forward,
        Action.ACKNOWLEDGE: _do_acknowledge,
        Action.RESOLVE: _do_resolve,
        Action.OUTCOME: _do_resolve,
        Action.VERIFY: _do_verify,
        Action.REOPEN: _do_reopen,
        Action.MERGE: _do_merge,
        Action.NEED_INFO: _do_pause,
        Action.PROVIDE_INFO: _do_unpause,
        Action.RESUME: _do_unpause,
        Action.SET_DUE: _do_set_due,
        Action.SNOOZE: _do_snooze,
        Action.REMIND: _do_remind,
        Action.ESCALATE: _do_escalate,
    }

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

    def _reschedule(self, st: _Step) -> None:
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

    def _count_handoff(self, st: _Step) -> None:
        handoffs = st.case.handoffs + 1
        st.updates["handoffs"] = handoffs
        if not st.case.bouncing and handoffs >= self.settings.deadlines.bouncing_after:
            st.updates["bouncing"] = 1
            st.data["bouncing"] = True

    async def check(
        self, case_id: int, action: Action, actor: Actor, *, expected_version: int | None = None
    ) -> CaseView:
        """Raise what ``apply`` would raise before its text is known (to ask for it only
        when the action can be done); changes nothing."""
        case = await self.get(case_id)
        try:
            self._guard(case, action, await self.roles(actor, case), expected_version, actor)
        except Forbidden:
            await self._refused(actor, action, case_id, self.clock())
            raise
        if action is Action.SNOOZE:  # the limit is known before the reason is asked for
            self._check_snoozes(case)
        return case

    @staticmethod
    def _guard(
        case: CaseView, action: Action, roles: frozenset[Role], expected_version: int | None,
        actor: Actor,
    ) -> None:
        if expected_version is not None and expected_version != case.version:
            raise StaleCase(case.id)
        if not roles & PERMISSIONS[action]:
            raise Forbidden()
        if not can_transition(action, case.status):
            raise InvalidTransition(case.id, label(STATUS_LABELS, case.status))
        if action in NOT_BY_RESOLVER and case.status is Status.RESOLVED and (
                case.resolved_by == actor.tg_id):
            raise OwnResolution()

    @staticmethod
    def check_text(action: Action, text: str) -> None:
        minimum = REQUIRED_TEXT.get(action, 0)
        if len(text.strip()) >= minimum:
            return
        if action is Action.RESOLVE:
            msg = _("Describe what was done in at least {n} characters.")
        elif action in (Action.RETURN, Action.REOPEN):
            msg = _("A reason is needed (at least {n} characters).")
        else:
            msg = _("Some text is needed (at least {n} characters).")
        raise Invalid(msg.format(n=minimum))

    async def show_card(self, actor: Actor, case_id: int, now: datetime) -> None:
        """Post the case's card, with its buttons, in the actor's chat (under a reminder)."""
        case, personal = await self.visible(actor, case_id, now)
        # An institution's card never carries personal data: its liaisons get it in their chat.
        liaison_chat = case.unit_kind == "external" and actor.chat_id == await self._unit_chat(case.unit_id)
        if not (personal or liaison_chat) or actor.chat_id is None:
            raise Invalid(_("Use /case {n} to see it.").format(n=case_id))
        async with self.db.transaction() as conn:
            outbox.queue_card(conn, actor.chat_id, case.id, case.unit_id, now)
        self.on_commit()

    async def refresh_cards(self, case_id: int, now: datetime) -> None:
        """Bring every posted card of the case up to date (after a press on a stale one)."""
        async with self.db.transaction() as conn:
            outbox.queue_refresh(conn, case_id, now)
        self.on_commit()

    async def _assign(
        self, case: CaseView, actor: Actor, roles: frozenset[Role], change: Change, updates: dict[str, Any],
        data: dict[str, Any], now: datetime,
    ) -> int:
        if not change.unit_key:
            raise Invalid(_("Name the unit to assign to."))
        unit = await self.units.by_key(change.unit_key)
        if not roles & GLOBAL_ROLES:  # a supervisor re-assigns only within their subtree
            supervised = await self._supervised(actor)
            if unit.id not in supervised or (case.unit_id or case.place_unit_id) not in supervised:
                raise Forbidden()
        if unit.kind == "external":
            raise Invalid(
                _("{unit} is another institution; cases are forwarded there, not assigned.")
                .format(unit=html.escape(unit.name))
            )
        if unit.chat_id is None:
            raise NoChat(unit.name)
        assignee_id = None
        if change.assignee:
            person = await self.people.find(change.assignee)
            if not any(g.role is Role.OFFICIAL and g.unit_id == unit.id for g in person.grants):
                raise Invalid(_("{who} is not an official of {unit}.").format(
                    who=html.escape(person.name), unit=html.escape(unit.name)))
            assignee_id = person.tg_id
            data["assignee"] = person.name
        updates.update(
            unit_id=unit.id, assignee_id=assignee_id, paused_at=None,
            due_at=to_db(self._resolve_due(case, now)),
            accept_due_at=to_db(self.policy.accept_due(now)),
        )
        data.update(unit=unit.key, unit_name=unit.name, from_unit=case.unit_key)
        return unit.chat_id

    async def _supervised(self, actor: Actor) -> set[int]:
        units: set[int] = set()
        for g in await self.people.grants(actor.tg_id):
            if g.role is Role.SUPERVISOR and g.unit_id is not None:
                units |= self.units.subtree(g.unit_id)
        return units

    def _add_attachments(
        self, conn: Tx, case_id: int, items: list[AttachmentIn], purpose: str,
        actor: Actor, now: datetime,
    ) -> None:
        for a in items:
            conn.add(
                "INSERT INTO attachments(case_id, kind, file_id, file_name, purpose, added_by,"
                " added_at) VALUES(?,?,?,?,?,?,?)",
                (case_id, a.kind, a.file_id, a.file_name, purpose, actor.tg_id, to_db(now)),
            )

    @staticmethod
    def _event(
        conn: Tx, case_id: int, actor: Actor, action: Action,
        from_status: Status | None, to_status: Status | None, note: str, now: datetime,
        data: dict[str, Any],
    ) -> None:
        conn.add(
            "INSERT INTO events(case_id, at, actor_id, actor_name, action, from_status,"
            " to_status, note, data) VALUES(?,?,?,?,?,?,?,?,?)",
            (case_id, to_db(now), actor.tg_id, actor.name, action, from_status, to_status,
             note, json.dumps(data, ensure_ascii=False)),
        )

    async def working_group_chats(self) -> list[int]:
        chat = await self.units.wg_chat_id()
        return [chat] if chat is not None else await self.people.holders(Role.WORKING_GROUP)

    async def chat_name(self, chat_id: int) -> str:
        """A readable name for a chat: the person's name, or the unit whose chat it is."""
        if chat_id > 0:
            row = await self.db.one("SELECT name FROM people WHERE tg_id = ?", (chat_id,))
            return str(row[0]) if row else str(chat_id)
        unit = await self.units.unit_for_chat(chat_id)
        return unit.name if unit else str(chat_id)

    async def _send(
        self, conn: Tx, chats: list[int], make: Callable[[], Message], now: datetime,
        case_id: int | None,
    ) -> None:
        """Queue a message to each chat, written in that chat's language: ``make`` is called
        once per language, under it, and returns the text (and buttons); an empty text: nothing."""
        by_lang: dict[str, list[int]] = {}
        for chat in chats:
            by_lang.setdefault(await self.units.language_of(chat), []).append(chat)
        for lang, group in by_lang.items():
            with use_locale(lang):
                made = make()
            text, buttons = made if isinstance(made, tuple) else (made, None)
            if text:
                for chat in group:
                    outbox.queue_text(conn, chat, text, now, buttons=buttons, case_id=case_id)

    async def _tell_working_group(
        self, conn: Tx, make: Callable[[], Message], now: datetime, case_id: int,
    ) -> None:
        await self._send(conn, await self.working_group_chats(), make, now, case_id)

    async def _notify(self, st: _Step) -> None:
        """Queue what follows the change: cards, the unit's notices, the working group's line,
        each in its reader's language."""
        conn, now, action, n = st.conn, st.now, st.action, st.case.id
        outbox.queue_refresh(conn, n, now)  # every posted card shows the new state
        if action in (Action.REMIND, Action.ESCALATE, Action.HELP, Action.SNOOZE):
            await self._notify_ladder(st)
            return
        if st.new_unit_id is not None and st.new_unit_chat is not None:
            outbox.queue_card(conn, st.new_unit_chat, n, st.new_unit_id, now)
        staff_note = action is Action.NOTE and await self.is_staff(st.actor)
        unit_chat = await self._unit_chat(st.case.unit_id)
        new_unit = await self.units.by_id(st.new_unit_id) if st.new_unit_id is not None else None
        who, note = html.escape(st.actor.name), html.escape(st.text)

        def when(value: datetime) -> str:
            return format_date(value.astimezone(self.settings.tz), "d MMM y", locale=current_locale())

        def to_unit() -> str:
            if action is Action.PROVIDE_INFO:
                return _("Answer from the working group on #{n}: {text}").format(n=n, text=note)
            if action is Action.REOPEN:
                return (_("#{n} is reopened: the citizen disputes the resolution: {reason}")
                        if st.data.get("disputed") else _("#{n} is reopened: {reason}")).format(
                    n=n, reason=note)
            if action is Action.VERIFY:
                return _("#{n} is {outcome}.").format(n=n, outcome=label(OUTCOME_LABELS, st.data["outcome"]))
            if action is Action.SET_DUE and st.change.due is not None:
                return _("New deadline for #{n}: {when}.").format(n=n, when=when(st.change.due))
            if staff_note:
                return _("Note on #{n} from {who}: {text}").format(n=n, who=who, text=note)
            return ""

        def wg_line() -> tuple[str, outbox.Buttons | None]:
            line = _("#{n} · {action} by {who}").format(n=n, action=label(ACTION_LABELS, action), who=who)
            if new_unit is not None:
                line += " → " + html.escape(new_unit.name)
            if action is Action.FORWARD and st.new_unit_chat is None:
                line += " (" + _("by {channel}; follow up by {when}").format(
                    channel=label(CHANNEL_LABELS, st.data["channel"]),
                    when=when(datetime.fromisoformat(st.updates["due_at"]))) + ")"
            if st.data.get("reference"):
                line += " · " + _("their reference: {ref}").format(ref=html.escape(st.data["reference"]))
            if action is Action.VERIFY:
                line += " · " + label(OUTCOME_LABELS, st.data["outcome"])
            if action is Action.MERGE:
                line += " → #" + str(st.data["into"])
            if action is Action.SET_DUE:
                line += " · " + to_unit()
            buttons: outbox.Buttons | None = None
            if action is Action.NEED_INFO:
                line += "\n" + _("Needed: {what}").format(what=note)
                buttons = [[(_("Answer…"), f"ans:{n}")]]
            elif action in (Action.RESOLVE, Action.OUTCOME):
                line += ": " + note + "\n" + _("Verify with the citizen:")
                buttons = verification_buttons(n, st.case.version + 1)
            elif st.text:
                line += ": " + note
            return line, buttons

        if unit_chat is not None:
            await self._send(conn, [unit_chat], to_unit, now, n)
        await self._tell_working_group(conn, wg_line, now, n)
        if st.data.get("bouncing"):
            await self._flag_bouncing(st)

    async def _notify_ladder(self, st: _Step) -> None:
        """Reminders, escalations and calls for help: to the people the step concerns."""
        case, n, now, conn = st.case, st.case.id, st.now, st.conn
        summary = html.escape(cut_text(case.summary, 80))
        if st.action is Action.SNOOZE:
            return  # recorded in the history; the reminder comes back tomorrow

        def where() -> str:
            return html.escape(case.unit_name or case.place)

        if st.action is Action.HELP:
            def help_text() -> str:
                return "🆘 " + _("{who} asks for help with #{n} ({unit}): {text}").format(
                    who=html.escape(st.actor.name), n=n, unit=where(), text=html.escape(st.text))
            await self._send(conn, await self._supervisors_near(case, above=False), help_text, now, n)
            await self._tell_working_group(conn, help_text, now, n)
            return
        days = st.data.get("overdue_days", 0)
        if st.action is Action.ESCALATE:
            deadline = self._deadline(case)
            days = self.policy.days_after(deadline, now) if deadline else 0

            def escalation() -> str:
                return "⬆️ " + _("#{n} ({unit}) is overdue by {days}: {summary}").format(
                    n=n, unit=where(), days=days_label(max(1, days)), summary=summary) + "\n" + _(
                    "Escalated to you. /case {n} shows it.").format(n=n)
            level = st.data["level"]
            supervisors = await self._supervisors_near(case, above=level >= 3)
            await self._send(conn, supervisors, escalation, now, n)
            if level >= 3 or not supervisors:  # no supervisor up the tree: the working group
                await self._tell_working_group(conn, escalation, now, n)
            return
        step, version = st.data["step"], case.version

        def reminder() -> str:
            return "⏰ " + {
                "accept": _("#{n} ({unit}) is still not accepted, {days} after the deadline: {summary}"),
                "acknowledge": _("#{n} is not acknowledged by {unit}, {days} after the deadline: "
                                 "{summary}"),
                "verify": _("#{n} ({unit}) is resolved but not verified, {days} after the deadline: "
                            "{summary}"),
                "resolve": _("#{n} ({unit}) is overdue by {days}: {summary}"),
            }[step].format(n=n, unit=where(), days=days_label(max(1, days)), summary=summary)

        def with_buttons() -> tuple[str, outbox.Buttons]:
            return reminder(), [
                [(_("🔄 Update status"), f"c:{n}:{version}:upd"),
                 (_("😴 Snooze 1 day"), f"c:{n}:{version}:snz")],
                [(_("🆘 Ask for help"), f"c:{n}:{version}:hlp")],
            ]

        if step == "verify":
            await self._tell_working_group(
                conn, lambda: (reminder(), verification_buttons(n, version)), now, n)
            return
        if step == "acknowledge":
            await self._tell_working_group(conn, reminder, now, n)
        target = await self._unit_chat(case.unit_id)
        if step == "resolve" and case.assignee_id is not None and await self.people.has_private_chat(
                case.assignee_id):
            target = case.assignee_id
        if target is not None:
            await self._send(conn, [target], with_buttons, now, n)
        elif step != "acknowledge":
            await self._tell_working_group(conn, reminder, now, n)

    async def _supervisors_near(self, case: CaseView, *, above: bool) -> list[int]:
        """The supervisors of the case's unit (the nearest unit up the tree that has some), or,
        with ``above``, those of the unit above that."""
        chain = self.units.ancestors_or_self(case.unit_id or case.place_unit_id)
        found_own = False
        for unit_id in chain:
            holders = await self.people.holders(Role.SUPERVISOR, unit_id)
            if not holders:
                continue
            if not above or found_own:
                return holders
            found_own = True
        return []

    async def _flag_bouncing(self, st: _Step) -> None:
        """Three hand-offs (configurable): the working group and the supervisors concerned hear at once."""
        n, case = st.case.id, st.case

        def text() -> str:
            return "⚠️ " + _("#{n} is bouncing: handed off {count} times. /bouncing lists such cases.").format(
                n=n, count=st.updates["handoffs"])
        await self._tell_working_group(st.conn, text, st.now, n)
        supervisors: set[int] = set()
        for unit_id in self.units.ancestors_or_self(case.place_unit_id):
            supervisors.update(await self.people.holders(Role.SUPERVISOR, unit_id))
        await self._send(st.conn, sorted(supervisors), text, st.now, n)

    async def _unit_chat(self, unit_id: int | None) -> int | None:
        if unit_id is None:
            return None
        unit = await self.units.by_id(unit_id)
        return None if unit is None else unit.chat_id


def cut_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def days_between(start: datetime, end: datetime) -> int:
    return max(0, (end - start).days)


def days_label(days: int) -> str:
    return ngettext("{n} day", "{n} days", days).format(n=days)




def verification_buttons(case_id: int, version: int) -> outbox.Buttons:
    """Under a resolution, for whoever verifies it with the citizen."""
    def data(code: str) -> str:
        return f"c:{case_id}:{version}:{code}"

    return [
        [(_("✅ Citizen confirmed"), data("cfm")), (_("📵 Could not reach"), data("unr"))],
        [(_("⚠️ Citizen disputes…"), data("dis")), (_("↩️ Reopen…"), data("reo"))],
    ]
