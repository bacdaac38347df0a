"""The backlog by Telegram: a member of the working group sends the CSV or XLSX file privately;
the bot checks every row, answers with the summary and the problems, and imports on **Import**.

The checked rows wait in the sender's ``user_data`` under a short random key, which is all the
button carries; a press after they expired (an hour, a restart, or three newer files of the same
person) gets one sentence."""

from __future__ import annotations

import contextlib
import html
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.domain.cases import ImportedCase
from bot.domain.errors import DomainError
from bot.domain.rules import GLOBAL_ROLES, Action
from bot.handlers.common import Context, actor, drop_buttons, now, refuse, reply, svc
from bot.i18n import _, ngettext
from bot.importer import MAX_BYTES, FileProblem, check_file
from bot.inputs import excerpt

PENDING = "imports"
TTL = timedelta(hours=1)
MAX_WAITING = 3  # checked files per person (each up to MAX_BYTES of rows): the oldest goes first
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class PendingImport:
    file_name: str
    rows: tuple[ImportedCase, ...]
    at: datetime


def escape(text: str) -> str:
    """For the text of an HTML message (quotes stay as they are: the problems quote values)."""
    return html.escape(text, quote=False)


def _pending(context: Context, at: datetime) -> dict[str, PendingImport]:
    """The sender's checked files waiting for a press, without those that expired."""
    assert context.user_data is not None
    waiting: dict[str, PendingImport] = context.user_data.setdefault(PENDING, {})
    for key in [k for k, p in waiting.items() if at - p.at > TTL]:
        del waiting[key]
    return waiting


async def got_file(update: Update, context: Context) -> None:
    message = update.effective_message
    assert message is not None and message.document is not None
    doc = message.document
    services = svc(context)
    who, at = actor(update), now(context)
    if not await services.people.global_roles(who.tg_id) & GLOBAL_ROLES:
        await services.people.log_refusal(who.tg_id, Action.IMPORT, None, who.chat_id, at)
        await reply(update, _("Only the working group imports cases from a file."))
        return
    name = doc.file_name or "backlog"
    if doc.file_size is not None and doc.file_size > MAX_BYTES:
        await reply(update, _("I cannot read {file}: the file is larger than {n} MB.").format(
            file=excerpt(name), n=MAX_BYTES // (1024 * 1024)))
        return
    try:
        data = bytes(await (await context.bot.get_file(doc.file_id)).download_as_bytearray())
    except TelegramError:
        await reply(update, _("I could not download {file}; please send it again.").format(
            file=excerpt(name)))
        return
    try:
        checked = await check_file(name, data, services.units, services.cases, services.settings.tz, at)
    except FileProblem as exc:
        await reply(update, _("I cannot read {file}: {reason}.").format(
            file=excerpt(name), reason=escape(exc.message)))
        return
    lines = [f"<b>{escape(name)}</b>: {escape(checked.summary())}"]
    problems = checked.problem_lines()
    lines += [escape(p) for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        extra = len(problems) - MAX_PROBLEMS_SHOWN
        lines.append(ngettext("…and {n} more problem.", "…and {n} more problems.", extra).format(n=extra))
    new_rows = checked.new_rows
    if not new_rows:
        lines.append(_("Nothing to import: correct the file and send it again.") if problems
                     else _("Nothing new to import: every case in it is imported already."))
        await reply(update, "\n".join(lines))
        return
    if problems:
        lines.append(_("The rejected rows will not be imported; correct them and send the file "
                       "again to add them (rows imported already are left as they are)."))
    token = secrets.token_urlsafe(6)
    waiting = _pending(context, at)
    waiting[token] = PendingImport(name, tuple(new_rows), at)
    while len(waiting) > MAX_WAITING:
        del waiting[next(iter(waiting))]
    n = len(new_rows)
    await reply(update, "\n".join(lines), [[
        (ngettext("Import {n} case", "Import {n} cases", n).format(n=n), f"imp:{token}"),
        (_("Cancel"), f"imx:{token}"),
    ]])


async def pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    kind, _sep, token = (query.data or "").partition(":")
    services = svc(context)
    who, at = actor(update), now(context)
    pending = _pending(context, at).pop(token, None)
    if pending is None:
        await query.answer(_("This import has expired: send the file again."), show_alert=True)
        await _drop_buttons(update)
        return
    if kind == "imx":
        await query.answer()
        await drop_buttons(query)
        await reply(update, _("Cancelled. Nothing was imported."))
        return
    try:  # the domain checks the rights again, now
        created, skipped = await services.cases.import_cases(who, list(pending.rows), at)
    except DomainError as exc:
        await refuse(update, exc)
        await _drop_buttons(update)
        return
    await query.answer()
    await drop_buttons(query)
    text = ngettext("Imported {n} case from {file}.", "Imported {n} cases from {file}.",
                    len(created)).format(n=len(created), file=escape(pending.file_name))
    if created:
        text += " " + (f"#{created[0]}" if len(created) == 1 else f"#{created[0]}–#{created[-1]}")
    if skipped:
        text += "\n" + ngettext(
            "{n} was imported meanwhile by someone else and is left as it is.",
            "{n} were imported meanwhile by someone else and are left as they are.",
            len(skipped)).format(n=len(skipped))
    await reply(update, text)


async def _drop_buttons(update: Update) -> None:
    """Take the buttons off the offer (they may be gone already: a second press)."""
    query = update.callback_query
    assert query is not None
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)


def handlers() -> list[Any]:
    """After the /new conversation (whose attachments step takes documents first) and the
    forward handler: a .csv or .xlsx document in a private chat."""
    backlog = filters.Document.FileExtension("csv") | filters.Document.FileExtension("xlsx")
    return [
        MessageHandler(filters.ChatType.PRIVATE & backlog, got_file),
        CallbackQueryHandler(pressed, pattern=r"^im[px]:[A-Za-z0-9_-]{1,16}$"),
    ]
