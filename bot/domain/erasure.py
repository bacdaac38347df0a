"""Erasing a citizen's personal data from a case: on request (``/erase``, ``casebot erase``) or
when the retention period after closing has passed.

An erasure is a change like any other (``CaseService.apply(case, Action.ERASE, …)``: one
transaction with its event and its notices). It removes the citizen's name and contact, the
description, every attachment (its Telegram file id: the bot can no longer send the file), the
citizens merged into the case (``case_contacts``), the free text of the case's events (kept apart
in ``event_texts``: the events keep their commitments, so the audit chain still verifies) and the
texts of the notices about the case in the outbox (those not sent yet are not sent any more).
The case's own name and contact are cut out of its one-line summary. Counts, dates, units,
categories, statuses and outcomes stay: the statistics do not change. The erasure event records
who, when and why (the reason is its text).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.db import IntegrityError, to_db
from bot.domain import origin
from bot.domain.errors import DomainError, Invalid
from bot.domain.model import SYSTEM, Actor, Change, Step
from bot.domain.rules import Action, Status
from bot.i18n import _, use_locale

if TYPE_CHECKING:
    from bot.domain.cases import CaseService

log = logging.getLogger(__name__)
CUT = "[…]"  # what replaces the citizen's name or contact in a summary
CLOSED = (Status.CLOSED, Status.MERGED)


def scrub(text: str, *secrets: str) -> str:
    """``text`` without any of ``secrets`` (case-insensitively; those under 3 characters are no
    name or number worth hiding, and would cut ordinary words)."""
    for secret in sorted({s.strip() for s in secrets if len(s.strip()) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(secret), CUT, text, flags=re.IGNORECASE)
    return text


async def do_erase(_cases: Any, st: Step) -> None:
    """The effect of Action.ERASE, inside the change's transaction."""
    case, conn, n = st.case, st.conn, st.case.id
    counts = await conn.one(
        "SELECT (SELECT COUNT(*) FROM attachments WHERE case_id = ?),"
        " (SELECT COUNT(*) FROM event_texts t JOIN events e ON e.id = t.event_id"
        "  WHERE e.case_id = ? AND e.action != ?),"
        " (SELECT COUNT(*) FROM case_contacts WHERE case_id = ? AND (name != '' OR contact != ''))",
        (n, n, Action.ERASE, n))
    assert counts is not None
    attachments, texts, contacts = (int(v) for v in counts)
    if case.erased_at is not None and not (attachments or texts or contacts or case.citizen_name
                                           or case.citizen_contact or case.description):
        raise Invalid(_("Case #{n} holds no personal data any more.").format(n=n))
    others = await conn.all("SELECT name, contact FROM case_contacts WHERE case_id = ?", (n,))
    summary = scrub(case.summary, case.citizen_name, case.citizen_contact,
                    *(str(v) for r in others for v in r))
    conn.add("DELETE FROM attachments WHERE case_id = ?", (n,))
    conn.add("UPDATE case_contacts SET name = '', contact = '' WHERE case_id = ?", (n,))
    # The events stay (with their commitments); their texts go, the reasons of erasures excepted.
    conn.add("DELETE FROM event_texts WHERE event_id IN"
             " (SELECT id FROM events WHERE case_id = ? AND action != ?)", (n, Action.ERASE))
    # Notices about the case (a note's text, a summary) are kept no longer; those not yet on
    # their way are not sent any more (the erasure's own notice follows).
    conn.add("UPDATE outbox SET text = '' WHERE case_id = ? AND kind IN ('text', 'messenger')"
             " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)", (n,))
    conn.add("UPDATE outbox SET text = '', failed_at = ?, last_error = 'erased' WHERE case_id = ?"
             " AND kind IN ('text', 'messenger') AND sent_at IS NULL AND failed_at IS NULL"
             " AND sending_at IS NULL", (to_db(st.now), n))
    st.updates.update(citizen_name="", citizen_contact="", description="", summary=summary,
                      erased_at=to_db(st.now))
    st.data["erased"] = {"attachments": attachments, "texts": texts, "contacts": contacts}


async def erase_expired(cases: CaseService, now: datetime) -> list[int]:
    """The retention period (``privacy.erase_closed_after_days``): erase the personal data of
    the cases closed (or merged) longer ago than that, each recorded as an erasure by casebot.
    Returns their numbers."""
    days = cases.settings.erase_closed_after_days
    if days is None:
        return []
    rows = await cases.db.all(
        "SELECT id FROM cases WHERE status IN (?, ?) AND closed_at IS NOT NULL AND closed_at < ?"
        " AND erased_at IS NULL ORDER BY id", (*CLOSED, to_db(now - timedelta(days=days))))
    with use_locale(cases.settings.default_language):
        reason = _("Retention period: closed more than {n} days ago.").format(n=days)
    erased = []
    for row in rows:
        try:
            await cases.apply(int(row[0]), Action.ERASE, SYSTEM, Change(text=reason), now)
        except DomainError as exc:  # changed meanwhile (reopened): the next day's run decides
            log.warning("retention: case %s not erased: %s", row[0], type(exc).__name__)
            continue
        erased.append(int(row[0]))
    if erased:
        log.info("retention: personal data of %d closed case(s) erased", len(erased))
    return erased


async def erase_citizen(cases: CaseService, citizen_id: int, actor: Actor, reason: str,
                        now: datetime) -> list[int]:
    """A citizen's "erase my data" (on their word, or from the command line): in one transaction,
    each of their cases' personal data as above (an erasure each, recorded with ``reason``), the
    texts of their requests, what their cases waited for from them, the texts to them in the
    outbox (those not sent yet are not sent any more), and their own record: name, contact and
    address go, ``erased_at`` says when. Counts, sources, statuses and outcomes stay: the figures
    do not change. Returns the cases erased now (those already without personal data are kept
    as they are)."""
    erased: list[int] = []
    at = to_db(now)
    try:
        async with cases.db.transaction() as tx:
            origin.record(tx, now)
            who = await tx.one("SELECT channel, address FROM citizens WHERE id = ?", (citizen_id,))
            if who is None:
                raise Invalid(_("There is no such citizen."))
            rows = await tx.all("SELECT id FROM cases WHERE citizen_id = ? ORDER BY id", (citizen_id,))
            for row in rows:
                try:
                    async with tx.savepoint():
                        await cases._apply(int(row[0]), Action.ERASE, actor, Change(text=reason), now,
                                           None, tx)
                except Invalid:  # nothing personal left in it
                    continue
                erased.append(int(row[0]))
            tx.add("UPDATE requests SET text = '', data = '{}' WHERE citizen_id = ?", (citizen_id,))
            tx.add("DELETE FROM citizen_asks WHERE citizen_id = ?", (citizen_id,))
            chat = int(who[1]) if who[0] == "telegram" and str(who[1]).isdigit() else None
            mine = "(citizen_id = ? OR (kind = 'text' AND chat_id = ?))"
            tx.add(f"UPDATE outbox SET text = '', payload = '{{}}', chat_id = NULL WHERE {mine}"
                   " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)", (citizen_id, chat))
            tx.add(f"UPDATE outbox SET text = '', payload = '{{}}', chat_id = NULL, failed_at = ?,"
                   f" last_error = 'erased' WHERE {mine} AND sent_at IS NULL AND failed_at IS NULL"
                   " AND sending_at IS NULL", (at, citizen_id, chat))
            tx.add("UPDATE citizens SET name = '', contact = '', address = 'erased:' || id,"
                   " last_inbound_at = NULL, erased_at = ? WHERE id = ?", (at, citizen_id))
    except IntegrityError as exc:
        raise origin.translate(exc) from None
    cases.on_commit()
    if erased:
        log.info("erasure: a citizen's personal data erased with %d case(s)", len(erased))
    return erased
