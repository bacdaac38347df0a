"""/accesslog <case>: who saw the case's personal data (admins), newest first, a page at a time."""

from __future__ import annotations

from html import escape
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.domain.access import PAGE_SIZE, VIA_CARD, VIA_LABELS, VIA_NOTICE, WG_CHAT_NAME, Access
from bot.domain.errors import DomainError
from bot.handlers.common import (
    Context,
    UsageError,
    access_log,
    actor,
    button_ids,
    case_arg,
    now,
    page_buttons,
    refuse,
    show_page,
    svc,
)
from bot.i18n import N_, _, label
from bot.render import cut, when

ACCESSLOG_USAGE = N_("/accesslog <case>")
NAME_MAX = 60


def _chat(a: Access) -> str:
    """The group it was shown in."""
    if a.unit_name is not None:
        return _("the chat of {unit}").format(unit=escape(a.unit_name))
    if a.who_name == WG_CHAT_NAME and a.via in (VIA_CARD, VIA_NOTICE):
        return _("the working group's chat")
    return _("the group {id}").format(id=f"<code>{a.chat_id}</code>")


def access_line(a: Access, tz: Any) -> str:
    via = label(VIA_LABELS, a.via) if a.via in VIA_LABELS else escape(a.via)
    if a.who_id is None:
        who = _("the command line ({name})").format(name=escape(a.who_name))
    elif a.who_id < 0:  # a card posted in a group: everyone in it
        who = _chat(a)
    else:
        who = f"{escape(cut(a.who_name, NAME_MAX))} (<code>{a.who_id}</code>)"
        if a.in_group:
            who += " " + _("in {chat}").format(chat=_chat(a))
    return f"• {when(a.at, tz)} · {via} · {who}"


async def _show(update: Update, context: Context, case_id: int, page: int) -> None:
    services = svc(context)
    rows, total, page = await access_log(services).page(actor(update), case_id, page, now(context))
    pages = max(1, -(-total // PAGE_SIZE))
    if total == 0:
        text = _("No view of the personal data of #{n} is recorded.").format(n=case_id)
        buttons = None
    else:
        head = _("<b>Who saw the personal data of #{n}</b>, newest first").format(n=case_id)
        lines = [head + " — " + _("page {p}/{n}, {total} in all").format(
            p=page + 1, n=pages, total=total)]
        lines += [access_line(a, services.settings.tz) for a in rows]
        buttons = page_buttons(lambda n: f"al:{case_id}:{n}", page, pages)
        text = "\n".join(lines)
    await show_page(update, text, buttons)


async def accesslog(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        if len(args) != 1:
            raise UsageError(_("Give one case number."), ACCESSLOG_USAGE)
        await _show(update, context, case_arg(args, ACCESSLOG_USAGE), 0)
    except DomainError as exc:
        await refuse(update, exc)


async def page(update: Update, context: Context) -> None:
    """``al:<case>:<page>``: another page (the rights are checked again)."""
    ids = await button_ids(update, 2)
    if ids is None:
        return
    try:
        await _show(update, context, ids[0], ids[1])
    except DomainError as exc:
        await refuse(update, exc)


def handlers() -> list[Any]:
    return [
        CommandHandler("accesslog", accesslog),
        CallbackQueryHandler(page, pattern=r"^al:"),
    ]
