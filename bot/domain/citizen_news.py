"""What the citizen behind a case is told at its milestones, and where their case stands.

Called from ``CaseService``'s one write path (bot/domain/cases.py), inside the change's
transaction: the news goes to the citizen's channel through the outbox (``queue_to_citizen``)
with the change and its event, or not at all. The milestones: received (with the case number),
with which unit or institution it is (only when that changes), resolved with what was done and
"Was your problem solved?" (Yes / No, because…, recorded in ``citizen_asks``), a question of the
unit passed on by the working group, reopened, closed (confirmed by them or by phone, withdrawn,
joined with another case).

What a citizen reads names a unit or an institution, never an official; it never carries a note
or the working group's words, only what the citizen said and what was done (the resolution).
A case made by the working group without a citizen in the loop (``citizen_id`` NULL) tells no one.
Texts are plain (``queue_to_citizen`` escapes them for Telegram), in the citizen's language.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from babel.dates import format_date

from bot.db import Tx, to_db
from bot.domain.citizens import Choices, Citizen, citizen, queue_to_citizen
from bot.domain.errors import Invalid
from bot.domain.model import CaseView, Step
from bot.domain.rules import KEEPS_VERSION, Action, Role, Status
from bot.i18n import _, current_locale, use_locale

if TYPE_CHECKING:
    from bot.domain.cases import CaseService

ASK_KINDS = ("question", "confirm", "why_not")
QUESTION_MAX = 1000   # characters of the unit's question passed on
DONE_MAX = 1500       # characters of "what was done" told to the citizen
# The changes a citizen may hear of (``_news`` says which, and how).
NEWS = frozenset({Action.ASSIGN, Action.FORWARD, Action.ACKNOWLEDGE, Action.RETURN, Action.DECLINE,
                  Action.RESOLVE, Action.OUTCOME, Action.ASK_CITIZEN, Action.PROVIDE_INFO,
                  Action.REOPEN, Action.VERIFY, Action.WITHDRAW, Action.MERGE})


def yes_no(case_id: int, version: int) -> Choices:
    """Under "Was your problem solved?": the ids only (``cz:`` data, checked on every press)."""
    return [[(_("✅ Yes, solved"), f"cz:y:{case_id}:{version}"),
             (_("❌ No, because…"), f"cz:n:{case_id}:{version}")]]


def answer_choice(case_id: int) -> Choices:
    return [[(_("✍️ Answer"), f"cz:a:{case_id}")]]


def language(who: Citizen, default: str) -> str:
    return who.language or default


async def citizen_in(tx: Tx, citizen_id: int) -> Citizen | None:
    row = await tx.one("SELECT * FROM citizens WHERE id = ?", (citizen_id,))
    return citizen(row) if row else None


def record_ask(tx: Tx, case_id: int, citizen_id: int, kind: str, version: int, now: datetime) -> None:
    """What the case now waits for from its citizen (one thing at a time)."""
    assert kind in ASK_KINDS
    tx.add("INSERT INTO citizen_asks(case_id, citizen_id, kind, asked_at, version) VALUES(?,?,?,?,?)"
           " ON CONFLICT(case_id) DO UPDATE SET citizen_id = excluded.citizen_id, kind = excluded.kind,"
           " asked_at = excluded.asked_at, version = excluded.version",
           (case_id, citizen_id, kind, to_db(now), version))


# --- where a case stands, as the citizen reads it -----------------------------------------------

def holder(case: CaseView) -> str:
    """Who has the case now, by name (a unit or an institution; the working group while it
    waits in the queue). Never a person."""
    if case.unit_name and case.status not in (Status.NEW,):
        return case.unit_name
    return _("the ministry's working group")


def state_line(case: CaseView) -> str:
    """One plain sentence: where the case stands (read under the citizen's locale: the unit's
    name is in their language when ``case`` was read under it)."""
    n, where = case.id, holder(case)
    status = case.status
    if status is Status.NEW:
        return _("Case #{n}: registered; the working group is choosing the unit to handle it.").format(n=n)
    if status in (Status.ASSIGNED, Status.IN_PROGRESS):
        return _("Case #{n}: with {unit}, being handled.").format(n=n, unit=where)
    if status is Status.WAITING_INFO:
        return _("Case #{n}: with {unit}, which needs more information.").format(n=n, unit=where)
    if status in (Status.FORWARDED, Status.ACKNOWLEDGED):
        return _("Case #{n}: with {unit}, the institution in charge of such matters.").format(
            n=n, unit=where)
    if status is Status.RESOLVED:
        return _("Case #{n}: resolved by {unit}; waiting for confirmation that the problem is "
                 "solved.").format(n=n, unit=where)
    if status is Status.MERGED:
        return _("Case #{n}: joined with case #{m}, about the same problem.").format(
            n=n, m=case.merged_into)
    return closed_line(case)


def closed_line(case: CaseView) -> str:
    n = case.id
    if case.outcome == "withdrawn":
        return _("Case #{n}: withdrawn, as you asked.").format(n=n)
    if case.outcome == "confirmed" and case.confirmed_via == "citizen":
        return _("Case #{n}: closed; you confirmed that the problem is solved.").format(n=n)
    if case.outcome == "confirmed":
        return _("Case #{n}: closed; you confirmed by phone that the problem is solved.").format(n=n)
    return _("Case #{n}: closed.").format(n=n)


# --- at creation ----------------------------------------------------------------------------------

async def received(cases: CaseService, tx: Tx, case_id: int, citizen_id: int | None,
                   request_id: int | None, now: datetime) -> None:
    """The case is made of the citizen's request: they get its number (a Facebook comment: as
    the page's one private reply to that comment). The one place this is said."""
    if citizen_id is None:
        return
    who = await citizen_in(tx, citizen_id)
    if who is None:
        return
    comment_id = None
    if request_id is not None:
        row = await tx.one("SELECT key, source FROM requests WHERE id = ?", (request_id,))
        if row is not None and row[1] == "facebook_comment" and str(row[0]).startswith("fb:c:"):
            comment_id = str(row[0])[len("fb:c:"):]
    with use_locale(language(who, cases.settings.default_language)):
        text = _("We received your request. Its case number is #{n}. Send us this number at any "
                 "time to see where your case stands.").format(n=case_id)
    queue_to_citizen(tx, who, text, now, case_id=case_id, comment_id=comment_id)


# --- after each change ----------------------------------------------------------------------------

async def do_ask_citizen(_cases: object, st: Step) -> None:
    """The effect of ASK_CITIZEN: the unit's question (the last one it asked) goes to the
    case's citizen, who can be written to; the event keeps the question as its text."""
    case = st.case
    if case.citizen_id is None:
        raise Invalid(_("Case #{n} has no citizen who can be asked here: call them.").format(n=case.id))
    who = await citizen_in(st.conn, case.citizen_id)
    if who is None or not who.reachable:
        raise Invalid(_("Case #{n} has no citizen who can be asked here: call them.").format(n=case.id))
    asked = await st.conn.one("SELECT 1 FROM citizen_asks WHERE case_id = ? AND kind = 'question'"
                              " AND version = ?", (case.id, case.version))
    if asked is not None:
        raise Invalid(_("The question on #{n} already went to the citizen.").format(n=case.id))
    if not st.text:
        row = await st.conn.one(
            "SELECT t.text FROM events e JOIN event_texts t ON t.event_id = e.id"
            " WHERE e.case_id = ? AND e.action = ? ORDER BY e.id DESC LIMIT 1",
            (case.id, Action.NEED_INFO))
        st.text = str(row[0]).strip() if row and row[0] else ""
    if not st.text:
        raise Invalid(_("Case #{n} has no question to pass on.").format(n=case.id))
    st.text = st.text[:QUESTION_MAX]


async def after_change(cases: CaseService, st: Step) -> None:
    """What the change tells the case's citizen, queued in its transaction. A change of
    version voids whatever the case waited for from them (a new ask may follow)."""
    case = st.case
    if case.citizen_id is None:
        return
    if st.action not in KEEPS_VERSION:
        st.conn.add("DELETE FROM citizen_asks WHERE case_id = ?", (case.id,))
    if st.action not in NEWS:
        return
    who = await citizen_in(st.conn, case.citizen_id)
    if who is None or not who.reachable:
        return
    version = int(st.updates.get("version", case.version))
    with use_locale(language(who, cases.settings.default_language)):
        told = await _news(cases, st, version)
    if told is None:
        return
    text, choices, ask = told
    if queue_to_citizen(st.conn, who, text, st.now, choices=choices, case_id=case.id) and ask:
        record_ask(st.conn, case.id, who.id, ask, version, st.now)


async def _unit_name(cases: CaseService, unit_id: int | None) -> str:
    unit = await cases.units.by_id(unit_id) if unit_id is not None else None
    return unit.name if unit is not None else _("the ministry's working group")


async def _news(cases: CaseService, st: Step, version: int) -> tuple[str, Choices | None, str | None] | None:
    """(text, choices, what is asked of them) for this change, or None: nothing to tell."""
    case, action, n = st.case, st.action, st.case.id
    by_citizen = Role.CITIZEN in st.roles
    if action is Action.ASSIGN:
        if st.new_unit_id == case.unit_id:
            return None  # the same unit (another official): nothing changes for the citizen
        unit = await _unit_name(cases, st.new_unit_id)
        return _("Your request #{n} is now with {unit}, which will handle it.").format(
            n=n, unit=unit), None, None
    if action is Action.FORWARD:
        unit = await _unit_name(cases, st.new_unit_id)
        return _("Your request #{n} is now with {unit}, the institution in charge of such "
                 "matters.").format(n=n, unit=unit), None, None
    if action is Action.ACKNOWLEDGE:
        unit = await _unit_name(cases, case.unit_id)
        return _("{unit} has taken on your request #{n}.").format(n=n, unit=unit), None, None
    if action in (Action.RETURN, Action.DECLINE):
        return _("Your request #{n} is back with the ministry's working group, which is choosing "
                 "the right unit to handle it.").format(n=n), None, None
    if action in (Action.RESOLVE, Action.OUTCOME):
        unit = await _unit_name(cases, case.unit_id)
        done = st.text[:DONE_MAX]
        text = "\n".join([
            _("Your request #{n} is resolved by {unit}.").format(n=n, unit=unit),
            _("What was done: {done}").format(done=done),
            _("Was your problem solved?"),
        ])
        return text, yes_no(n, version), "confirm"
    if action is Action.ASK_CITIZEN:
        unit = await _unit_name(cases, case.unit_id)
        text = "\n".join([
            _("{unit} asks a question about your request #{n}:").format(n=n, unit=unit),
            st.text,
            _("Please answer in one message."),
        ])
        return text, answer_choice(n), "question"
    if action is Action.PROVIDE_INFO and by_citizen:
        unit = await _unit_name(cases, case.unit_id)
        return _("Thank you: your answer about #{n} went to {unit}.").format(n=n, unit=unit), None, None
    if action is Action.REOPEN:
        unit = await _unit_name(cases, case.unit_id if case.unit_id is not None else None)
        if st.data.get("disputed") and by_citizen:
            return _("Case #{n} is open again and back with {unit}, with what you told us.").format(
                n=n, unit=unit), None, None
        return _("Case #{n} is open again: {unit} continues the work.").format(n=n, unit=unit), None, None
    if action is Action.VERIFY:
        outcome = st.data.get("outcome")
        if outcome == "confirmed" and st.data.get("via") == "citizen":
            return _("Thank you. Case #{n} is closed: you confirmed that the problem is solved.").format(
                n=n), None, None
        if outcome == "confirmed":
            return _("Case #{n} is closed: you confirmed by phone that the problem is solved. "
                     "Thank you.").format(n=n), None, None
        return _("Case #{n} is closed. If the problem is not solved, send us a new request.").format(
            n=n), None, None
    if action is Action.WITHDRAW:
        return _("Your request #{n} is withdrawn, as you asked. Thank you for telling us.").format(
            n=n), None, None
    if action is Action.MERGE:
        return _("Your request #{n} concerns the same problem as case #{m}: the two are handled "
                 "together as case #{m}.").format(n=n, m=st.data["into"]), None, None
    return None


def when(value: datetime, tz: tzinfo) -> str:
    """A date as the citizen reads it, in their language."""
    return format_date(value.astimezone(tz), "d MMM y", locale=current_locale())
