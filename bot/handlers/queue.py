"""/inbox: the working group's queue of requests from citizens, one request a page, oldest first,
with what can be made of each: Create case (the intake, bot/handlers/intake.py), Not a request,
Duplicate of #n (asks the number), Abusive (asks the reason).

Buttons carry ids only (``rq:<action>:<request>``, ``rq:pg:<page>``); every press is checked again
by the domain (bot/domain/requests.py): rights first, then the request still pending. After a
decision the same message shows the next request waiting."""

from __future__ import annotations

import contextlib
from html import escape
from typing import Any

from telegram import ForceReply, Update
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.domain.citizens import Citizen
from bot.domain.errors import CaseNotFound, DomainError, Invalid
from bot.domain.outbox import Buttons
from bot.domain.requests import REASON_MIN, IncomingRequest, RequestDecisions
from bot.domain.rules import SOURCES
from bot.handlers.common import (
    Context,
    actor,
    edit_text,
    is_private,
    now,
    page_buttons,
    refuse,
    reply,
    stale_button,
    svc,
)
from bot.i18n import _, label, ngettext
from bot.inputs import BUTTON_ID_MAX, excerpt, parse_case_number, parse_number
from bot.render import cut, keyboard, when

ASK = 0
END = ConversationHandler.END
TEXT_SHOWN = 700  # characters of a request's text in the queue
ACTIONS = ("new", "no", "dup", "ab", "pg")
PENDING = "request-prompt"


def decisions(context: Context) -> RequestDecisions:
    services = svc(context)
    return RequestDecisions(services.db, services.cases, services.citizens)


def parse_data(data: str) -> tuple[str, int] | None:
    """``rq:<action>:<id>`` → (action, id), or None when forged or malformed."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != "rq" or parts[1] not in ACTIONS:
        return None
    number = parse_number(parts[2], maximum=BUTTON_ID_MAX, khmer=False)
    return None if number is None else (parts[1], number)


async def _where_allowed(update: Update, context: Context) -> bool:
    """Requests hold citizens' words and names: privately, or in the working group's chat."""
    chat = update.effective_chat
    if chat is None or is_private(update):
        return chat is not None
    return chat.id in await svc(context).cases.working_group_chats()


# --- the queue -------------------------------------------------------------------------------

async def inbox(update: Update, context: Context) -> None:
    try:
        await decisions(context).may_see(actor(update), now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    if not await _where_allowed(update, context):
        await reply(update, _("Use /inbox in the working group's chat or in a private chat with me: "
                              "requests hold personal data."))
        return
    text, buttons = await page_of(context, 0)
    await reply(update, text, buttons)


async def page_of(context: Context, page: int, done: str = "") -> tuple[str, Buttons | None]:
    """The queue's page ``page`` (one request) and its buttons; ``done``: a line on top saying
    what was just decided."""
    services = svc(context)
    store = services.requests
    total = await store.count_pending()
    top = [done] if done else []
    if total == 0:
        return "\n".join([*top, _("📥 No requests from citizens are waiting.")]), None
    page = min(max(page, 0), total - 1)
    request = (await store.pending(1, page))[0]
    who = await services.citizens.get(request.citizen_id) if request.citizen_id else None
    lines = [*top, "📥 " + _("<b>Requests from citizens waiting: {total}</b> · {p}/{total}").format(
        total=total, p=page + 1), ""]
    lines += await _request_lines(context, request, who)
    r = request.id
    buttons: Buttons = [
        [(_("📝 Create case"), f"rq:new:{r}"), (_("🚫 Not a request"), f"rq:no:{r}")],
        [(_("🔗 Duplicate of #…"), f"rq:dup:{r}"), (_("⚠️ Abusive…"), f"rq:ab:{r}")],
        *(page_buttons(lambda n: f"rq:pg:{n}", page, total) or []),
    ]
    return "\n".join(lines), buttons


async def _request_lines(context: Context, request: IncomingRequest, who: Citizen | None) -> list[str]:
    services = svc(context)
    tz = services.settings.tz
    lines = [_("<b>Request #{r}</b> · {source} · received {when}").format(
        r=request.id, source=label(SOURCES, request.source), when=when(request.received_at, tz))]
    if who is not None and not who.erased_at:
        name = escape(who.name) if who.name else _("(no name given)")
        lines.append(_("From: {name}").format(name=name) + (
            f" · {escape(who.contact)}" if who.contact else ""))
    data = request.data
    place = data.get("place_unit_id")
    unit = await services.units.by_id(place) if isinstance(place, int) else None
    category = data.get("category_id")
    cat = await services.units.category(category) if isinstance(category, int) else None
    if unit is not None or cat is not None:
        lines.append(" · ".join(
            [*([_("Place: {v}").format(v=escape(unit.name))] if unit else []),
             *([_("Category: {v}").format(v=escape(cat.name))] if cat else [])]))
    summary = str(data.get("summary") or "").strip()
    if summary:
        lines.append(_("Summary: {v}").format(v=escape(cut(summary, 200))))
    text = str(data.get("details") or "").strip() if summary else request.text
    lines.append("«" + escape(cut(text or request.text, TEXT_SHOWN) or "—") + "»")
    files = data.get("files")
    count = len(files) if isinstance(files, list) else 0
    if count:
        lines.append(ngettext("{n} attachment", "{n} attachments", count).format(n=count))
    record = await decisions(context).record_of(request)
    if record is not None:
        if record.earlier_requests or record.cases:
            lines.append(_("This citizen before: {requests} · {cases}").format(
                requests=ngettext("{n} request", "{n} requests", record.earlier_requests).format(
                    n=record.earlier_requests),
                cases=ngettext("{n} case", "{n} cases", record.cases).format(n=record.cases)))
        else:
            lines.append(_("This citizen's first request."))
    return lines


async def press(update: Update, context: Context) -> None:
    """Not a request, and the pages (‹ Prev / Next ›): done at once, rights checked first."""
    query = update.callback_query
    assert query is not None
    parsed = parse_data(query.data or "")
    if parsed is None or parsed[0] not in ("no", "pg"):
        await stale_button(update)
        return
    action, number = parsed
    who, t = actor(update), now(context)
    queue = decisions(context)
    try:
        await queue.may_see(who, t)  # rights first
        if not await _where_allowed(update, context):  # an /inbox button where none was sent
            await stale_button(update)
            return
        if action == "pg":
            text, buttons = await page_of(context, number)
            await query.answer()
            await edit_text(query, text, reply_markup=keyboard(buttons))
            return
        request = await queue.check(who, number, t)
        page = await queue.position(request)
        await queue.not_a_request(who, number, t)
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer(_("Request #{r}: not a request.").format(r=number))
    text, buttons = await page_of(context, page, "✅ " + _("Request #{r}: not a request.").format(
        r=number))
    await edit_text(query, text, reply_markup=keyboard(buttons))


# --- the two questions: which case it duplicates, why it is abusive ------------------------

def _key(update: Update) -> str:
    chat = update.effective_chat
    return f"{PENDING}:{chat.id if chat else 0}"


def _question(action: str, r: int) -> str:
    if action == "dup":
        text = _("Request #{r} is a duplicate of which case? Reply with its number.")
    else:
        text = _("Why is request #{r} abusive? Reply with the reason (at least {n} characters).")
    return text.format(r=r, n=REASON_MIN) + " " + _("(/cancel to stop)")


async def start_question(update: Update, context: Context) -> int:
    """``rq:dup:<request>`` and ``rq:ab:<request>``: checked (rights, then still pending), then
    the question, answered by a reply."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    parsed = parse_data(query.data or "")
    if parsed is None or parsed[0] not in ("dup", "ab"):
        await stale_button(update)
        return END
    action, number = parsed
    queue = decisions(context)
    try:
        await queue.may_see(actor(update), now(context))  # rights first
        if not await _where_allowed(update, context):  # an /inbox button where none was sent
            await stale_button(update)
            return END
        request = await queue.check(actor(update), number, now(context))
        page = await queue.position(request)
    except DomainError as exc:
        await refuse(update, exc)
        return END
    await query.answer()
    pending: dict[str, Any] = {"action": action, "request": number, "page": page,
                               "inbox": query.message.message_id if query.message else None}
    await _ask(update, context, pending, _question(action, number))
    context.user_data[_key(update)] = pending
    return ASK


async def _ask(update: Update, context: Context, pending: dict[str, Any], text: str) -> None:
    await _clean(update, context, pending)
    sent = await reply(update, text, reply_markup=ForceReply(selective=True))
    pending["asked"] = sent.message_id if sent is not None else None


async def _clean(update: Update, context: Context, pending: dict[str, Any] | None) -> None:
    """Delete the question once answered or cancelled (one question in the chat at a time)."""
    chat = update.effective_chat
    asked = pending.pop("asked", None) if pending else None
    if chat is None or not asked:
        return
    with contextlib.suppress(TelegramError):
        await context.bot.delete_message(chat.id, int(asked))


async def got_answer(update: Update, context: Context) -> int:
    assert context.user_data is not None
    pending = context.user_data.get(_key(update))
    message = update.effective_message
    if not isinstance(pending, dict) or message is None:
        return END
    action, number = str(pending["action"]), int(pending["request"])
    text = (message.text or "").strip()
    queue, who, t = decisions(context), actor(update), now(context)
    try:
        if action == "dup":
            case_id = parse_case_number(text)
            if case_id is None:
                raise Invalid(_("“{v}” is not a case number.").format(v=excerpt(text)))
            await queue.duplicate(who, number, case_id, t)
            done = _("Request #{r} joined to case #{n} as a duplicate; the citizen is told.").format(
                r=number, n=case_id)
        else:
            await queue.abusive(who, number, text, t)
            done = _("Request #{r} marked as abusive.").format(r=number)
    except (Invalid, CaseNotFound) as exc:  # the answer is wrong: asked again
        await _ask(update, context, pending, exc.user_message() + " " + _question(action, number))
        return ASK
    except DomainError as exc:  # decided meanwhile, or no right any more
        context.user_data.pop(_key(update), None)
        await _clean(update, context, pending)
        await refuse(update, exc)
        return END
    context.user_data.pop(_key(update), None)
    await _clean(update, context, pending)
    await _show_after(update, context, pending, "✅ " + done)
    return END


async def _show_after(update: Update, context: Context, pending: dict[str, Any], done: str) -> None:
    """The queue's message shows the next request, with what was done on top; a line if that
    message cannot be edited any more."""
    chat = update.effective_chat
    text, buttons = await page_of(context, int(pending.get("page") or 0), done)
    if chat is not None and pending.get("inbox"):
        with contextlib.suppress(TelegramError):
            await context.bot.edit_message_text(text, chat_id=chat.id, message_id=int(pending["inbox"]),
                                                reply_markup=keyboard(buttons))
            return
    await reply(update, done)


async def cancel(update: Update, context: Context) -> int:
    assert context.user_data is not None
    pending = context.user_data.pop(_key(update), None)
    await _clean(update, context, pending if isinstance(pending, dict) else None)
    await reply(update, _("Cancelled. Nothing was changed."))
    return END


async def timed_out(update: object, context: Context) -> None:
    if isinstance(update, Update) and context.user_data is not None:
        pending = context.user_data.pop(_key(update), None)
        await _clean(update, context, pending if isinstance(pending, dict) else None)


def conversation() -> ConversationHandler[Context]:
    return ConversationHandler(
        entry_points=[CallbackQueryHandler(start_question, pattern=r"^rq:(dup|ab):")],
        states={
            ASK: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_answer)],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        name="request-prompts",
        persistent=True,  # a question waiting for its answer survives a restart
        per_chat=True,
        per_user=True,
        allow_reentry=True,
        conversation_timeout=1800,
    )


def handlers() -> list[object]:
    return [
        CommandHandler("inbox", inbox),
        CallbackQueryHandler(press, pattern=r"^rq:(no|pg):"),
    ]
