"""Typed commands: /assign /status /note /resolve /reopen /answer /case /mycases /overdue."""

from __future__ import annotations

from datetime import datetime, time
from html import escape

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.domain.access import VIA_CASE, VIA_FILES
from bot.domain.cases import CaseService
from bot.domain.errors import DomainError, InvalidTransition
from bot.domain.model import Actor, CaseView, Change
from bot.domain.outbox import Buttons
from bot.domain.rules import FORWARD_CHANNELS, Action, Status, keyword
from bot.domain.telling import verification_buttons
from bot.handlers.cards import ask_share
from bot.handlers.common import (
    Context,
    UsageError,
    access_log,
    actor,
    button_ids,
    case_arg,
    now,
    page_buttons,
    person_arg,
    refuse,
    reply,
    show_page,
    svc,
)
from bot.i18n import N_, _
from bot.inputs import excerpt, parse_date
from bot.render import card_action_data, card_text, history_lines, list_line, status_label

ASSIGN_USAGE = N_("/assign <case> <unit-key> [@official]")
STATUS_USAGE = N_("/status <case> <in_progress|waiting_info> [note]")
NOTE_USAGE = N_("/note <case> <text>")
RESOLVE_USAGE = N_("/resolve <case> <what was done>")
REOPEN_USAGE = N_("/reopen <case> <reason>")
ANSWER_USAGE = N_("/answer <case> <text>")
CASE_USAGE = N_("/case <number>")
FORWARD_USAGE = N_("/forward <case> <institution-key> [letter|phone|email|in_person] <reason>")
ACK_USAGE = N_("/ack <case> [their reference]")
DECLINE_USAGE = N_("/decline <case> <reason>")
OUTCOME_USAGE = N_("/outcome <case> <what the institution reported>")
VERIFY_USAGE = N_("/verify <case> <confirmed|unreachable|disputed> [reason]")
MERGE_USAGE = N_("/merge <case> <into-case>")
DUE_USAGE = N_("/due <case> <YYYY-MM-DD>")


def _rest(update: Update, skip: int) -> str:
    """The command's text after ``skip`` words, with its own spacing and line breaks kept."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    parts = text.split(maxsplit=skip)
    return parts[skip].strip() if len(parts) > skip else ""


async def _change(
    update: Update, context: Context, case_id: int, action: Action, change: Change
) -> None:
    case = await svc(context).cases.apply(case_id, action, actor(update), change, now(context))
    await reply(update, _("#{n} is now: {status}.").format(n=case.id, status=status_label(case.status)))


async def assign(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, ASSIGN_USAGE)
        if len(args) < 2:
            raise UsageError(_("To which unit? Give its key (see /units)."), ASSIGN_USAGE)
        if len(args) > 3:
            raise UsageError(_("Too many words."), ASSIGN_USAGE)
        official = person_arg(args[2], ASSIGN_USAGE) if len(args) == 3 else None
        case = await svc(context).cases.apply(
            case_id, Action.ASSIGN, actor(update), Change(unit_key=args[1], assignee=official),
            now(context),
        )
    except DomainError as exc:
        await refuse(update, exc)
        return
    await reply(update, _("Case <b>#{n}</b> assigned to {unit}.").format(
        n=case.id, unit=escape(case.unit_name or "")))


async def status(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, STATUS_USAGE)
        services = svc(context)
        if len(args) == 1:  # no status typed: the choices, as buttons
            await _status_buttons(update, context, case_id)
            return
        wanted = keyword(args[1])
        if wanted not in (Status.IN_PROGRESS, Status.WAITING_INFO):
            raise UsageError(_("Give the new status: in_progress or waiting_info."), STATUS_USAGE)
        note = _rest(update, 3)
        if wanted == Status.WAITING_INFO:
            action = Action.NEED_INFO
        else:
            current = await services.cases.get(case_id)
            action = Action.ACCEPT if current.status is Status.ASSIGNED else Action.RESUME
        await _change(update, context, case_id, action, Change(text=note))
    except DomainError as exc:
        await refuse(update, exc)


async def _status_buttons(update: Update, context: Context, case_id: int) -> None:
    """/status <case>: the statuses the case can take now, each a button (rights checked on
    press, as on the card)."""
    cases = svc(context).cases
    who = actor(update)
    view = await cases.get(case_id)
    rows: Buttons = []
    if await cases.may(who, Action.ACCEPT, view):
        rows.append([(_("▶️ In progress"), card_action_data(case_id, view.version, "acc"))])
    elif await cases.may(who, Action.RESUME, view):
        rows.append([(_("▶️ In progress"), card_action_data(case_id, view.version, "rsm"))])
    if await cases.may(who, Action.NEED_INFO, view):
        rows.append([(_("❓ Waiting for information…"), card_action_data(case_id, view.version, "inf"))])
    if not rows:
        await cases.check(case_id, Action.RESUME, who)  # says why (refused, or not now)
        raise InvalidTransition(case_id, status_label(view.status))
    await reply(update, _("#{n} is {status}. The new status?").format(
        n=case_id, status=status_label(view.status)), rows)


def _text_command(action: Action, usage: str, missing: str):  # type: ignore[no-untyped-def]
    async def handler(update: Update, context: Context) -> None:
        args = context.args or []
        try:
            case_id = case_arg(args, usage)
            text = _rest(update, 2)
            if not text:
                raise UsageError(_(missing), usage)
            if action is Action.NOTE:  # a note changes no status: confirm the note
                await svc(context).cases.apply(case_id, action, actor(update), Change(text=text),
                                               now(context))
                await reply(update, _("📝 Note added to #{n}.").format(n=case_id))
                return
            await _change(update, context, case_id, action, Change(text=text))
        except DomainError as exc:
            await refuse(update, exc)

    handler.__name__ = f"cmd_{action.value}"
    return handler


note = _text_command(Action.NOTE, NOTE_USAGE, N_("Write the note after the case number."))
decline = _text_command(Action.DECLINE, DECLINE_USAGE, N_("Give the reason after the case number."))
outcome = _text_command(Action.OUTCOME, OUTCOME_USAGE,
                        N_("Write what the institution reported after the case number."))


async def forward(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, FORWARD_USAGE)
        if len(args) < 3:
            raise UsageError(_("Name the institution and give the reason."), FORWARD_USAGE)
        channel = keyword(args[2]) if keyword(args[2]) in FORWARD_CHANNELS else None
        reason = _rest(update, 4 if channel else 3)
        # Whether the request's files go too is asked first, of those who may forward it.
        cases = svc(context).cases
        await cases.check(case_id, Action.FORWARD, actor(update))
        cases.check_text(Action.FORWARD, reason)
        pending = {"case": case_id, "unit_key": args[1], "channel": channel, "text": reason}
        if await ask_share(update, context, pending):
            return
        await _change(update, context, case_id, Action.FORWARD,
                      Change(text=reason, unit_key=args[1], channel=channel))
    except DomainError as exc:
        await refuse(update, exc)


async def ack(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, ACK_USAGE)
        await _change(update, context, case_id, Action.ACKNOWLEDGE,
                      Change(reference=_rest(update, 2) or None))
    except DomainError as exc:
        await refuse(update, exc)


async def verify(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, VERIFY_USAGE)
        if len(args) == 1:  # how it ended, as buttons
            await _verify_buttons(update, context, case_id)
            return
        result = keyword(args[1])
        if result not in ("confirmed", "unreachable", "disputed"):
            raise UsageError(_("Say how it ended: confirmed, unreachable or disputed."), VERIFY_USAGE)
        if result == "disputed":
            reason = _rest(update, 3)
            if not reason:
                raise UsageError(_("Say what the citizen disputes."), VERIFY_USAGE)
            await _change(update, context, case_id, Action.REOPEN,
                          Change(text=reason, outcome="disputed"))
        else:
            await _change(update, context, case_id, Action.VERIFY,
                          Change(text=_rest(update, 3), outcome=result))
    except DomainError as exc:
        await refuse(update, exc)


async def _verify_buttons(update: Update, context: Context, case_id: int) -> None:
    cases = svc(context).cases
    view = await cases.check(case_id, Action.VERIFY, actor(update))  # refused, own, or not now
    await reply(update, _("#{n}: how did the call with the citizen end?").format(n=case_id),
                verification_buttons(case_id, view.version))


async def merge(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        case_id = case_arg(args, MERGE_USAGE)
        if len(args) != 2:
            raise UsageError(_("Name the case to merge into."), MERGE_USAGE)
        into = case_arg(args[1:], MERGE_USAGE)
        await _change(update, context, case_id, Action.MERGE, Change(into=into))
    except DomainError as exc:
        await refuse(update, exc)


async def due(update: Update, context: Context) -> None:
    args = context.args or []
    services = svc(context)
    try:
        case_id = case_arg(args, DUE_USAGE)
        if len(args) != 2:
            raise UsageError(_("Give the new deadline."), DUE_USAGE)
        day = parse_date(args[1])
        if day is None:
            raise UsageError(_("“{v}” is not a date like 2026-04-30.").format(v=excerpt(args[1])),
                             DUE_USAGE)
        # The end of that working day, local time.
        deadline = datetime.combine(day, time(17, 0), tzinfo=services.settings.tz)
        await _change(update, context, case_id, Action.SET_DUE, Change(due=deadline))
    except DomainError as exc:
        await refuse(update, exc)


async def bouncing(update: Update, context: Context) -> None:
    services = svc(context)
    t = now(context)
    cases = await services.cases.bouncing(actor(update))
    if not cases:
        await reply(update, _("No bouncing cases."))
        return
    lines = [_("<b>Bouncing cases</b> (handed off again and again)")]
    lines += [list_line(c, t) + " · " + _("{n} hand-offs").format(n=c.handoffs) for c in cases]
    await reply(update, "\n".join(lines))
resolve = _text_command(Action.RESOLVE, RESOLVE_USAGE, N_("Say what was done after the case number."))
reopen = _text_command(Action.REOPEN, REOPEN_USAGE, N_("Give the reason after the case number."))
answer = _text_command(Action.PROVIDE_INFO, ANSWER_USAGE, N_("Write the answer after the case number."))


async def case(update: Update, context: Context) -> None:
    args = context.args or []
    try:
        if len(args) != 1:
            raise UsageError(_("Give one case number."), CASE_USAGE)
        case_id = case_arg(args, CASE_USAGE)
    except DomainError as exc:
        await refuse(update, exc)
        return
    await show_case(update, context, case_id)


async def show_case(update: Update, context: Context, case_id: int) -> None:
    """The case's card, its history and its files, for someone who may read it (/case, and a
    search result's button)."""
    services = svc(context)
    try:
        view, personal = await services.cases.visible(actor(update), case_id, now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    tz = services.settings.tz
    text = card_text(view, tz, now(context), personal=personal)
    files = await services.cases.attachments(case_id) if personal else []
    if personal:  # recorded before it is shown (bot/domain/access.py)
        await access_log(services).shown(actor(update), case_id,
                                         [VIA_CASE, *([VIA_FILES] if files else [])], now(context))
        for extra in await services.cases.contacts(case_id):
            text += "\n👤 " + escape(extra)
    history = history_lines(await services.cases.history(case_id), tz)
    await reply(update, text + "\n\n" + _("<b>History</b>") + "\n" + "\n".join(history),
                await _office_buttons(services.cases, actor(update), view))
    chat = update.effective_chat
    if chat is None or not personal:
        return
    for att in files:
        caption = f"#{case_id} · " + (_("evidence") if att.purpose == "evidence" else _("attachment"))
        if att.kind == "photo":
            await chat.send_photo(att.file_id, caption=caption)
        else:
            await chat.send_document(att.file_id, caption=caption)


async def _office_buttons(cases: CaseService, who: Actor, view: CaseView) -> Buttons | None:
    """Under /case, for the working group and verifiers: what they can do next."""
    rows: Buttons = []
    if await cases.may(who, Action.ASSIGN, view):
        rows.append([(_("Assign to another unit…"), f"ap:{view.id}:0:0")])
    if await cases.may(who, Action.FORWARD, view):
        rows.append([(_("Forward to another institution…"), f"fp:{view.id}")])
    if await cases.may(who, Action.VERIFY, view) and view.resolved_by != who.tg_id:
        rows += verification_buttons(view.id, view.version)
    return rows or None


async def _list(update: Update, context: Context, page: int, overdue: bool) -> None:
    services = svc(context)
    t = now(context)
    cases, total = await services.cases.open_cases(actor(update), page, t, overdue_only=overdue)
    if total == 0:
        text = _("No overdue cases.") if overdue else _("No open cases.")
        buttons = None
    else:
        pages = -(-total // 10)
        page = min(page, pages - 1)
        title = _("Overdue cases") if overdue else _("Open cases, oldest first")
        lines = [f"<b>{title}</b> — " + _("page {p}/{n}, {total} in all").format(
            p=page + 1, n=pages, total=total)]
        lines += [list_line(c, t) for c in cases]
        lines.append(_("/case &lt;number&gt; shows one."))
        text = "\n".join(lines)
        prefix = "od" if overdue else "mc"
        buttons = page_buttons(lambda n: f"{prefix}:{n}", page, pages)
    await show_page(update, text, buttons)


async def mycases(update: Update, context: Context) -> None:
    await _list(update, context, 0, overdue=False)


async def overdue(update: Update, context: Context) -> None:
    await _list(update, context, 0, overdue=True)


async def page(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    ids = await button_ids(update, 1)
    if ids is None:
        return
    await _list(update, context, ids[0], overdue=(query.data or "").startswith("od:"))


def handlers() -> list[object]:
    return [
        CommandHandler("assign", assign),
        CommandHandler("status", status),
        CommandHandler("note", note),
        CommandHandler("resolve", resolve),
        CommandHandler("reopen", reopen),
        CommandHandler("answer", answer),
        CommandHandler("case", case),
        CommandHandler("forward", forward),
        CommandHandler("ack", ack),
        CommandHandler("decline", decline),
        CommandHandler("outcome", outcome),
        CommandHandler("verify", verify),
        CommandHandler("merge", merge),
        CommandHandler("bouncing", bouncing),
        CommandHandler("due", due),
        CommandHandler("mycases", mycases),
        CommandHandler("overdue", overdue),
        CallbackQueryHandler(page, pattern=r"^(mc|od):"),
    ]
