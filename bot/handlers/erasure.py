"""/erase: remove a citizen's personal data from a case (admins), once confirmed with a button."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.domain.errors import DomainError
from bot.domain.model import Change, cut_text
from bot.domain.rules import REQUIRED_TEXT, Action
from bot.handlers.commands import _rest
from bot.handlers.common import (
    Context,
    UsageError,
    actor,
    case_arg,
    edit_text,
    now,
    refuse,
    reply,
    stale_button,
    svc,
)
from bot.handlers.pickers import parse_ids
from bot.i18n import N_, _

ERASE_USAGE = N_("/erase <case> <reason>")
PENDING = "erase"  # in the admin's user_data: the case and the reason awaiting the confirmation


async def erase(update: Update, context: Context) -> None:
    services = svc(context)
    args = context.args or []
    try:
        case_id = case_arg(args, ERASE_USAGE)
        reason = _rest(update, 2)
        if len(reason) < REQUIRED_TEXT[Action.ERASE]:
            raise UsageError(_("Give the reason after the case number (for example: the "
                               "citizen's request of 2026-05-04)."), ERASE_USAGE)
        case = await services.cases.check(case_id, Action.ERASE, actor(update))
    except DomainError as exc:
        await refuse(update, exc)
        return
    assert context.user_data is not None
    context.user_data[PENDING] = {"case": case_id, "reason": reason}
    await reply(update, "\n".join([
        _("Erase the personal data of case <b>#{n}</b> ({summary})?").format(
            n=case_id, summary=escape(cut_text(case.summary, 80))),
        _("The citizen's name and contact, the description, every attachment and the free text "
          "of its history are removed for good. Counts, dates, units, categories and statuses "
          "stay, and the erasure is recorded in the history with your reason."),
    ]), [[(_("🗑 Erase"), f"er:{case_id}"), (_("✖️ Cancel"), "er:-")]])


async def confirm(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and context.user_data is not None
    data = query.data or ""
    pending = context.user_data.pop(PENDING, None)
    if data == "er:-":
        await query.answer()
        await edit_text(query, _("Cancelled: nothing was erased."))
        return
    ids = parse_ids(data, 1)
    if ids is None or not isinstance(pending, dict) or pending.get("case") != ids[0]:
        await stale_button(update)
        return
    try:
        await svc(context).cases.apply(ids[0], Action.ERASE, actor(update),
                                       Change(text=str(pending.get("reason", ""))), now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer()
    await edit_text(query, _("The personal data of case #{n} is erased.").format(n=ids[0]))


def handlers() -> list[object]:
    return [
        CommandHandler("erase", erase),
        CallbackQueryHandler(confirm, pattern=r"^er:"),
    ]
