"""Buttons on case cards and the questions they ask; assignment buttons; the working group's
Answer button. Every press is re-checked against the database by the domain."""

from __future__ import annotations

from html import escape
from typing import Any

from telegram import ForceReply, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from bot.domain.cases import AttachmentIn, Change
from bot.domain.errors import DomainError, StaleCase
from bot.domain.rules import Action
from bot.handlers.common import Context, actor, now, refuse, reply, svc
from bot.handlers.pickers import parse_ids, unit_picker
from bot.i18n import _
from bot.render import CARD_ACTIONS, keyboard

ASK_TEXT, ASK_EVIDENCE = range(2)
END = ConversationHandler.END

def _done(action: Action, n: int) -> str:
    return {
        Action.ACCEPT: _("#{n} accepted: it is in progress."),
        Action.NEED_INFO: _("#{n}: your question went to the working group."),
        Action.RETURN: _("#{n} went back to the working group."),
        Action.RESOLVE: _("#{n} is resolved."),
        Action.PROVIDE_INFO: _("#{n}: your answer went to the unit."),
    }[action].format(n=n)


def _prompt_key(update: Update) -> str:
    chat = update.effective_chat
    return f"prompt:{chat.id if chat else 0}"


async def _fail(update: Update, context: Context, exc: DomainError, case_id: int | None) -> None:
    await refuse(update, exc)
    if isinstance(exc, StaleCase) and case_id is not None:
        await svc(context).cases.refresh_cards(case_id, now(context))


def _parse_card(data: str) -> tuple[int, int, Action] | None:
    parts = data.split(":")
    if len(parts) != 4 or not (parts[1].isdigit() and parts[2].isdigit()) or len(data) > 64:
        return None
    action = CARD_ACTIONS.get(parts[3])
    return (int(parts[1]), int(parts[2]), action) if action else None


async def accept(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parsed = _parse_card(query.data or "")
    if parsed is None or parsed[2] is not Action.ACCEPT:
        await query.answer(_("That button is not valid any more."), show_alert=True)
        return
    case_id, version, action = parsed
    try:
        await svc(context).cases.apply(case_id, action, actor(update), Change(), now(context),
                                       expected_version=version)
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return
    await query.answer(_done(action, case_id))


def _prompt_text(action: Action, who: str, n: int) -> str:
    text = {
        Action.NEED_INFO: _("{who}, what information is needed for #{n}?"),
        Action.RETURN: _("{who}, why is #{n} not for your unit?"),
        Action.RESOLVE: _("{who}, what was done to resolve #{n}? (at least 10 characters)"),
        Action.PROVIDE_INFO: _("{who}, your answer to the unit about #{n}?"),
    }[action]
    return text.format(who=who, n=n) + " " + _("(/cancel to stop)")


async def start_prompt(update: Update, context: Context) -> int:
    """A card button that needs words first (Need info, Not ours, Resolved…, Answer…)."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    data = query.data or ""
    parsed: tuple[int, int | None, Action] | None
    if data.startswith("ans:"):
        ids = parse_ids(data, 1)
        parsed = (ids[0], None, Action.PROVIDE_INFO) if ids else None
    else:
        parsed = _parse_card(data)
    if parsed is None or parsed[2] is Action.ACCEPT:
        await query.answer(_("That button is not valid any more."), show_alert=True)
        return END
    case_id, expected, action = parsed
    who = actor(update)
    try:
        await svc(context).cases.check(case_id, action, who, expected_version=expected)
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return END
    await query.answer()
    context.user_data[_prompt_key(update)] = {"case": case_id, "version": expected,
                                              "action": action.value}
    mention = f'<a href="tg://user?id={who.tg_id}">{escape(who.name)}</a>'
    await reply(update, _prompt_text(action, mention, case_id),
                reply_markup=ForceReply(selective=True))
    return ASK_TEXT


def _pending(update: Update, context: Context) -> dict[str, Any] | None:
    assert context.user_data is not None
    value = context.user_data.get(_prompt_key(update))
    return value if isinstance(value, dict) else None


async def got_text(update: Update, context: Context) -> int:
    pending = _pending(update, context)
    message = update.effective_message
    if pending is None or message is None:
        return END
    action = Action(pending["action"])
    text = (message.text or "").strip()
    try:
        svc(context).cases.check_text(action, text)
    except DomainError as exc:
        await reply(update, exc.user_message() + " " + _("Please try again, or /cancel."),
                    reply_markup=ForceReply(selective=True))
        return ASK_TEXT
    pending["text"] = text
    if action is Action.RESOLVE:
        await message.reply_text(
            _("Reply to this message with a photo or a document as evidence, or tap Skip."),
            reply_markup=keyboard([[(_("Skip"), "ev:skip")]]),
        )
        return ASK_EVIDENCE
    return await _finish(update, context, pending, ())


async def got_evidence(update: Update, context: Context) -> int:
    pending = _pending(update, context)
    message = update.effective_message
    if pending is None or message is None:
        return END
    if message.photo:
        item = AttachmentIn("photo", message.photo[-1].file_id)
    elif message.document:
        item = AttachmentIn("document", message.document.file_id, message.document.file_name)
    else:
        return await evidence_text(update, context)
    return await _finish(update, context, pending, (item,))


async def evidence_text(update: Update, context: Context) -> int:
    await reply(update, _("Please send a photo or a document, or tap Skip."),
                [[(_("Skip"), "ev:skip")]])
    return ASK_EVIDENCE


async def skip_evidence(update: Update, context: Context) -> int:
    query = update.callback_query
    pending = _pending(update, context)
    assert query is not None
    if pending is None:
        await query.answer(_("That button is not valid any more."), show_alert=True)
        return END
    await query.answer()
    await query.edit_message_reply_markup(None)
    return await _finish(update, context, pending, ())


async def _finish(
    update: Update, context: Context, pending: dict[str, Any], items: tuple[AttachmentIn, ...]
) -> int:
    assert context.user_data is not None
    context.user_data.pop(_prompt_key(update), None)
    action = Action(pending["action"])
    case_id = int(pending["case"])
    try:
        await svc(context).cases.apply(
            case_id, action, actor(update), Change(text=pending["text"], attachments=items),
            now(context), expected_version=pending["version"],
        )
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return END
    await reply(update, "✅ " + _done(action, case_id))
    return END


async def cancel_prompt(update: Update, context: Context) -> int:
    assert context.user_data is not None
    context.user_data.pop(_prompt_key(update), None)
    await reply(update, _("Cancelled. Nothing was changed."))
    return END


def prompt_conversation() -> ConversationHandler[Context]:
    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[
            CallbackQueryHandler(start_prompt, pattern=r"^c:\d+:\d+:(inf|ret|res)$"),
            CallbackQueryHandler(start_prompt, pattern=r"^ans:"),
        ],
        states={
            ASK_TEXT: [MessageHandler(text, got_text)],
            ASK_EVIDENCE: [
                MessageHandler(filters.PHOTO | filters.Document.ALL, got_evidence),
                MessageHandler(text, evidence_text),
                CallbackQueryHandler(skip_evidence, pattern=r"^ev:skip$"),
            ],
        },
        fallbacks=[CommandHandler("cancel", cancel_prompt)],
        name="card-prompts",
        per_chat=True,
        per_user=True,
        allow_reentry=True,
        conversation_timeout=1800,
    )


# --- assignment by buttons -------------------------------------------------------------------

async def assign_button(update: Update, context: Context) -> None:
    """``as:<case>:<unit>``: assign the case to the unit."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 2)
    services = svc(context)
    unit = await services.units.by_id(ids[1]) if ids else None
    if ids is None or unit is None:
        await query.answer(_("That button is not valid any more."), show_alert=True)
        return
    try:
        case = await services.cases.apply(
            ids[0], Action.ASSIGN, actor(update), Change(unit_key=unit.key), now(context)
        )
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer()
    await query.edit_message_text(
        _("Case <b>#{n}</b> assigned to {unit}.").format(n=case.id, unit=escape(unit.name))
    )


async def assign_picker(update: Update, context: Context) -> None:
    """``ap:<case>:<node>:<page>``: browse the unit tree to pick where to assign."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 3)
    services = svc(context)
    if ids is None:
        await query.answer(_("That button is not valid any more."), show_alert=True)
        return
    case_id, node, page = ids
    try:
        await services.cases.check(case_id, Action.ASSIGN, actor(update))
    except DomainError as exc:
        await refuse(update, exc)
        return
    text, rows = await unit_picker(services.units, node, page, f"ap:{case_id}", f"as:{case_id}",
                                   internal_only=True)
    await query.answer()
    await query.edit_message_text(_("Assign #{n}.").format(n=case_id) + " " + text,
                                  reply_markup=keyboard(rows))


async def dead_button(update: Update, context: Context) -> None:
    """Any press nothing else took: an old or forged button."""
    query = update.callback_query
    if query is not None:
        await query.answer(_("That button is not valid any more."), show_alert=True)


def handlers() -> list[Any]:
    return [
        CallbackQueryHandler(accept, pattern=r"^c:\d+:\d+:acc$"),
        CallbackQueryHandler(assign_button, pattern=r"^as:"),
        CallbackQueryHandler(assign_picker, pattern=r"^ap:"),
    ]
