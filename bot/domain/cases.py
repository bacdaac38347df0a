"""The single path for every change to a case.

``CaseService.apply`` takes the case, the action, the actor and the payload; checks the
permission table and the transition table; and in one transaction updates the case, appends an
immutable event and queues the notifications that follow in the outbox. Handlers, jobs and the
CLI all call it; nothing else writes to ``cases`` or ``events``.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

from bot import audit
from bot.config import Settings
from bot.db import Database, IntegrityError, Row, Tx, from_db, to_db
from bot.domain import citizen_news, erasure, origin, outbox
from bot.domain.deadlines import Deadlines
from bot.domain.errors import (
    CaseNotFound,
    Forbidden,
    Invalid,
    InvalidTransition,
    NoChat,
    OwnResolution,
    StaleCase,
)
from bot.domain.holiday_calendar import holiday_calendar
from bot.domain.model import (
    CASE_BY_ID,
    CASE_SELECT,
    EVENTS_OF_CASE,
    PAGE_SIZE,
    SUMMARY_MAX,
    SYSTEM,
    Actor,
    Attachment,
    AttachmentIn,
    CaseView,
    Change,
    Draft,
    Event,
    ImportedCase,
    Step,
    case_view,
    clean,
)
from bot.domain.people import PeopleService
from bot.domain.requests import take_for_case
from bot.domain.rules import (
    FORWARD_CHANNELS,
    GLOBAL_ROLES,
    HANDOFFS,
    KEEPS_VERSION,
    NOT_BY_RESOLVER,
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
from bot.domain.telling import LadderNote, Telling
from bot.domain.units import UnitService
from bot.i18n import _, label

# Statuses whose step the ladder chases (waiting for information: the clock is stopped).
LADDER_STATUSES = frozenset({Status.ASSIGNED, Status.IN_PROGRESS, Status.FORWARDED,
                             Status.ACKNOWLEDGED, Status.RESOLVED})
# The files that came with the request (the citizen's): what a forward may share.
SHAREABLE_FILES = "SELECT id FROM attachments WHERE case_id = ? AND purpose = 'intake' ORDER BY id"


class CaseService(Deadlines, Telling):
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
            holiday_calendar(settings),
            tuple((c.key, c.resolve_days, c.urgent_resolve_days) for c in settings.categories),
        )
        self.reminders = ReminderPolicy(
            self.policy, r.quiet_start, r.quiet_end, r.escalate_after_days,
            r.escalate_again_after_days, r.max_snoozes, r.warn_before_days,
        )
        self.on_commit = on_commit or (lambda: None)

    # --- rights --------------------------------------------------------------------------

    async def roles(self, actor: Actor, case: CaseView | None) -> frozenset[Role]:
        """The actor's roles relative to a case (None: no case, e.g. creating one)."""
        if actor.citizen_id is not None:  # a citizen: on their own case, and nothing else
            own = case is not None and case.citizen_id == actor.citizen_id
            return frozenset({Role.CITIZEN}) if own else frozenset()
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
        row = await self.db.one(CASE_BY_ID, (case_id,))
        if row is None:
            raise CaseNotFound(case_id)
        return case_view(row)

    async def with_cards(self, case_id: int) -> tuple[Row, list[outbox.CardRef]]:
        """The case's row and its posted cards, in one trip. ``view`` the row under each
        reader's locale: names are in their language."""
        rows, cards = await self.db.batch((CASE_BY_ID, (case_id,)), (outbox.CARDS_SQL, (case_id,)))
        if not rows:
            raise CaseNotFound(case_id)
        return rows[0], outbox.card_refs(cards)

    @staticmethod
    def view(row: Row) -> CaseView:
        return case_view(row)

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
        return [f"{r[0] or _('[erased]')}" + (f" · {r[1]}" if r[1] else "") + f" (#{r[2]})"
                for r in rows]

    async def bouncing(self, actor: Actor) -> list[CaseView]:
        """Unfinished cases handed off again and again, in the actor's scope."""
        scope = await self.people.unit_scope(actor.tg_id)
        rows = await self.db.all(CASE_SELECT + " WHERE c.bouncing = 1 ORDER BY c.received_at, c.id")
        out = [case_view(r) for r in rows if Status(r["status"]) in UNFINISHED_STATUSES]
        if scope is None:
            return out
        # By the place the case concerns (whose supervisors the "bouncing" notice went to), or
        # the unit it is with; not only the latter, which is another institution once forwarded.
        return [c for c in out if scope & {
            *self.units.ancestors_or_self(c.place_unit_id),
            *(self.units.ancestors_or_self(c.unit_id) if c.unit_id is not None else ())}]

    async def history(self, case_id: int) -> list[Event]:
        rows = await self.db.all(EVENTS_OF_CASE, (case_id,))
        return [
            Event(r["id"], from_db(r["at"]) or datetime.min, r["actor_id"], r["actor_name"],
                  r["action"], r["from_status"], r["to_status"], r["note"] or "",
                  json.loads(r["data"]), erased=r["note_commit"] is not None and r["note"] is None)
            for r in rows
        ]

    async def attachments(self, case_id: int) -> list[Attachment]:
        rows = await self.db.all(
            "SELECT id, kind, file_id, file_name, purpose FROM attachments WHERE case_id = ?"
            " ORDER BY id",
            (case_id,),
        )
        return [Attachment(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def shareable_files(self, case_id: int) -> int:
        """How many of the case's files a forward may share with another institution."""
        return len(await self.db.all(SHAREABLE_FILES, (case_id,)))

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
            CASE_SELECT + clause + " ORDER BY c.received_at, c.id LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, max(page, 0) * PAGE_SIZE],
        )
        return [case_view(r) for r in rows], total

    # --- the one write path ---------------------------------------------------------------

    @asynccontextmanager
    async def _change(self, now: datetime, tx: Tx | None = None) -> AsyncIterator[Tx]:
        """A transaction that changes cases, recording which update asked for it (a second
        time, ``AlreadyDone`` and nothing changed: bot/domain/origin.py); or, given ``tx``, a
        part of that one (the reminder ladder's run, which is no update's)."""
        if tx is not None:
            yield tx
            return
        try:
            async with self.db.transaction() as tx:
                origin.record(tx, now)
                yield tx
        except IntegrityError as exc:
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
                " citizen_contact, priority, created_by, citizen_id, request_id)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (Status.NEW, draft.source, to_db(min(received, now)), to_db(now), to_db(now),
                 draft.category_id, draft.place_unit_id, clean(draft.summary, SUMMARY_MAX),
                 clean(draft.description), clean(draft.citizen_name, 200),
                 clean(draft.citizen_contact, 200), draft.priority, actor.tg_id,
                 draft.citizen_id, draft.request_id),
            )
            case_id = cur.lastrowid
            assert case_id is not None
            if draft.request_id is not None:  # the citizen's request: made into this case, once
                await take_for_case(conn, draft, case_id, actor, now)
            self._add_attachments(conn, case_id, draft.attachments, "intake", actor, now)
            self._event(conn, case_id, actor, Action.CREATE, None, Status.NEW, "", now,
                        {"source": draft.source, **(
                            {"request": draft.request_id} if draft.request_id is not None else {})})
            await self._tell_working_group(conn, lambda: _("#{n} created by {who}: {summary}").format(
                n=case_id, who=html.escape(actor.name), summary=html.escape(draft.summary)), now, case_id)
            await citizen_news.received(self, conn, case_id, draft.citizen_id, draft.request_id, now)
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
            category_keys = {int(r[0]): str(r[1]) for r in await conn.all("SELECT id, key FROM categories")}
            for row in rows:
                if await conn.one("SELECT id FROM cases WHERE external_ref = ?",
                                  (row.external_ref,)) is not None:
                    skipped.append(row.external_ref)
                    continue
                status = row.status
                unit_id = None if status is Status.NEW else row.unit_id
                # The ladder as for a case of the bot: the category's deadline, a next look.
                due = self.import_due(status, row.received_at, row.resolved_at,
                                      category_keys.get(row.category_id), unit_id is not None)
                step_deadline = due if status in LADDER_STATUSES else None
                look = self._first_look(step_deadline, now) if step_deadline else None
                # The deadline it was under while open (for the figures: bot/domain/history.py).
                finished = status in (Status.RESOLVED, Status.CLOSED)
                open_due = None if unit_id is None else self.policy.resolve_due(
                    row.received_at, "normal", category_keys.get(row.category_id))
                cur = await conn.execute(
                    "INSERT INTO cases(status, source, received_at, created_at, updated_at, category_id,"
                    " place_unit_id, unit_id, summary, description, citizen_name, citizen_contact,"
                    " created_by, due_at, resolved_at, resolved_by, closed_at, outcome, external_ref,"
                    " next_action_at)"
                    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (status, row.source, to_db(row.received_at), to_db(now), to_db(now),
                     row.category_id, row.unit_id, unit_id, clean(row.summary, SUMMARY_MAX),
                     clean(row.description), clean(row.citizen_name, 200),
                     clean(row.citizen_contact, 200), actor.tg_id, to_db(due) if due else None,
                     to_db(row.resolved_at) if row.resolved_at else None,
                     actor.tg_id if row.resolved_at else None,
                     to_db(row.resolved_at) if status is Status.CLOSED and row.resolved_at else None,
                     "confirmed" if status is Status.CLOSED else None, row.external_ref,
                     to_db(look) if look else None))
                case_id = cur.lastrowid
                assert case_id is not None
                # Its past, for the figures (bot/domain/history.py): the deadline it was under
                # while open, counted from its receipt, and when it was resolved.
                self._event(conn, case_id, actor, Action.IMPORT, None, status, "", now,
                            {"external_ref": row.external_ref, "due": to_db(open_due) if open_due else None,
                             "resolved": to_db(row.resolved_at) if finished and row.resolved_at else None})
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
        expected_version: int | None, tx: Tx | None = None, ladder: list[LadderNote] | None = None,
    ) -> CaseView:
        """``tx``: within that transaction (the ladder's run), not committed here; ``ladder``:
        what the ladder's steps tell is gathered there, to be sent one message per chat."""
        text = change.text.strip()
        async with self._change(now, tx) as conn:
            rows = await conn.all(CASE_BY_ID, (case_id,))
            if not rows:
                raise CaseNotFound(case_id)
            case = case_view(rows[0])
            roles = await self.roles(actor, case)
            self._guard(case, action, roles, expected_version, actor)
            self.check_text(action, text)
            step = Step(conn, case, action, actor, roles, change, text, now,
                         {"status": target_status(action, case.status)})
            step.ladder = ladder
            effect = self._effects.get(action)
            if effect is not None:
                await effect(self, step)
            if action in HANDOFFS:
                self._count_handoff(step)
            if action not in KEEPS_VERSION:
                step.updates["version"] = case.version + 1
                self._reschedule(step)
                # The deadline in force from now on: the figures of past periods read it
                # (bot/domain/history.py), since a case's deadline changes and is cleared.
                step.data["due"] = step.updates.get("due_at", to_db(case.due_at) if case.due_at else None)
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
            await citizen_news.after_change(self, step)
            if tx is not None:
                return case_view((await conn.all(CASE_BY_ID, (case_id,)))[0])
            rows = await conn.commit(CASE_BY_ID, (case_id,))  # as committed
        self.on_commit()
        return case_view(rows[0])

    # --- what each action does besides its status (the transition table gives the status) ---

    async def _do_assign(self, st: Step) -> None:
        st.new_unit_chat = await self._assign(st.case, st.actor, st.roles, st.change, st.updates,
                                              st.data, st.now)
        st.new_unit_id = st.updates["unit_id"]

    async def _do_accept(self, st: Step) -> None:
        st.conn.add(
            "INSERT OR IGNORE INTO people(tg_id, name, first_seen, last_seen) VALUES(?,?,?,?)",
            (st.actor.tg_id, st.actor.name, to_db(st.now), to_db(st.now)))
        st.updates.update(assignee_id=st.actor.tg_id, accept_due_at=None)

    async def _do_back_to_queue(self, st: Step) -> None:  # Not ours; an institution declines
        st.updates.update(unit_id=None, assignee_id=None, due_at=None, accept_due_at=None,
                          paused_at=None)
        st.data.update(unit=st.case.unit_key, unit_name=st.case.unit_name)

    async def _do_forward(self, st: Step) -> None:
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
        # The request's files go to another institution only when the working group shares
        # them, with this forward: recorded either way (how many, and whether they went).
        files = [int(r[0]) for r in await st.conn.all(SHAREABLE_FILES, (st.case.id,))]
        shared = bool(st.change.share_files and files and inst.chat_id is not None)
        st.data.update(files=len(files), shared_files=shared)
        st.card_files = files if shared else []
        st.new_unit_chat = inst.chat_id
        st.new_unit_id = inst.id

    async def _do_acknowledge(self, st: Step) -> None:
        reference = (st.change.reference or "").strip()[:100] or None
        st.updates.update(their_reference=reference, due_at=to_db(self._resolve_due(st.case, st.now)))
        if reference:
            st.data["reference"] = reference

    async def _do_resolve(self, st: Step) -> None:  # also an institution's reported outcome
        st.updates.update(resolved_at=to_db(st.now), resolved_by=st.actor.tg_id, paused_at=None,
                          accept_due_at=None, due_at=to_db(self.policy.verify_due(st.now)))

    async def _do_verify(self, st: Step) -> None:
        if st.change.outcome not in OUTCOMES:
            raise Invalid(_("Say how it ended: confirmed or unreachable."))
        st.updates.update(outcome=st.change.outcome, closed_at=to_db(st.now), due_at=None)
        st.data["outcome"] = st.change.outcome
        if st.change.outcome == "confirmed":  # by the citizen's own word, or by phone
            via = "citizen" if Role.CITIZEN in st.roles else "phone"
            st.updates["confirmed_via"] = via
            st.data["via"] = via

    async def _do_withdraw(self, st: Step) -> None:
        st.updates.update(outcome="withdrawn", closed_at=to_db(st.now), due_at=None,
                          accept_due_at=None, paused_at=None)
        st.data["outcome"] = "withdrawn"

    async def _do_reopen(self, st: Step) -> None:
        case = st.case
        to = Status.ACKNOWLEDGED if case.unit_kind == "external" else Status.ASSIGNED
        if case.unit_id is None:
            to = Status.NEW
        st.updates.update(status=to, resolved_at=None, resolved_by=None, closed_at=None,
                          outcome=None, confirmed_via=None, reopen_count=case.reopen_count + 1,
                          due_at=to_db(self._resolve_due(case, st.now)),
                          accept_due_at=to_db(self.policy.accept_due(st.now)) if to is Status.ASSIGNED
                          else None)
        if st.change.outcome == "disputed":
            st.data["disputed"] = True

    async def _do_merge(self, st: Step) -> None:
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

    _effects: ClassVar[dict[Action, Callable[[Any, Step], Awaitable[None]]]] = {
        Action.ASSIGN: _do_assign,
        Action.ACCEPT: _do_accept,
        Action.RETURN: _do_back_to_queue,
        Action.DECLINE: _do_back_to_queue,
        Action.FORWARD: _do_forward,
        Action.ACKNOWLEDGE: _do_acknowledge,
        Action.RESOLVE: _do_resolve,
        Action.OUTCOME: _do_resolve,
        Action.VERIFY: _do_verify,
        Action.WITHDRAW: _do_withdraw,
        Action.REOPEN: _do_reopen,
        Action.MERGE: _do_merge,
        Action.NEED_INFO: Deadlines._do_pause,
        Action.PROVIDE_INFO: Deadlines._do_unpause,
        Action.RESUME: Deadlines._do_unpause,
        Action.SET_DUE: Deadlines._do_set_due,
        Action.SNOOZE: Deadlines._do_snooze,
        Action.WARN: Deadlines._do_warn,
        Action.REMIND: Deadlines._do_remind,
        Action.ESCALATE: Deadlines._do_escalate,
        Action.ERASE: erasure.do_erase,
        Action.ASK_CITIZEN: citizen_news.do_ask_citizen,
    }

    def _count_handoff(self, st: Step) -> None:
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
        # Rights first: someone with no right to this action on this case is refused (and the
        # refusal recorded) whatever version a button names; only then is an old card stale.
        if not roles & PERMISSIONS[action]:
            raise Forbidden()
        if expected_version is not None and expected_version != case.version:
            raise StaleCase(case.id)
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
        """Append the event to the case's history and to the audit chain, in the change's
        transaction; its free text is kept apart and committed to (bot/audit.py)."""
        at, text = to_db(now), json.dumps(data, ensure_ascii=False)
        conn.call(lambda c: audit.append_event(
            c, case_id, at, actor.tg_id, actor.name, str(action),
            None if from_status is None else str(from_status),
            None if to_status is None else str(to_status), note, text))

