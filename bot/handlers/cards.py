"""Buttons on case cards and the questions they ask; assignment buttons; the working group's
Answer button. Every press is re-checked against the database by the domain."""

from __future__ import annotations

import contextlib
from html import escape
from typing import Any

from telegram import CallbackQuery, ForceReply, Message, ReactionTypeEmoji, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.domain.cases import AttachmentIn, Change
from bot.domain.errors import DomainError, InvalidTransition, StaleCase
from bot.domain.model import actor_shown
from bot.domain.rules import (
    CHANNEL_LABELS,
    FORWARD_CHANNELS,
    OUTCOME_LABELS,
    STATUS_LABELS,
    Action,
    Status,
)
from bot.domain.telling import verification_buttons
from bot.handlers.common import (
    Context,
    actor,
    drop_buttons,
    edit_text,
    is_private,
    now,
    refuse,
    reply,
    stale_button,
    svc,
)
from bot.handlers.pickers import parse_ids, unit_picker
from bot.i18n import _, label, ngettext
from bot.inputs import plain_text
from bot.render import CARD_ACTIONS, DIRECT_CODES, keyboard

ASK_TEXT, ASK_EVIDENCE, ASK_CHANNEL = range(3)
END = ConversationHandler.END
OUTCOME_OF_CODE = {"cfm": "confirmed", "unr": "unreachable", "dis": "disputed"}
NO_REFERENCE = frozenset({"-", "–", "—", "0", "no", "none", "គ្មាន", "ទេ", "០"})  # "there is none"


def _done(action: Action, n: int) -> str:
    return {
        Action.ACCEPT: _("#{n} accepted: it is in progress."),
        Action.NEED_INFO: _("#{n}: your question went to the working group."),
        Action.RETURN: _("#{n} went back to the working group."),
        Action.RESOLVE: _("#{n} is resolved; the working group will verify it with the citizen."),
        Action.PROVIDE_INFO: _("#{n}: your answer went to the unit."),
        Action.ACKNOWLEDGE: _("#{n} acknowledged."),
        Action.RESUME: _("#{n} is in progress again."),
        Action.DECLINE: _("#{n} went back to the working group."),
        Action.VERIFY: _("#{n} is closed."),
        Action.REOPEN: _("#{n} is reopened and back with the unit."),
        Action.FORWARD: _("#{n} is forwarded."),
        Action.SNOOZE: _("#{n}: no reminder until tomorrow."),
        Action.HELP: _("#{n}: your request went to the supervisors."),
    }[action].format(n=n)


def _prompt_key(update: Update) -> str:
    chat = update.effective_chat
    return f"prompt:{chat.id if chat else 0}"


async def _fail(update: Update, context: Context, exc: DomainError, case_id: int | None) -> None:
    query = update.callback_query
    if (isinstance(exc, StaleCase | InvalidTransition) and case_id is not None and query is not None
            and query.message is not None and await _not_a_card(context, query)):
        # A button under a notice (Verify with the citizen, a reminder), not a card: there is
        # no card here to bring up to date, so say what happened to the case instead.
        await _what_happened(context, query, case_id)
        return
    await refuse(update, exc)
    if isinstance(exc, StaleCase) and case_id is not None:
        await svc(context).cases.refresh_cards(case_id, now(context))


async def _not_a_card(context: Context, query: CallbackQuery) -> bool:
    message = query.message
    assert message is not None
    return await svc(context).outbox.card_at(message.chat.id, message.message_id) is None


async def _what_happened(context: Context, query: CallbackQuery, case_id: int) -> None:
    """"#1 is already closed, confirmed by Sophea." in the toast; buttons that can do nothing
    any more go, those still of use are brought up to date."""
    cases = svc(context).cases
    case = await cases.get(case_id)
    if case.status in (Status.CLOSED, Status.MERGED):
        closing = [e for e in await cases.history(case_id)
                   if e.action in (Action.VERIFY, Action.MERGE) and e.to_status == case.status]
        outcome = label(OUTCOME_LABELS, case.outcome or "merged", "merged")
        who = actor_shown(closing[-1].actor_name, closing[-1].actor_id) if closing else "?"
        text = _("#{n} is already {outcome}, by {who}.").format(n=case_id, outcome=outcome, who=escape(who))
        buttons = None
    else:
        text = _("#{n} has changed meanwhile: it is {status} now.").format(
            n=case_id, status=label(STATUS_LABELS, case.status))
        buttons = keyboard(verification_buttons(case_id, case.version)) if (
            case.status is Status.RESOLVED) else None
    await query.answer(plain_text(text)[:200], show_alert=True)
    try:
        await query.edit_message_reply_markup(buttons)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


def _parse_card(data: str) -> tuple[int, int, str] | None:
    """``c:<case>:<version>:<code>`` → (case, version, code), or None when forged."""
    parts = data.split(":")
    if len(parts) != 4 or parts[3] not in CARD_ACTIONS:
        return None
    ids = parse_ids(":".join(parts[:3]), 2)
    return None if ids is None else (ids[0], ids[1], parts[3])


async def direct(update: Update, context: Context) -> None:
    """Buttons done at once: Accept, In progress (again), Citizen confirmed, Could not reach."""
    query = update.callback_query
    assert query is not None
    parsed = _parse_card(query.data or "")
    if parsed is None or parsed[2] not in DIRECT_CODES:
        await stale_button(update)
        return
    case_id, version, code = parsed
    action = CARD_ACTIONS[code]
    try:
        await svc(context).cases.apply(case_id, action, actor(update),
                                       Change(outcome=OUTCOME_OF_CODE.get(code)), now(context),
                                       expected_version=version)
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return
    await query.answer(_done(action, case_id))
    if action is Action.VERIFY:  # the verification buttons have done their work
        await drop_buttons(query)


def _prompt_text(action: Action, code: str, who: str, n: int) -> str:
    if code == "dis":
        text = _("{who}, what does the citizen dispute about #{n}?")
    else:
        text = {
            Action.NEED_INFO: _("{who}, what information is needed for #{n}?"),
            Action.RETURN: _("{who}, why is #{n} not for your unit?"),
            Action.DECLINE: _("{who}, why is #{n} not for your institution?"),
            Action.RESOLVE: _("{who}, what was done to resolve #{n}? (at least 10 characters)"),
            Action.PROVIDE_INFO: _("{who}, your answer to the unit about #{n}?"),
            Action.REOPEN: _("{who}, why is #{n} reopened?"),
            Action.FORWARD: _("{who}, why does #{n} go to this institution?"),
            Action.SNOOZE: _("{who}, why should reminders about #{n} wait a day?"),
            Action.HELP: _("{who}, what help do you need with #{n}?"),
            Action.ACKNOWLEDGE: _("{who}, your institution's reference for #{n}? Reply with it, "
                                  "or with - if there is none."),
        }[action]
    return text.format(who=who, n=n) + " " + _("(/cancel to stop)")


def _parse_prompt(data: str) -> dict[str, Any] | None:
    """What a button that asks for words first stands for, or None when forged."""
    if data.startswith("ans:"):
        ids = parse_ids(data, 1)
        return {"case": ids[0], "version": None, "action": Action.PROVIDE_INFO.value,
                "code": "ans"} if ids else None
    if data.startswith("fw:"):
        ids = parse_ids(data, 2)
        return {"case": ids[0], "version": None, "action": Action.FORWARD.value, "code": "fw",
                "unit": ids[1]} if ids else None
    parsed = _parse_card(data)
    if parsed is None or parsed[2] in DIRECT_CODES:
        return None
    case_id, version, code = parsed
    return {"case": case_id, "version": version, "action": CARD_ACTIONS[code].value, "code": code}


async def start_prompt(update: Update, context: Context) -> int:
    """A button that needs words first (Need info, Not ours, Resolved…, Answer…, Decline,
    Citizen disputes…, Reopen…, an institution to forward to)."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    pending = _parse_prompt(query.data or "")
    services = svc(context)
    if pending is not None and "unit" in pending:
        unit = await services.units.by_id(pending["unit"])
        pending["unit_key"] = unit.key if unit is not None and unit.kind == "external" else None
        if pending["unit_key"] is None:
            pending = None
    if pending is None:
        await stale_button(update)
        return END
    action, case_id = Action(pending["action"]), int(pending["case"])
    who = actor(update)
    try:
        await services.cases.check(case_id, action, who, expected_version=pending["version"])
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return END
    await query.answer()
    context.user_data[_prompt_key(update)] = pending
    pending["who"] = f'<a href="tg://user?id={who.tg_id}">{escape(who.name)}</a>'
    await _ask(update, context, pending, _prompt_text(action, pending["code"], pending["who"], case_id))
    return ASK_TEXT


async def _ask(update: Update, context: Context, pending: dict[str, Any], text: str) -> None:
    """Ask for words with one message (ForceReply: the reply opens by itself); the question asked
    before, if any, is taken away: one question in the chat at a time."""
    await _clean(update, context, pending)
    sent = await reply(update, text, reply_markup=ForceReply(selective=True))
    pending["asked"] = sent.message_id if sent is not None else None


async def _clean(update: Update, context: Context, pending: dict[str, Any] | None) -> None:
    """Delete the question the bot asked (a message with ForceReply, which cannot be edited):
    once answered or cancelled it is noise in a busy group."""
    chat = update.effective_chat
    asked = pending.pop("asked", None) if pending else None
    if chat is None or not asked:
        return
    with contextlib.suppress(TelegramError):  # gone already, or too old for a bot to delete
        await context.bot.delete_message(chat.id, int(asked))


def _pending(update: Update, context: Context) -> dict[str, Any] | None:
    assert context.user_data is not None
    value = context.user_data.get(_prompt_key(update))
    return value if isinstance(value, dict) else None


async def got_text(update: Update, context: Context) -> int:
    """The words asked for; a photo or a document with a caption answers "what was done?" and
    brings its evidence at once."""
    pending = _pending(update, context)
    message = update.effective_message
    if pending is None or message is None:
        return END
    assert context.user_data is not None
    action = Action(pending["action"])
    text = (message.text or message.caption or "").strip()
    items = _evidence_of(message)  # kept with the change: evidence, or a file of a note
    try:
        svc(context).cases.check_text(action, text)
    except DomainError as exc:
        question = _prompt_text(action, pending["code"], pending.get("who", ""), int(pending["case"]))
        await _ask(update, context, pending,
                   exc.user_message() + " " + _("Please try again, or /cancel.") + "\n" + question)
        return ASK_TEXT
    await _clean(update, context, pending)
    pending["text"] = text
    if action is Action.RESOLVE and not items:
        sent = await message.reply_text(_evidence_question(pending),
                                        reply_markup=keyboard([[(_("Skip"), "ev:skip")]]))
        pending["status"] = sent.message_id  # edited as the answers come, into the confirmation
        return ASK_EVIDENCE
    if action is Action.FORWARD:
        if await ask_share(update, context, pending):
            context.user_data.pop(_prompt_key(update), None)  # the answer finishes it
            return END
        unit = await svc(context).units.by_key(pending["unit_key"])
        if unit.chat_id is None:
            channels = [c for c in FORWARD_CHANNELS if c != "telegram"]
            await message.reply_text(
                _("{unit} has no chat here. How was it sent?").format(unit=escape(unit.name)),
                reply_markup=keyboard([[(label(CHANNEL_LABELS, c), f"fc:{c}") for c in channels]]),
            )
            return ASK_CHANNEL
    return await _finish(update, context, pending, items)


def _evidence_question(pending: dict[str, Any], again: bool = False) -> str:
    lines = [_("#{n}: what was done: {text}").format(n=pending["case"], text=escape(pending["text"])),
             _("Evidence: reply to this message with a photo or a document, or tap Skip.")]
    if again:
        lines.append(_("Please send a photo or a document, or tap Skip."))
    return "\n".join(lines)


def _evidence_of(message: Message) -> tuple[AttachmentIn, ...]:
    if message.photo:
        return (AttachmentIn("photo", message.photo[-1].file_id),)
    if message.document:
        return (AttachmentIn("document", message.document.file_id, message.document.file_name),)
    return ()


async def got_channel(update: Update, context: Context) -> int:
    query = update.callback_query
    pending = _pending(update, context)
    assert query is not None
    channel = (query.data or "").removeprefix("fc:")
    if pending is None or channel not in FORWARD_CHANNELS:
        await stale_button(update)
        return END
    await query.answer()
    pending["channel"] = channel
    return await _finish(update, context, pending, ())


async def got_evidence(update: Update, context: Context) -> int:
    pending = _pending(update, context)
    message = update.effective_message
    if pending is None or message is None:
        return END
    items = _evidence_of(message)
    if not items:
        return await evidence_text(update, context)
    return await _finish(update, context, pending, items)


async def evidence_text(update: Update, context: Context) -> int:
    """Words where evidence is asked for: the question says so again (no new message)."""
    pending = _pending(update, context)
    chat = update.effective_chat
    if pending is None or chat is None:
        return END
    if pending.get("status"):
        try:
            await context.bot.edit_message_text(
                _evidence_question(pending, again=True), chat_id=chat.id,
                message_id=int(pending["status"]), reply_markup=keyboard([[(_("Skip"), "ev:skip")]]))
            return ASK_EVIDENCE
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return ASK_EVIDENCE
    await reply(update, _("Please send a photo or a document, or tap Skip."),
                [[(_("Skip"), "ev:skip")]])
    return ASK_EVIDENCE


async def skip_evidence(update: Update, context: Context) -> int:
    query = update.callback_query
    pending = _pending(update, context)
    assert query is not None
    if pending is None:
        await stale_button(update)
        return END
    await query.answer()
    return await _finish(update, context, pending, ())


async def _finish(
    update: Update, context: Context, pending: dict[str, Any], items: tuple[AttachmentIn, ...]
) -> int:
    """Do the change, and say so where the question was: the message that asked for evidence
    becomes the confirmation; otherwise, in a group, a reaction on the answer (the card shows
    the new state), and in a private chat a line."""
    assert context.user_data is not None
    context.user_data.pop(_prompt_key(update), None)
    action = Action(pending["action"])
    case_id = int(pending["case"])
    text, reference = pending["text"], None
    if action is Action.ACKNOWLEDGE:  # the answer is the institution's own reference, if any
        text, reference = "", (None if pending["text"].lower() in NO_REFERENCE else pending["text"])
    change = Change(text=text, attachments=items, unit_key=pending.get("unit_key"),
                    channel=pending.get("channel"), outcome=OUTCOME_OF_CODE.get(pending["code"]),
                    reference=reference)
    try:
        await svc(context).cases.apply(case_id, action, actor(update), change, now(context),
                                       expected_version=pending["version"])
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return END
    done = "✅ " + _done(action, case_id)
    if items and action is Action.RESOLVE:
        done += " " + ngettext("{n} file as evidence.", "{n} files as evidence.", len(items)).format(
            n=len(items))
    chat = update.effective_chat
    if pending.get("status") and chat is not None:
        try:
            await context.bot.edit_message_text(done, chat_id=chat.id,
                                                message_id=int(pending["status"]))
            return END
        except BadRequest:  # deleted meanwhile: say it anew
            pass
    elif update.callback_query is not None:  # a button (a channel): it becomes the confirmation
        await edit_text(update.callback_query, done)
        return END
    message = update.effective_message
    if message is not None and not is_private(update) and update.callback_query is None:
        try:
            await message.set_reaction([ReactionTypeEmoji("👌")])
            return END
        except TelegramError:  # reactions turned off in this group: say it in words
            pass
    await reply(update, done)
    return END


# --- sharing the request's files with another institution ------------------------------------

SHARE, KEEP, CANCEL = 1, 0, 2  # the answers to "share the request's files?"


def _share_key(update: Update) -> str:
    chat = update.effective_chat
    return f"share:{chat.id if chat else 0}"


async def ask_share(update: Update, context: Context, pending: dict[str, Any]) -> bool:
    """Before a forward to an institution with a chat here, when the case has files: ask whether
    they go too (the forward waits for the answer; see ``share_choice``). False: nothing to
    ask, the forward can be done at once. Another institution never gets the citizen's files
    unless the working group shares them."""
    assert context.user_data is not None
    services = svc(context)
    unit = await services.units.by_key(pending["unit_key"])
    case_id = int(pending["case"])
    if unit.kind != "external" or unit.chat_id is None:
        return False
    count = await services.cases.shareable_files(case_id)
    if not count:
        return False
    case = await services.cases.get(case_id)
    context.user_data[_share_key(update)] = {
        **pending, "version": case.version, "files": count, "unit_name": unit.name}
    await reply(update, ngettext(
        "Before #{n} goes to {unit}: share the request's file with them? Their card never "
        "shows the citizen's name and contact; the file goes only if you share it.",
        "Before #{n} goes to {unit}: share the request's {count} files with them? Their card "
        "never shows the citizen's name and contact; the files go only if you share them.",
        count).format(n=case_id, unit=escape(unit.name), count=count),
        [[(_("📎 Share files"), f"fs:{case_id}:{SHARE}"), (_("🚫 Don't share"), f"fs:{case_id}:{KEEP}")],
         [(_("✖️ Cancel"), f"fs:{case_id}:{CANCEL}")]])
    return True


async def share_choice(update: Update, context: Context) -> None:
    """``fs:<case>:<answer>``: the answer to ``ask_share``; the forward is done now, with the
    choice recorded in its event (or not at all: Cancel)."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    ids = parse_ids(query.data or "", 2)
    pending = context.user_data.get(_share_key(update))
    if ids is None or ids[1] not in (SHARE, KEEP, CANCEL) or not isinstance(pending, dict) or (
            int(pending["case"]) != ids[0]):
        await stale_button(update)
        return
    context.user_data.pop(_share_key(update), None)
    case_id, share = ids[0], ids[1] == SHARE
    if ids[1] == CANCEL:
        await query.answer()
        await edit_text(query, _("Cancelled. Nothing was changed."))
        return
    change = Change(text=pending["text"], unit_key=pending["unit_key"],
                    channel=pending.get("channel"), share_files=share)
    try:
        await svc(context).cases.apply(case_id, Action.FORWARD, actor(update), change,
                                       now(context), expected_version=pending["version"])
    except DomainError as exc:
        await _fail(update, context, exc, case_id)
        return
    await query.answer()
    count, unit = int(pending["files"]), escape(pending["unit_name"])
    told = (ngettext("The file went to {unit} with the card.",
                     "The {count} files went to {unit} with the card.", count)
            if share else _("The files stay with the working group.")).format(count=count, unit=unit)
    await edit_text(query, "✅ " + _done(Action.FORWARD, case_id) + " " + told)


async def cancel_prompt(update: Update, context: Context) -> int:
    assert context.user_data is not None
    pending = context.user_data.pop(_prompt_key(update), None)
    pending = pending if isinstance(pending, dict) else None
    await _clean(update, context, pending)
    chat = update.effective_chat
    if pending and pending.get("status") and chat is not None:
        try:  # the question for evidence says it was cancelled
            await context.bot.edit_message_text(_("Cancelled. Nothing was changed."), chat_id=chat.id,
                                                message_id=int(pending["status"]))
            return END
        except BadRequest:
            pass
    await reply(update, _("Cancelled. Nothing was changed."))
    return END


async def timed_out(update: object, context: Context) -> None:
    """Nobody answered within the conversation's time: the question is taken away."""
    if isinstance(update, Update) and context.user_data is not None:
        pending = context.user_data.pop(_prompt_key(update), None)
        await _clean(update, context, pending if isinstance(pending, dict) else None)


def prompt_conversation() -> ConversationHandler[Context]:
    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[
            CallbackQueryHandler(start_prompt,
                                 pattern=r"^c:[0-9]+:[0-9]+:(inf|ret|res|dec|dis|reo|snz|hlp|ack)$"),
            CallbackQueryHandler(start_prompt, pattern=r"^(ans|fw):"),
        ],
        states={
            ASK_TEXT: [MessageHandler(text | filters.PHOTO | filters.Document.ALL, got_text)],
            ASK_EVIDENCE: [
                MessageHandler(filters.PHOTO | filters.Document.ALL, got_evidence),
                MessageHandler(text, evidence_text),
                CallbackQueryHandler(skip_evidence, pattern=r"^ev:skip$"),
            ],
            ASK_CHANNEL: [CallbackQueryHandler(got_channel, pattern=r"^fc:")],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
        },
        fallbacks=[CommandHandler("cancel", cancel_prompt)],
        name="card-prompts",
        persistent=True,  # a pending "what was done?" survives a restart
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
        await stale_button(update)
        return
    try:
        case = await services.cases.apply(
            ids[0], Action.ASSIGN, actor(update), Change(unit_key=unit.key), now(context)
        )
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer()
    await edit_text(query, _("Case <b>#{n}</b> assigned to {unit}.").format(
        n=case.id, unit=escape(unit.name)))


async def assign_picker(update: Update, context: Context) -> None:
    """``ap:<case>:<node>:<page>``: browse the unit tree to pick where to assign."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 3)
    services = svc(context)
    if ids is None:
        await stale_button(update)
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
    await edit_text(query, _("Assign #{n}.").format(n=case_id) + " " + text,
                    reply_markup=keyboard(rows))


async def dead_button(update: Update, context: Context) -> None:
    """Any press nothing else took: an old or forged button."""
    query = update.callback_query
    if query is not None:
        await stale_button(update)


async def forward_picker(update: Update, context: Context) -> None:
    """``fp:<case>``: the institutions to forward to, as buttons."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 1)
    services = svc(context)
    if ids is None:
        await stale_button(update)
        return
    try:
        await services.cases.check(ids[0], Action.FORWARD, actor(update))
    except DomainError as exc:
        await refuse(update, exc)
        return
    rows = [[(u.name, f"fw:{ids[0]}:{u.id}")] for u in await services.units.institutions()]
    await query.answer()
    if not rows:
        await edit_text(query, _("No other institution is configured."))
        return
    await edit_text(query, _("Forward #{n} to which institution?").format(n=ids[0]),
                    reply_markup=keyboard(rows))


async def ask_citizen(update: Update, context: Context) -> None:
    """``ask:<case>``: under the unit's question, the working group passes it to the case's
    citizen (their answer comes back to the unit as the answer); Answer… stays."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 1)
    if ids is None:
        await stale_button(update)
        return
    try:
        await svc(context).cases.apply(ids[0], Action.ASK_CITIZEN, actor(update), Change(), now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer(_("#{n}: the question went to the citizen.").format(n=ids[0]))
    with contextlib.suppress(BadRequest):  # the Answer… button stays; this one has done its work
        await query.edit_message_reply_markup(keyboard([[(_("Answer…"), f"ans:{ids[0]}")]]))


async def update_status(update: Update, context: Context) -> None:
    """"Update status" under a reminder: the case card, with its buttons, in this chat."""
    query = update.callback_query
    assert query is not None
    ids = parse_ids((query.data or "").removesuffix(":upd"), 2)
    if ids is None:
        await stale_button(update)
        return
    try:
        await svc(context).cases.show_card(actor(update), ids[0], now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await query.answer()


def handlers() -> list[Any]:
    return [
        CallbackQueryHandler(update_status, pattern=r"^c:[0-9]+:[0-9]+:upd$"),
        CallbackQueryHandler(direct, pattern=r"^c:[0-9]+:[0-9]+:(acc|cfm|unr|rsm)$"),
        CallbackQueryHandler(forward_picker, pattern=r"^fp:"),
        CallbackQueryHandler(ask_citizen, pattern=r"^ask:"),
        CallbackQueryHandler(share_choice, pattern=r"^fs:"),
        CallbackQueryHandler(assign_button, pattern=r"^as:"),
        CallbackQueryHandler(assign_picker, pattern=r"^ap:"),
    ]
