"""Incoming requests: what citizens sent (a page message or comment, a Telegram submission),
before the working group makes a case of it or says why not.

A request is stored once, under its source's own id (``fb:m:<mid>``, ``fb:c:<comment id>``,
``tg:<citizen id>:<n>``): a webhook delivered twice, an update handled twice, store nothing twice.
A new request tells the working group's chat, one message for a burst (``PING_QUIET``). The
working group decides each (``/inbox``): a case, not a request, a duplicate of a case, or abusive
with a reason. No citizen is ever blocked automatically: abuse is a person's decision, recorded
and counted in the public figures.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import audit
from bot.db import Database, IntegrityError, Row, Tx, from_db, to_db
from bot.domain import origin
from bot.domain.citizens import CitizenStore, queue_to_citizen
from bot.domain.errors import DomainError, Forbidden, Invalid, NotFound
from bot.domain.model import SUMMARY_MAX, Actor, AttachmentIn, Draft
from bot.domain.rules import UNFINISHED_STATUSES
from bot.i18n import _, use_locale

if TYPE_CHECKING:
    from bot.domain.cases import CaseService

SOURCES = ("facebook_message", "facebook_comment", "telegram")
STATUSES = ("pending", "case", "not_request", "duplicate", "abusive", "withdrawn")
TEXT_MAX = 4000  # characters of a request's words kept (a page message is at most 2,000)
PING_QUIET = timedelta(minutes=15)  # at most one "new requests" ping to the working group this often
PING_PAYLOAD = {"ping": "requests"}  # marks the ping in the outbox (one waiting at a time)


@dataclass(frozen=True)
class IncomingRequest:
    id: int
    key: str
    source: str
    citizen_id: int | None
    received_at: datetime
    text: str
    data: dict[str, Any]
    status: str
    case_id: int | None
    decided_by: int | None
    decided_at: datetime | None
    reason: str


def incoming(r: Row) -> IncomingRequest:
    received = from_db(r["received_at"])
    assert received is not None
    return IncomingRequest(r["id"], r["key"], r["source"], r["citizen_id"], received, r["text"],
                           json.loads(r["data"]), r["status"], r["case_id"], r["decided_by"],
                           from_db(r["decided_at"]), r["reason"])


async def store(
    tx: Tx, key: str, source: str, citizen_id: int | None, text: str, now: datetime,
    data: dict[str, Any] | None = None, *, received_at: datetime | None = None,
) -> int | None:
    """Store a request in the caller's transaction: its id, or None when its key is already
    there (a copy: nothing is stored)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    result = await tx.execute(
        "INSERT INTO requests(key, source, citizen_id, received_at, text, data) VALUES(?,?,?,?,?,?)"
        " ON CONFLICT(key) DO NOTHING RETURNING id",
        (key, source, citizen_id, to_db(min(received_at or now, now)), text.strip()[:TEXT_MAX],
         json.dumps(data or {}, ensure_ascii=False)))
    return int(result.rows[0][0]) if result.rows else None


async def ping_due(tx: Tx, now: datetime) -> bool:
    """Whether the working group should be told of new requests now: no ping waiting in the
    outbox, and none sent in the last ``PING_QUIET``."""
    row = await tx.one(
        "SELECT 1 FROM outbox WHERE kind = 'text' AND payload = ? AND failed_at IS NULL"
        " AND (sent_at IS NULL OR sent_at > ?) LIMIT 1",
        (json.dumps(PING_PAYLOAD), to_db(now - PING_QUIET)))
    return row is None


class RequestStore:
    """Reading requests (the queue, a citizen's own)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, request_id: int) -> IncomingRequest | None:
        row = await self.db.one("SELECT * FROM requests WHERE id = ?", (request_id,))
        return incoming(row) if row else None

    async def pending(self, limit: int = 50, offset: int = 0) -> list[IncomingRequest]:
        rows = await self.db.all(
            "SELECT * FROM requests WHERE status = 'pending' ORDER BY received_at, id LIMIT ? OFFSET ?",
            (limit, offset))
        return [incoming(r) for r in rows]

    async def count_pending(self) -> int:
        row = await self.db.one("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
        return int(row[0]) if row else 0

    async def of_citizen(self, citizen_id: int) -> list[IncomingRequest]:
        rows = await self.db.all(
            "SELECT * FROM requests WHERE citizen_id = ? ORDER BY received_at DESC, id DESC",
            (citizen_id,))
        return [incoming(r) for r in rows]

    async def open_count(self, citizen_id: int) -> int:
        """A citizen's requests still open: waiting in the queue, or made into a case that is
        not closed (the per-citizen limit counts these)."""
        row = await self.db.one(
            "SELECT COUNT(*) FROM requests r LEFT JOIN cases c ON c.id = r.case_id"
            " WHERE r.citizen_id = ? AND (r.status = 'pending' OR (r.status = 'case'"
            " AND c.status NOT IN ('closed', 'merged')))", (citizen_id,))
        return int(row[0]) if row else 0

    async def since(self, citizen_id: int, after: datetime) -> int:
        """How many requests the citizen sent after ``after`` (the per-citizen rate limit)."""
        row = await self.db.one("SELECT COUNT(*) FROM requests WHERE citizen_id = ? AND received_at > ?",
                                (citizen_id, to_db(after)))
        return int(row[0]) if row else 0

    async def counts(self, start: datetime | None = None, end: datetime | None = None) -> dict[str, int]:
        """Requests received from ``start`` to before ``end``, by status: how many became cases,
        were marked abusive, were withdrawn … (every status present, 0 when none)."""
        where, params = [], []
        if start is not None:
            where.append("received_at >= ?")
            params.append(to_db(start))
        if end is not None:
            where.append("received_at < ?")
            params.append(to_db(end))
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = await self.db.all(f"SELECT status, COUNT(*) FROM requests{clause} GROUP BY status", params)
        out = dict.fromkeys(STATUSES, 0)
        out.update({str(r[0]): int(r[1]) for r in rows})
        return out


# Queues the "new requests are waiting" ping to the working group in the given transaction,
# marked with ``PING_PAYLOAD`` (``CaseService.tell_requests_waiting``).
Tell = Callable[[Tx, datetime], Awaitable[None]]


class RequestService(RequestStore):
    """Receiving requests: stored once, and the working group told (one ping for a burst)."""

    def __init__(self, db: Database, tell: Tell) -> None:
        super().__init__(db)
        self.tell = tell

    async def receive(
        self, tx: Tx, key: str, source: str, citizen_id: int | None, text: str, now: datetime,
        data: dict[str, Any] | None = None, *, received_at: datetime | None = None,
    ) -> int | None:
        """Store the request in the caller's transaction and, unless a ping is waiting or went
        out lately, queue one to the working group's chat. None: a copy, nothing done."""
        request_id = await store(tx, key, source, citizen_id, text, now, data, received_at=received_at)
        if request_id is not None and await ping_due(tx, now):
            await self.tell(tx, now)
        return request_id

    @staticmethod
    async def add_to_pending(
        tx: Tx, citizen_id: int, source: str, text: str, attachments: list[dict[str, Any]],
    ) -> int | None:
        """A citizen's further message while their last request from the same source still
        waits in the queue (people write in several short messages on Messenger): its words
        and files join that request instead of making another one. The request's id, or None
        when none of theirs is waiting (the message is a new request)."""
        row = await tx.one(
            "SELECT id, text, data FROM requests WHERE citizen_id = ? AND source = ?"
            " AND status = 'pending' ORDER BY id DESC LIMIT 1", (citizen_id, source))
        if row is None:
            return None
        data = json.loads(row["data"])
        if attachments:
            data["attachments"] = [*data.get("attachments", []), *attachments]
        joined = "\n".join(part for part in (row["text"], text.strip()) if part)[:TEXT_MAX]
        tx.add("UPDATE requests SET text = ?, data = ? WHERE id = ?",
               (joined, json.dumps(data, ensure_ascii=False), row["id"]))
        return int(row["id"])


# --- the working group's decisions (/inbox) ---------------------------------------------------
#
# Each request is decided once: made into a case (in ``CaseService.create``'s own transaction,
# ``take_for_case``), not a request, a duplicate of a case, or abusive with a reason. Rights
# first (the working group or an admin), then the request still pending: a second press, a
# stale button or a forged one changes nothing. The decision is kept in the request's row (who,
# when, the reason) and in the audit chain (bot/audit.py: a record of kind ``request``, ids
# only: no citizen's words go into the chain).

REASON_MIN = 3  # characters of the reason a request is marked abusive for
AUDIT_KIND = "request"
MESSENGER = "messenger"


class RequestNotFound(NotFound):
    def __init__(self, request_id: int) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def user_message(self) -> str:
        return _("There is no request #{r}.").format(r=self.request_id)


class RequestDecided(DomainError):
    """The request was decided before (by someone else, or by a second press)."""

    def __init__(self, request: IncomingRequest) -> None:
        super().__init__(request.id, request.status)
        self.request = request

    def user_message(self) -> str:
        r, n = self.request.id, self.request.case_id
        return {
            "case": _("Request #{r} was already made into case #{n}."),
            "duplicate": _("Request #{r} was already joined to case #{n} as a duplicate."),
            "not_request": _("Request #{r} was already marked as not a request."),
            "abusive": _("Request #{r} was already marked as abusive."),
            "withdrawn": _("Request #{r} was withdrawn by the citizen."),
        }.get(self.request.status, _("Request #{r} was already decided.")).format(r=r, n=n)


def _audit(tx: Tx, request_id: int, decision: str, case_id: int | None, by: int, now: datetime) -> None:
    """The decision in the audit chain, in the decision's transaction (ids only)."""
    data = {"request": request_id, "decision": decision, "case": case_id, "by": by}
    at = to_db(now)
    tx.call(lambda c: audit.append_record(c, at, AUDIT_KIND, data))


async def _decide(
    tx: Tx, request_id: int, status: str, by: int, now: datetime, *,
    case_id: int | None = None, reason: str = "",
) -> IncomingRequest:
    """Mark a pending request decided in ``tx``; ``RequestDecided`` (or ``RequestNotFound``)
    when it is not pending any more, and the caller's transaction rolls back."""
    row = await tx.one(
        "UPDATE requests SET status = ?, case_id = ?, decided_by = ?, decided_at = ?, reason = ?"
        " WHERE id = ? AND status = 'pending' RETURNING *",
        (status, case_id, by, to_db(now), reason, request_id))
    if row is None:
        current = await tx.one("SELECT * FROM requests WHERE id = ?", (request_id,))
        if current is None:
            raise RequestNotFound(request_id)
        raise RequestDecided(incoming(current))
    _audit(tx, request_id, status, case_id, by, now)
    return incoming(row)


async def take_for_case(tx: Tx, draft: Draft, case_id: int, actor: Actor, now: datetime) -> None:
    """The request a new case is made of becomes status ``case`` in the case's own transaction
    (``CaseService.create``): a request is made into one case only; a second Create, or a
    request decided meanwhile, raises and the case is not created."""
    assert draft.request_id is not None
    request = await _decide(tx, draft.request_id, "case", actor.tg_id, now, case_id=case_id)
    if request.citizen_id != draft.citizen_id:  # a draft from another request's citizen: forged
        raise Invalid(_("This case is not the citizen's of request #{r}.").format(r=request.id))


@dataclass(frozen=True)
class CitizenRecord:
    """What the queue shows of a request's citizen besides the request: plain counts, no
    judgement (the working group decides each request on its own)."""

    earlier_requests: int  # their requests received before this one
    cases: int             # cases made of their requests, or linked to them


class RequestDecisions:
    """The working group's decisions on incoming requests (``/inbox``)."""

    def __init__(self, db: Database, cases: CaseService, citizens: CitizenStore) -> None:
        self.db = db
        self.cases = cases
        self.citizens = citizens
        self.store = RequestStore(db)

    async def _rights(self, actor: Actor, what: str, now: datetime) -> None:
        """The working group and admins only; a refusal is recorded."""
        if not await self.cases.is_staff(actor):
            await self.cases.people.log_refusal(actor.tg_id, what, None, actor.chat_id, now)
            raise Forbidden()

    async def may_see(self, actor: Actor, now: datetime) -> None:
        """Forbidden unless the actor may see the queue (it holds citizens' words and names)."""
        await self._rights(actor, "inbox", now)

    async def check(self, actor: Actor, request_id: int, now: datetime) -> IncomingRequest:
        """The request, if the actor may decide it and it is still pending (before a question
        is asked: which case it duplicates, why it is abusive); changes nothing."""
        await self._rights(actor, "decide_request", now)
        request = await self.store.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        if request.status != "pending":
            raise RequestDecided(request)
        return request

    async def position(self, request: IncomingRequest) -> int:
        """How many pending requests came before this one (its page in the queue)."""
        row = await self.db.one(
            "SELECT COUNT(*) FROM requests WHERE status = 'pending' AND (received_at < ?"
            " OR (received_at = ? AND id < ?))",
            (to_db(request.received_at), to_db(request.received_at), request.id))
        return int(row[0]) if row else 0

    async def record_of(self, request: IncomingRequest) -> CitizenRecord | None:
        """The citizen's earlier requests and their cases (None: no citizen known)."""
        if request.citizen_id is None:
            return None
        rows = await self.db.batch(
            ("SELECT COUNT(*) FROM requests WHERE citizen_id = ? AND id != ? AND (received_at < ?"
             " OR (received_at = ? AND id < ?))",
             (request.citizen_id, request.id, to_db(request.received_at),
              to_db(request.received_at), request.id)),
            ("SELECT COUNT(*) FROM cases WHERE citizen_id = ?", (request.citizen_id,)))
        return CitizenRecord(int(rows[0][0][0]), int(rows[1][0][0]))

    async def draft(self, actor: Actor, request_id: int, now: datetime) -> Draft:
        """A new case's draft filled from the request, as a forwarded message fills one: the
        text, when it was received, its source, the citizen's name and the phone they shared,
        the place and category they chose, their files (Telegram's). The dispatcher completes
        what is missing and presses Create (``CaseService.create`` links the request then)."""
        request = await self.check(actor, request_id, now)
        who = await self.citizens.get(request.citizen_id) if request.citizen_id else None
        data = request.data
        text = request.text.strip()
        summary = str(data.get("summary") or "").strip()
        if not summary and text:
            first = text.splitlines()[0].strip()
            summary = first if len(first) <= SUMMARY_MAX else first[:SUMMARY_MAX - 1] + "…"
        description = str(data.get("details") or "").strip() or text
        if summary and description.strip() == summary:
            description = ""  # one line: the summary says it all
        draft = Draft(
            source=request.source, received_at=request.received_at,
            summary=summary if len(summary) >= 3 else "", description=description[:3000],
            citizen_name=(who.name if who and not who.erased_at else ""),
            citizen_contact=(who.contact if who and not who.erased_at else ""),
            attachments=_files(data), citizen_id=request.citizen_id, request_id=request.id,
        )
        category = _id(data.get("category_id"))
        if category is not None and await self.cases.units.category(category) is not None:
            draft.category_id = category
        place = _id(data.get("place_unit_id"))
        unit = await self.cases.units.by_id(place) if place is not None else None
        if unit is not None and unit.kind != "external":
            draft.place_unit_id = unit.id
        return draft

    async def _decision(
        self, actor: Actor, request_id: int, status: str, now: datetime, *,
        case_id: int | None = None, reason: str = "", tell: Callable[[Tx], Awaitable[None]] | None = None,
    ) -> IncomingRequest:
        try:
            async with self.db.transaction() as tx:
                origin.record(tx, now)  # an update handled twice decides nothing twice
                request = await _decide(tx, request_id, status, actor.tg_id, now,
                                        case_id=case_id, reason=reason)
                if tell is not None:
                    await tell(tx)
        except IntegrityError as exc:
            raise origin.translate(exc) from None
        self.cases.on_commit()
        return request

    async def not_a_request(self, actor: Actor, request_id: int, now: datetime) -> IncomingRequest:
        """Not a request (a greeting, thanks, an advertisement): recorded; the citizen is told
        nothing (the status shows in their own list of requests)."""
        await self.check(actor, request_id, now)
        return await self._decision(actor, request_id, "not_request", now)

    async def abusive(self, actor: Actor, request_id: int, reason: str, now: datetime) -> IncomingRequest:
        """Abusive, with the reason (at least ``REASON_MIN`` characters), who and when; counted
        in the figures. Nobody is blocked: the citizen's next request comes to the queue as any."""
        await self.check(actor, request_id, now)
        reason = " ".join(reason.split())
        if len(reason) < REASON_MIN:
            raise Invalid(_("A reason is needed (at least {n} characters).").format(n=REASON_MIN))
        return await self._decision(actor, request_id, "abusive", now, reason=reason[:500])

    async def duplicate(self, actor: Actor, request_id: int, case_id: int, now: datetime) -> IncomingRequest:
        """A duplicate of a case still being handled: the request links to it, and the citizen
        is told plainly that their message was joined to that case. The case itself does not
        change (its citizen stays who they are)."""
        request = await self.check(actor, request_id, now)
        case = await self.cases.get(case_id)  # CaseNotFound
        if case.status not in UNFINISHED_STATUSES:
            raise Invalid(_("Case #{n} is finished: make a new case of the request, or name a case "
                            "still being handled.").format(n=case_id))
        who = await self.citizens.get(request.citizen_id) if request.citizen_id else None

        async def tell(tx: Tx) -> None:
            if who is None:
                return
            with use_locale(who.language or self.cases.settings.default_language):
                text = (_("Thank you. Your message was added to your case #{n}, which is being "
                          "handled.") if case.citizen_id == who.id else
                        _("Thank you. Your message is about a problem already reported: it was "
                          "joined to case #{n}, which is being handled.")).format(n=case_id)
            comment = request.data.get("comment_id") if request.source == "facebook_comment" else None
            queue_to_citizen(tx, who, text, now, case_id=case_id,
                             comment_id=str(comment) if comment else None)

        return await self._decision(actor, request_id, "duplicate", now, case_id=case_id, tell=tell)


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _files(data: dict[str, Any]) -> list[AttachmentIn]:
    """The request's Telegram files (``files``: [{kind, file_id}]); anything else is left out."""
    out: list[AttachmentIn] = []
    for f in data.get("files") or []:
        if isinstance(f, dict) and f.get("kind") in ("photo", "document") and isinstance(
                f.get("file_id"), str) and f["file_id"]:
            name = f.get("file_name")
            out.append(AttachmentIn(f["kind"], f["file_id"], name if isinstance(name, str) else None))
    return out[:10]
