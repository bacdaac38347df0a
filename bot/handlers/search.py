"""/search <words>: cases by number, old reference, citizen's phone or name, words of the summary."""

from __future__ import annotations

from html import escape
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.domain.access import VIA_SEARCH
from bot.domain.errors import DomainError
from bot.domain.search import BY_NAME, BY_PHONE, BY_REFERENCE, CaseSearch
from bot.handlers.commands import show_case
from bot.handlers.common import (
    Context,
    UsageError,
    access_log,
    actor,
    button_ids,
    now,
    refuse,
    reply,
    svc,
)
from bot.i18n import N_, _
from bot.inputs import excerpt
from bot.render import list_line

SEARCH_USAGE = N_("/search <number, reference, phone, name or words of the summary>")


def searcher(context: Context) -> CaseSearch:
    return CaseSearch(svc(context).cases)


async def search(update: Update, context: Context) -> None:
    message = update.effective_message
    text = (message.text or "") if message else ""
    words = text.split(maxsplit=1)
    query = words[1].strip() if len(words) > 1 else ""
    services = svc(context)
    who = actor(update)
    try:
        if not query:
            raise UsageError(_("What should I look for?"), SEARCH_USAGE)
        results = await searcher(context).search(who, query)
    except DomainError as exc:
        await refuse(update, exc)
        return
    quoted = excerpt(query)
    if not results.found:
        await reply(update, _("Nothing found for “{q}”.").format(q=quoted))
        return
    t = now(context)
    shown = [f.case.id for f in results.found if f.personal]
    if shown:  # a view of their personal data: recorded before it is shown
        await access_log(services).shown_cases(who, shown, VIA_SEARCH, t)
    total = f"{results.total}+" if results.more else str(results.total)
    lines = ["🔎 " + _("<b>Found for “{q}”</b>: {n}").format(q=quoted, n=total)]
    for f in results.found:
        line = list_line(f.case, t)
        if BY_REFERENCE in f.why and f.case.external_ref:
            line += "\n    " + _("old reference: {ref}").format(ref=escape(f.case.external_ref))
        if f.personal and f.why & {BY_NAME, BY_PHONE}:
            citizen = escape(f.case.citizen_name)
            if f.case.citizen_contact:
                citizen += " · " + escape(f.case.citizen_contact)
            line += "\n    👤 " + citizen
        lines.append(line)
    if results.total > len(results.found):
        lines.append(_("The first {n} are shown: add words to narrow the search.").format(
            n=len(results.found)))
    rows: list[list[tuple[str, str]]] = []
    for i in range(0, len(results.found), 5):
        rows.append([(f"#{f.case.id}", f"sc:{f.case.id}") for f in results.found[i:i + 5]])
    await reply(update, "\n".join(lines), rows)


async def open_case(update: Update, context: Context) -> None:
    """``sc:<case>``: a search result's button: the case as /case shows it (rights re-checked)."""
    ids = await button_ids(update, 1)
    if ids is None:
        return
    try:
        await show_case(update, context, ids[0])
    except DomainError as exc:
        await refuse(update, exc)


def handlers() -> list[Any]:
    return [
        CommandHandler("search", search),
        CallbackQueryHandler(open_case, pattern=r"^sc:"),
    ]
