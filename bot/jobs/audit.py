"""Once a day, at the digest's time: the retention period, the audit chain checked, its head
published.

Run from the repeating job (bot/jobs/reminders.py) after the digests. ``audit_days`` records each
day's check (its head and how many problems) in the database, so a restart does not check twice
and a day missed while the bot was down is checked when it starts again. The head goes to the log
(``audit head <hash>@<date>``) and, with the digest of everything, to the working group; when the
chain is broken the admins are told at once, each in their language.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot import audit
from bot.db import to_db
from bot.domain import outbox
from bot.domain.erasure import erase_expired
from bot.domain.rules import Role
from bot.i18n import N_, _, label, use_locale

if TYPE_CHECKING:
    from bot.domain.cases import CaseService

log = logging.getLogger(__name__)

KIND_LABELS: dict[str, str] = {
    "edited": N_("a row was edited"),
    "deleted": N_("a row was deleted"),
    "inserted": N_("a row was inserted"),
    "reordered": N_("rows were reordered"),
    "rewritten": N_("the history was rewritten"),
    "missing": N_("the audit chain is missing"),
}


def broken_notice(problems: list[audit.Problem]) -> str:
    """What the admins read when the chain is broken (in the current locale): the first broken
    link, by kind and place, without personal data."""
    first = problems[0]
    where = []
    if first.case_id is not None:
        where.append(_("case #{n}").format(n=first.case_id))
    if first.event_id is not None:
        where.append(_("event {id}").format(id=first.event_id))
    if first.position is not None:
        where.append(_("position {n}").format(n=first.position))
    place = ", ".join(where) or first.table
    return "\n".join([
        "🚨 " + _("<b>The history has been tampered with.</b> The daily check of the audit chain "
                 "found {n} problem(s).").format(n=len(problems)),
        _("First broken link: {kind} ({place}).").format(
            kind=label(KIND_LABELS, first.kind, "edited"), place=place),
        _("On the server, <code>casebot verify-audit</code> names every one; compare with the "
          "heads published in the working group's digests."),
    ])


async def daily(cases: CaseService, now: datetime) -> int:
    """The day's check, once the local time is past the digest time and if not done today.
    Returns the notices queued (0 when nothing was due or the chain is whole)."""
    settings = cases.settings
    local = now.astimezone(settings.tz)
    if local.time() < settings.digest_time:
        return 0
    day = local.date().isoformat()
    db = cases.db
    if await db.one("SELECT 1 FROM audit_days WHERE day = ?", (day,)) is not None:
        return 0
    await erase_expired(cases, now)
    problems, summary = await audit.check(db)
    log.info("audit head %s@%s", summary.head, day)
    notices: list[tuple[int, str]] = []
    if problems:
        log.error("audit chain broken: %d problem(s); the first: %s", len(problems), problems[0])
        for admin in await cases.people.holders(Role.ADMIN):
            with use_locale(await cases.units.language_of(admin)):
                notices.append((admin, broken_notice(problems)))
    queued = 0
    async with db.transaction() as tx:
        cur = await tx.execute(
            "INSERT OR IGNORE INTO audit_days(day, seq, head, checked_at, problems) VALUES(?,?,?,?,?)",
            (day, summary.head_seq, summary.head, to_db(now), len(problems)))
        if cur.rowcount == 1:  # not done meanwhile by another run
            for chat_id, text in notices:
                outbox.queue_text(tx, chat_id, text, now)
                queued += 1
    if queued:
        cases.on_commit()  # wakes the sender
    return queued
