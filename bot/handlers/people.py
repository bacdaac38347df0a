"""People: /invite, /invites, /people, /revoke, /whoami, /refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.db import from_db
from bot.domain.errors import DomainError
from bot.domain.rules import ATTEMPT_LABELS, ROLE_LABELS, Role
from bot.handlers.common import (
    Context,
    UsageError,
    actor,
    button_ids,
    drop_buttons,
    is_private,
    now,
    person_arg,
    refuse,
    reply,
    svc,
)
from bot.i18n import N_, _, label
from bot.render import when

INVITE_USAGE = N_("/invite <unit-key|-> <official|supervisor|liaison|working_group|admin>")
REVOKE_USAGE = N_("/revoke <@person|id> [unit-key] [role]")
PEOPLE_USAGE = N_("/people [unit-key]")


async def invite(update: Update, context: Context) -> None:
    services = svc(context)
    args = context.args or []
    try:
        if len(args) != 2:
            raise UsageError(_("Name the unit and the role."), INVITE_USAGE)
        if not is_private(update):
            raise UsageError(_("Ask for invitations in a private chat with me: a link works once, "
                               "for whoever opens it first."), INVITE_USAGE)
        token = await services.people.invite(actor(update).tg_id, args[0], args[1], now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    expires = now(context).timestamp() + services.settings.invitation_hours * 3600
    link = f"https://t.me/{context.bot.username}?start={token}"
    role = label(ROLE_LABELS, Role(args[1].lower()))
    unit = "" if args[0] == "-" else f" · <code>{escape(args[0].lower())}</code>"
    await reply(update, "\n".join([
        _("Invitation: {role}{unit}. It works once, until {when}.").format(
            role=role, unit=unit,
            when=when(datetime.fromtimestamp(expires, UTC), services.settings.tz)),
        _("Send this link to the person, privately:"),
        escape(link),
    ]))


async def invites(update: Update, context: Context) -> None:
    services = svc(context)
    try:
        pending = await services.people.pending_invitations(actor(update).tg_id, now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    if not pending:
        await reply(update, _("No pending invitations."))
        return
    tz = services.settings.tz
    lines = [_("<b>Pending invitations</b>")]
    rows: list[list[tuple[str, str]]] = []
    for inv in pending:
        where = f" · {escape(inv.unit_name)}" if inv.unit_name else ""
        lines.append(_("{n}. {role}{unit}, until {when}").format(
            n=inv.id, role=label(ROLE_LABELS, inv.role), unit=where, when=when(inv.expires_at, tz)))
        rows.append([(_("Withdraw {n}").format(n=inv.id), f"iw:{inv.id}")])
    await reply(update, "\n".join(lines), rows)


async def withdraw(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    ids = await button_ids(update, 1)
    if ids is None:
        return
    try:
        await svc(context).people.withdraw_invitation(actor(update).tg_id, ids[0], now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer(_("Invitation {n} withdrawn.").format(n=ids[0]))
    await invites_refresh(update, context)


async def invites_refresh(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await drop_buttons(query)
    await invites(update, context)


async def people(update: Update, context: Context) -> None:
    services = svc(context)
    args = context.args or []
    try:
        if len(args) > 1:
            raise UsageError(_("Give at most one unit key."), PEOPLE_USAGE)
        found = await services.people.people(actor(update).tg_id, args[0] if args else None)
    except DomainError as exc:
        await refuse(update, exc)
        return
    if not found:
        await reply(update, _("Nobody holds a role there yet."))
        return
    lines = [_("<b>People</b>")]
    for p in found:
        handle = f" @{escape(p.username)}" if p.username else ""
        roles = ", ".join(escape(g.label()) for g in p.grants)
        lines.append(f"• {escape(p.name)}{handle} (<code>{p.tg_id}</code>): {roles}")
    await reply(update, "\n".join(lines))


async def revoke(update: Update, context: Context) -> None:
    services = svc(context)
    args = context.args or []
    try:
        if not 1 <= len(args) <= 3:
            raise UsageError(_("Name the person, and optionally the unit and the role."), REVOKE_USAGE)
        who = person_arg(args[0], REVOKE_USAGE)
        unit_key = args[1] if len(args) > 1 else None
        role = args[2] if len(args) > 2 else None
        removed = await services.people.revoke(actor(update).tg_id, who, unit_key, role,
                                               now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await reply(update, _("Removed: {roles}. It takes effect at once.").format(
        roles=", ".join(escape(g.label()) for g in removed)))


async def whoami(update: Update, context: Context) -> None:
    who = actor(update)
    grants = await svc(context).people.grants(who.tg_id)
    roles = "\n".join(f"• {escape(g.label())}" for g in grants)
    await reply(update, _("You are {name} (<code>{id}</code>).").format(
        name=escape(who.name), id=who.tg_id) + "\n" + roles)


async def refusals(update: Update, context: Context) -> None:
    services = svc(context)
    try:
        rows = await services.people.refusals(actor(update).tg_id)
    except DomainError as exc:
        await refuse(update, exc)
        return
    if not rows:
        await reply(update, _("No refused attempts."))
        return
    lines = [_("<b>Recent refused attempts</b>")]
    for r in rows:
        case = f" #{r['case_id']}" if r["case_id"] else ""
        stamp = from_db(r["at"])
        tried = label(ATTEMPT_LABELS, r["action"]) if r["action"] in ATTEMPT_LABELS else escape(
            r["action"])
        lines.append(f"• {when(stamp, services.settings.tz)} · {escape(r['name'] or str(r['tg_id']))}"
                     f" · {tried}{case}")
    await reply(update, "\n".join(lines))


def handlers() -> list[Any]:
    return [
        CommandHandler("invite", invite),
        CommandHandler("invites", invites),
        CallbackQueryHandler(withdraw, pattern=r"^iw:"),
        CommandHandler("people", people),
        CommandHandler("revoke", revoke),
        CommandHandler("whoami", whoami),
        CommandHandler("refusals", refusals),
    ]
