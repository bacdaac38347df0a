"""The citizen's side of their case, whatever the channel (Telegram, Messenger): answer the
unit's question, say whether the problem is solved (Yes / No, because…), withdraw, ask where a
case stands. The fronts (bot/handlers/citizen_buttons.py, the Messenger webhook) parse what the
citizen sent and call this; nothing here knows a channel.

Every change goes through ``CaseService.apply`` as ``citizen_actor(citizen_id)``: one transaction
with its event, the citizen's news (bot/domain/citizen_news.py) and the unit's notices; a change
asked for twice (a re-delivered update or webhook) is ``AlreadyDone`` (origin.py), raised to the
front. Choices carry ids only (``cz:y:<case>:<version>`` Yes, ``cz:n:<case>:<version>`` No,
because…, ``cz:a:<case>`` Answer, ``cz:w:<case>`` Withdraw, ``cz:s:<case>`` Status) and are
checked again on every press: the case must be the citizen's own (rights first; another's case
reads as unknown), what it waited for still open, the version current.

The methods that act return None when it is done (what follows reaches the citizen through the
outbox, with the change), or a ``Reply`` to give them at once when nothing was changed (a late
"Yes" after the working group verified by phone, a stale button, a case that is not theirs).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from bot.config import Settings
from bot.db import Database, IntegrityError, Tx, from_db, to_db
from bot.domain import citizen_news, erasure, origin
from bot.domain.cases import CaseService
from bot.domain.citizens import Choices, Citizen, CitizenStore, queue_to_citizen
from bot.domain.errors import CaseNotFound, Forbidden, InvalidTransition, StaleCase
from bot.domain.model import AttachmentIn, CaseView, Change, citizen_actor, clean, cut_text
from bot.domain.requests import RequestService
from bot.domain.rules import REQUIRED_TEXT, Action, Status
from bot.i18n import _, use_locale
from bot.inputs import parse_case_number, parse_number

CHOICE_CODES = {"y": "yes", "n": "no", "a": "answer", "w": "withdraw", "s": "status"}
# "#42 the answer": the case first, then the words (an answer meant for one of several cases).
_NUMBERED = re.compile(r"#\s*([0-9០-៩]{1,9})[\s:,.\-]+(.+)", re.DOTALL)
MY_REQUESTS_MAX = 20


@dataclass(frozen=True)
class Ask:
    """What a case waits for from its citizen: the unit's ``question``, their word on the
    resolution (``confirm``), or the reason for their "No" (``why_not``)."""

    case_id: int
    kind: str
    version: int
    asked_at: datetime


@dataclass(frozen=True)
class Reply:
    """What to answer the citizen right away: plain text, already in their language."""

    text: str
    choices: Choices | None = None


class Route(StrEnum):
    ANSWERED = "answered"  # the words answered the unit's question
    DISPUTED = "disputed"  # the words were the reason for their "No": the case is reopened
    STATUS = "status"      # a case number alone: its status is in ``reply``
    NEW = "new"            # none of these: a new request (Messenger), or offer one (Telegram)


@dataclass(frozen=True)
class Routed:
    """Where a citizen's free text went; ``reply``: what to tell them at once, if anything."""

    route: Route
    case_id: int | None = None
    reply: Reply | None = None

    NEW: ClassVar[Routed]


Routed.NEW = Routed(Route.NEW)


@dataclass(frozen=True)
class Choice:
    """A parsed ``cz:`` choice: ``code`` in ``CHOICE_CODES``, the case, the version if any."""

    code: str
    case_id: int
    version: int | None = None


def parse_choice(data: str) -> Choice | None:
    """``cz:<code>:<case>[:<version>]`` → a Choice, or None when it is no such thing (forged)."""
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != "cz" or parts[1] not in CHOICE_CODES:
        return None
    needs_version = parts[1] in ("y", "n")
    if needs_version != (len(parts) == 4):
        return None
    case_id = parse_number(parts[2], minimum=1, maximum=2**31 - 1, khmer=False)
    version = parse_number(parts[3], minimum=0, maximum=2**31 - 1, khmer=False) if needs_version else None
    if case_id is None or (needs_version and version is None):
        return None
    return Choice(parts[1], case_id, version)


@dataclass(frozen=True)
class MyRequest:
    """One of the citizen's requests (or a case the working group registered for them)."""

    request_id: int | None
    case_id: int | None
    received_at: datetime
    text: str    # their own words, cut short
    state: str   # where it stands, in their language
    open: bool   # still being handled (they may withdraw it)


class _Say(Exception):
    """Nothing is done: tell the citizen this."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


class Conversation:
    def __init__(self, db: Database, cases: CaseService, citizens: CitizenStore,
                 requests: RequestService, settings: Settings) -> None:
        self.db = db
        self.cases = cases
        self.citizens = citizens
        self.requests = requests
        self.settings = settings

    # --- reads ----------------------------------------------------------------------------

    async def waiting(self, citizen_id: int) -> list[Ask]:
        """What the citizen's cases wait for from them, most recently asked first (asks a later
        change voided are not listed)."""
        rows = await self.db.all(
            "SELECT a.case_id, a.kind, a.version, a.asked_at FROM citizen_asks a"
            " JOIN cases c ON c.id = a.case_id"
            " WHERE a.citizen_id = ? AND c.citizen_id = a.citizen_id AND c.version = a.version"
            " ORDER BY a.asked_at DESC, a.case_id DESC", (citizen_id,))
        return [Ask(int(r[0]), str(r[1]), int(r[2]), from_db(r[3]) or datetime.min) for r in rows]

    async def status(self, citizen_id: int, case_id: int) -> Reply:
        """Where their case stands; a case that is not theirs reads as unknown."""
        who = await self._citizen(citizen_id)
        with use_locale(self._lang(who)):
            try:
                case = await self._own(who, case_id)
            except _Say as say:
                return say.reply
            text = citizen_news.state_line(case)
            choices: Choices | None = None
            ask = next((a for a in await self.waiting(citizen_id) if a.case_id == case_id), None)
            if ask is not None and ask.kind == "confirm":
                text += "\n" + _("Was your problem solved?")
                choices = citizen_news.yes_no(case_id, case.version)
            elif ask is not None and ask.kind == "question":
                text += "\n" + _("A question waits for your answer.")
                choices = citizen_news.answer_choice(case_id)
            elif ask is not None and ask.kind == "why_not":
                text += "\n" + _("Please write what is still wrong, in one message.")
            return Reply(text, choices)

    async def my_requests(self, citizen_id: int) -> list[MyRequest]:
        """Their requests and cases, newest first, each with where it stands."""
        who = await self._citizen(citizen_id)
        out: list[MyRequest] = []
        with use_locale(self._lang(who)):
            seen: set[int] = set()
            for r in (await self.requests.of_citizen(citizen_id))[:MY_REQUESTS_MAX]:
                case = None
                if r.status == "case" and r.case_id is not None:
                    case = await self.cases.get(r.case_id)
                    if case.citizen_id != citizen_id:
                        case = None
                if case is not None:
                    seen.add(case.id)
                    out.append(MyRequest(r.id, case.id, r.received_at, cut_text(r.text or case.summary, 80),
                                         citizen_news.state_line(case), case.status is not Status.CLOSED
                                         and case.status is not Status.MERGED))
                else:
                    out.append(MyRequest(r.id, None, r.received_at, cut_text(r.text, 80),
                                         request_state(r.status, r.case_id), r.status == "pending"))
            rows = await self.db.all("SELECT id FROM cases WHERE citizen_id = ? ORDER BY id DESC LIMIT ?",
                                     (citizen_id, MY_REQUESTS_MAX))
            for row in rows:
                if int(row[0]) in seen:
                    continue
                case = await self.cases.get(int(row[0]))
                out.append(MyRequest(None, case.id, case.received_at, cut_text(case.summary, 80),
                                     citizen_news.state_line(case),
                                     case.status not in (Status.CLOSED, Status.MERGED)))
        out.sort(key=lambda m: m.received_at, reverse=True)
        return out[:MY_REQUESTS_MAX]

    # --- what the citizen does ------------------------------------------------------------

    async def answer(self, citizen_id: int, case_id: int, text: str, now: datetime,
                     attachments: Sequence[AttachmentIn] = ()) -> Reply | None:
        """Their answer to the unit's question: PROVIDE_INFO, as when the working group answers."""
        who = await self._citizen(citizen_id)
        try:
            with use_locale(self._lang(who)):
                case = await self._own(who, case_id)
                ask = await self._ask(who, case, ("question",))
                if not text.strip():
                    raise _Say(Reply(_("Please write your answer in words.")))
            await self.cases.apply(case_id, Action.PROVIDE_INFO, citizen_actor(who.id),
                                   Change(text=clean(text), attachments=tuple(attachments)), now,
                                   expected_version=ask.version)
        except _Say as say:
            return say.reply
        except (StaleCase, InvalidTransition):
            return await self._moved_on(who, case_id)
        return None

    async def confirm(self, citizen_id: int, case_id: int, now: datetime, *,
                      version: int | None = None) -> Reply | None:
        """Yes, the problem is solved: VERIFY confirmed, by the citizen themself."""
        who = await self._citizen(citizen_id)
        try:
            with use_locale(self._lang(who)):
                case = await self._resolved(who, case_id, version)
            await self.cases.apply(case_id, Action.VERIFY, citizen_actor(who.id),
                                   Change(outcome="confirmed"), now, expected_version=case.version)
        except _Say as say:
            return say.reply
        except (StaleCase, InvalidTransition):
            return await self._moved_on(who, case_id)
        return None

    async def deny(self, citizen_id: int, case_id: int, now: datetime, *,
                   version: int | None = None) -> Reply | None:
        """No: they are asked what is still wrong (their next words reopen the case)."""
        who = await self._citizen(citizen_id)
        try:
            with use_locale(self._lang(who)):
                case = await self._resolved(who, case_id, version)
                text = _("What is still wrong with case #{n}? Please write it in one message.").format(
                    n=case_id)
            async with self._change(now) as tx:
                row = await tx.one("SELECT version, status FROM cases WHERE id = ?", (case_id,))
                if row is None or int(row[0]) != case.version or row[1] != Status.RESOLVED:
                    raise StaleCase(case_id)
                citizen_news.record_ask(tx, case_id, who.id, "why_not", case.version, now)
                queue_to_citizen(tx, who, text, now, case_id=case_id)
        except _Say as say:
            return say.reply
        except StaleCase:
            return await self._moved_on(who, case_id)
        self.cases.on_commit()
        return None

    async def dispute(self, citizen_id: int, case_id: int, reason: str, now: datetime) -> Reply | None:
        """No, because ``reason``: REOPEN disputed, back to the same unit with their reason."""
        who = await self._citizen(citizen_id)
        try:
            with use_locale(self._lang(who)):
                case = await self._resolved(who, case_id, None)
                if len(reason.strip()) < REQUIRED_TEXT[Action.REOPEN]:
                    raise _Say(Reply(_("Please say in a few words what is still wrong with case "
                                       "#{n}.").format(n=case_id)))
            await self.cases.apply(case_id, Action.REOPEN, citizen_actor(who.id),
                                   Change(text=clean(reason), outcome="disputed"), now,
                                   expected_version=case.version)
        except _Say as say:
            return say.reply
        except (StaleCase, InvalidTransition):
            return await self._moved_on(who, case_id)
        return None

    async def withdraw(self, citizen_id: int, *, case_id: int | None = None,
                       request_id: int | None = None, now: datetime) -> Reply | None:
        """They no longer want it: a case is closed as withdrawn; a request still waiting in
        the queue is marked withdrawn (both recorded and counted)."""
        who = await self._citizen(citizen_id)
        try:
            with use_locale(self._lang(who)):
                if request_id is not None:
                    request = await self.requests.get(request_id)
                    if request is None or request.citizen_id != who.id:
                        raise _Say(Reply(_("I find no request of yours with that number.")))
                    if request.status == "case" and request.case_id is not None:
                        case_id = request.case_id
                    elif request.status != "pending":
                        raise _Say(Reply(request_state(request.status, request.case_id)))
                    else:
                        await self._withdraw_request(who, request_id, now)
                        return None
                if case_id is None:
                    raise _Say(Reply(_("I find no request of yours with that number.")))
                case = await self._own(who, case_id)
                if case.status in (Status.CLOSED, Status.MERGED):
                    raise _Say(Reply(citizen_news.state_line(case)))
            await self.cases.apply(case_id, Action.WITHDRAW, citizen_actor(who.id), Change(), now,
                                   expected_version=case.version)
        except _Say as say:
            return say.reply
        except (StaleCase, InvalidTransition):
            assert case_id is not None
            return await self._moved_on(who, case_id)
        return None

    async def _withdraw_request(self, who: Citizen, request_id: int, now: datetime) -> None:
        text = _("Your request is withdrawn, as you asked. Thank you for telling us.")
        async with self._change(now) as tx:
            result = await tx.execute(
                "UPDATE requests SET status = 'withdrawn', decided_at = ? WHERE id = ?"
                " AND citizen_id = ? AND status = 'pending' RETURNING id", (to_db(now), request_id, who.id))
            if not result.rows:
                raise _Say(Reply(_("That request is no longer waiting: send its case number to see "
                                   "where it stands.")))
            queue_to_citizen(tx, who, text, now)
        self.cases.on_commit()

    async def erase(self, citizen_id: int, now: datetime) -> Reply:
        """Their "erase my data": every case's personal data, their requests' texts and their
        own record (bot/domain/erasure.py). The answer is for the front to give at once: nothing
        can be queued to them afterwards."""
        who = await self._citizen(citizen_id)
        with use_locale(self._lang(who)):
            text = _("Your personal data is erased: your name, your contact and what you wrote to "
                     "us. The case numbers stay in the ministry's figures, without anything about "
                     "you.")
        with use_locale(self.settings.default_language):
            reason = _("The citizen's own request.")
        await erasure.erase_citizen(self.cases, who.id, citizen_actor(who.id), reason, now)
        return Reply(text)

    async def press(self, citizen_id: int, data: str, now: datetime) -> Reply | None:
        """A choice pressed (a Telegram button, a Messenger quick reply): ``cz:…`` data, checked
        again here. None: done (what follows comes through the outbox)."""
        choice = parse_choice(data)
        if choice is None:
            who = await self._citizen(citizen_id)
            with use_locale(self._lang(who)):
                return Reply(_("That button is no longer valid."))
        n = choice.case_id
        if choice.code == "y":
            return await self.confirm(citizen_id, n, now, version=choice.version)
        if choice.code == "n":
            return await self.deny(citizen_id, n, now, version=choice.version)
        if choice.code == "w":
            return await self.withdraw(citizen_id, case_id=n, now=now)
        if choice.code == "s":
            return await self.status(citizen_id, n)
        return await self._prompt_answer(citizen_id, n)

    async def _prompt_answer(self, citizen_id: int, case_id: int) -> Reply:
        """"Answer": how to answer (the next message answers the most recent question; for an
        earlier one, the case number first)."""
        who = await self._citizen(citizen_id)
        with use_locale(self._lang(who)):
            try:
                case = await self._own(who, case_id)
                await self._ask(who, case, ("question",))
            except _Say as say:
                return say.reply
            latest = next((a for a in await self.waiting(who.id) if a.kind in ("question", "why_not")), None)
            if latest is not None and latest.case_id == case_id:
                return Reply(_("Write your answer about case #{n} in one message.").format(n=case_id))
            return Reply(_("Write your answer in one message, starting with #{n}.").format(n=case_id))

    async def route_text(self, citizen_id: int, text: str, now: datetime,
                         attachments: Sequence[AttachmentIn] = ()) -> Routed:
        """Free text from a citizen: the reason of a pending "No" reopens the case; an answer to
        a pending question goes to the unit ("#42 …" picks the case); a case number alone
        shows its status; anything else is ``Routed.NEW``."""
        words = text.strip()
        open_asks = [a for a in await self.waiting(citizen_id) if a.kind in ("question", "why_not")]
        numbered = _NUMBERED.fullmatch(words)
        if numbered is not None:
            n = parse_case_number(numbered.group(1))
            ask = next((a for a in open_asks if a.case_id == n), None)
            if ask is not None:
                return await self._to_ask(citizen_id, ask, numbered.group(2).strip(), now, attachments)
        if open_asks and (words or attachments):
            return await self._to_ask(citizen_id, open_asks[0], words, now, attachments)
        n = parse_case_number(words)
        if n is not None:
            return Routed(Route.STATUS, n, await self.status(citizen_id, n))
        return Routed.NEW

    async def _to_ask(self, citizen_id: int, ask: Ask, words: str, now: datetime,
                      attachments: Sequence[AttachmentIn]) -> Routed:
        if ask.kind == "why_not":
            reply = await self.dispute(citizen_id, ask.case_id, words, now)
            return Routed(Route.DISPUTED, ask.case_id, reply)
        reply = await self.answer(citizen_id, ask.case_id, words, now, attachments)
        return Routed(Route.ANSWERED, ask.case_id, reply)

    # --- checks ---------------------------------------------------------------------------

    async def _citizen(self, citizen_id: int) -> Citizen:
        who = await self.citizens.get(citizen_id)
        if who is None:
            raise CaseNotFound(0)  # no such citizen: a front's mistake, not a citizen's
        return who

    def _lang(self, who: Citizen) -> str:
        return citizen_news.language(who, self.settings.default_language)

    async def _own(self, who: Citizen, case_id: int) -> CaseView:
        """The case, if it is the citizen's own (rights first: another's reads as unknown, and
        the attempt is recorded). Call under the citizen's locale."""
        try:
            case = await self.cases.get(case_id)
        except CaseNotFound:
            case = None
        if case is None or case.citizen_id != who.id or who.erased_at is not None:
            if case is not None and case.citizen_id != who.id:
                with contextlib.suppress(Forbidden):  # another's case: recorded as a refusal
                    await self.cases.check(case_id, Action.VERIFY, citizen_actor(who.id))
            raise _Say(Reply(_("I find no request of yours with the number #{n}.").format(n=case_id)))
        return case

    async def _ask(self, who: Citizen, case: CaseView, kinds: tuple[str, ...]) -> Ask:
        ask = next((a for a in await self.waiting(who.id) if a.case_id == case.id), None)
        if ask is None or ask.kind not in kinds:
            raise _Say(Reply(_("Nothing about case #{n} waits for your answer now.").format(n=case.id)
                             + "\n" + citizen_news.state_line(case)))
        return ask

    async def _resolved(self, who: Citizen, case_id: int, version: int | None) -> CaseView:
        """Their resolved case, at the version the button named (if any): what Yes and No act
        on. Once closed, or changed meanwhile, they are told politely where it stands."""
        case = await self._own(who, case_id)
        if case.status is not Status.RESOLVED or (version is not None and version != case.version):
            raise _Say(self._moved_on_reply(case))
        return case

    async def _moved_on(self, who: Citizen, case_id: int) -> Reply:
        with use_locale(self._lang(who)):
            try:
                return self._moved_on_reply(await self._own(who, case_id))
            except _Say as say:
                return say.reply

    @staticmethod
    def _moved_on_reply(case: CaseView) -> Reply:
        if case.status in (Status.CLOSED, Status.MERGED):
            return Reply(_("Thank you. This was already settled.") + "\n" + citizen_news.state_line(case))
        return Reply(_("Thank you. The case has moved on since.") + "\n" + citizen_news.state_line(case))

    @asynccontextmanager
    async def _change(self, now: datetime) -> AsyncIterator[Tx]:
        """A transaction recording which update asked for it (twice: ``AlreadyDone``)."""
        try:
            async with self.db.transaction() as tx:
                origin.record(tx, now)
                yield tx
        except IntegrityError as exc:
            raise origin.translate(exc) from None


def request_state(status: str, case_id: int | None) -> str:
    """Where a request that is no case of theirs stands, in plain words."""
    if status == "pending":
        return _("Received; waiting for the working group to register it.")
    if status == "withdrawn":
        return _("Withdrawn, as you asked.")
    if status == "duplicate" and case_id is not None:
        return _("The same problem as case #{n}, already being handled.").format(n=case_id)
    return _("Not registered as a case.")
