"""/new: the guided intake conversation, and "Create a case from this message" for forwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, time
from html import escape
from typing import Any

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.cases import AttachmentIn, Draft
from bot.domain.errors import DomainError, Forbidden, Invalid
from bot.domain.model import CaseView, Change
from bot.domain.requests import RequestDecided, RequestDecisions
from bot.domain.rules import PRIORITIES, SOURCES, UNFINISHED_STATUSES, Action
from bot.domain.search import CaseSearch
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
from bot.handlers.pickers import ROOT, parse_ids, unit_picker
from bot.i18n import N_, _, label
from bot.inputs import excerpt, parse_date
from bot.render import cut, status_label, when

# States, in the order the questions are asked.
SOURCE, CATEGORY, UNIT, SUMMARY, NAME, CONTACT, DESCRIPTION, ATTACH, CONFIRM, EDIT, RECEIVED = range(11)
ORDER = [SOURCE, CATEGORY, UNIT, SUMMARY, NAME, CONTACT, DESCRIPTION, ATTACH, CONFIRM]

DRAFT = "draft"
EDITING = "editing"
PREFILLED = "prefilled"  # a draft from a citizen's request: only what it lacks is asked
FORWARDS = "forwards"
MAX_ATTACHMENTS = 10
END = ConversationHandler.END


def _draft(context: Context) -> Draft:
    assert context.user_data is not None
    draft = context.user_data.get(DRAFT)
    if not isinstance(draft, Draft):
        draft = Draft()
        context.user_data[DRAFT] = draft
    return draft


# --- asking ------------------------------------------------------------------------------

async def ask_source(update: Update, context: Context) -> int:
    keys = list(SOURCES)
    rows = [[(label(SOURCES, k), f"ns:{k}") for k in keys[i:i + 2]] for i in range(0, len(keys), 2)]
    await reply(update, _("New case. Where did the request come from?"), rows)
    return SOURCE


async def ask_category(update: Update, context: Context) -> int:
    cats = await svc(context).units.categories()
    rows = [[(c.name, f"nc:{c.id}") for c in cats[i:i + 2]] for i in range(0, len(cats), 2)]
    await reply(update, _("Which category?"), rows)
    return CATEGORY


async def ask_unit(update: Update, context: Context, node: int = ROOT, page: int = 0) -> int:
    text, rows = await unit_picker(svc(context).units, node, page, "np", "nu", internal_only=True)
    query = update.callback_query
    if query is not None and query.data and query.data.startswith("np:"):
        await edit_text(query, text, reply_markup=_markup(rows))
    else:
        await reply(update, _("Which unit is concerned?") + "\n" + text, rows)
    return UNIT


def _markup(rows: list[list[tuple[str, str]]]) -> Any:
    from bot.render import keyboard

    return keyboard(rows)


async def ask_summary(update: Update, context: Context) -> int:
    await reply(update, _("Summary in one line: what is the problem? (/cancel to stop)"))
    return SUMMARY


async def ask_name(update: Update, context: Context) -> int:
    await reply(update, _("The citizen's name?"))
    return NAME


async def ask_contact(update: Update, context: Context) -> int:
    await reply(update, _("The citizen's contact (phone, Facebook profile…)?"),
                [[(_("Skip"), "nk:contact")]])
    return CONTACT


async def ask_description(update: Update, context: Context) -> int:
    draft = _draft(context)
    rows = [[(_("Keep the forwarded text"), "nk:keep")]] if draft.description else [
        [(_("Skip"), "nk:desc")]]
    await reply(update, _("Describe the request in detail."), rows)
    return DESCRIPTION


async def ask_attach(update: Update, context: Context) -> int:
    n = len(_draft(context).attachments)
    await reply(
        update,
        _("Send photos or documents now, then tap Done. Attached so far: {n}.").format(n=n),
        [[(_("Done"), "nd:done")]],
    )
    return ATTACH


async def ask_received(update: Update, context: Context) -> int:
    await reply(update, _("When did the citizen ask? Write the date as YYYY-MM-DD."))
    return RECEIVED


async def show_confirm(update: Update, context: Context) -> int:
    services = svc(context)
    d = _draft(context)
    cat = await services.units.category(d.category_id) if d.category_id else None
    unit = await services.units.by_id(d.place_unit_id) if d.place_unit_id else None
    tz = services.settings.tz
    lines = [
        _("<b>Check the new case</b>"),
        _("Source: {v}").format(v=label(SOURCES, d.source)),
        _("Received: {v}").format(v=when(d.received_at or now(context), tz)),
        _("Category: {v}").format(v=escape(cat.name if cat else "—")),
        _("Unit: {v}").format(v=escape(unit.name if unit else "—")),
        _("Priority: {v}").format(v=label(PRIORITIES, d.priority)),
        _("Summary: {v}").format(v=escape(d.summary)),
        _("Citizen: {v}").format(v=escape(d.citizen_name)),
        _("Contact: {v}").format(v=escape(d.citizen_contact or "—")),
        _("Description: {v}").format(v=escape(cut(d.description, 1500) or "—")),
        _("Attachments: {n}").format(n=len(d.attachments)),
    ]
    if d.request_id is not None:
        lines.append(_("From the citizen's request #{r}.").format(r=d.request_id))
    toggle = _("Mark normal") if d.priority == "urgent" else _("Mark urgent")
    first: list[tuple[str, str]] = [(_("✅ Create"), "nf:create")]
    duplicates = await CaseSearch(services.cases).duplicates(d)
    if duplicates:
        lines.append("")
    for dup in duplicates:  # an open case that looks like the same request: merge into it?
        why = _("the same contact") if dup.same_contact else _("a similar summary")
        lines.append("⚠️ " + _("Perhaps the same request as <b>#{n}</b> ({why}): {summary} · {status}").format(
            n=dup.case.id, why=why, summary=escape(cut(dup.case.summary, 80)),
            status=status_label(dup.case.status)))
        first.append((_("🔗 Merge into #{n}").format(n=dup.case.id), f"nm:{dup.case.id}"))
    rows = [
        first,
        [(_("✏️ Edit…"), "nf:edit"), (toggle, "nf:urgent")],
        [(_("✖️ Cancel"), "nf:cancel")],
    ]
    await reply(update, "\n".join(lines), rows)
    return CONFIRM


ASKERS: dict[int, Callable[[Update, Context], Awaitable[int]]] = {
    SOURCE: ask_source, CATEGORY: ask_category, UNIT: ask_unit, SUMMARY: ask_summary,
    NAME: ask_name, CONTACT: ask_contact, DESCRIPTION: ask_description, ATTACH: ask_attach,
    CONFIRM: show_confirm, RECEIVED: ask_received,
}


async def advance(update: Update, context: Context, done: int) -> int:
    """Ask the next question, or go back to the confirm screen when editing one field."""
    assert context.user_data is not None
    if context.user_data.get(EDITING):
        context.user_data[EDITING] = False
        return await show_confirm(update, context)
    nxt = ORDER[ORDER.index(done) + 1]
    if context.user_data.get(PREFILLED):
        nxt = _first_missing(_draft(context), nxt)
    return await ASKERS[nxt](update, context)


def _first_missing(draft: Draft, start: int) -> int:
    """From ``start`` on, the first question a request's draft has no answer to; the confirm
    screen when it has them all (contact, description and files are the request's own, perhaps
    none: Edit… changes them)."""
    filled = {SOURCE: True, CATEGORY: draft.category_id is not None,
              UNIT: draft.place_unit_id is not None, SUMMARY: bool(draft.summary),
              NAME: bool(draft.citizen_name)}
    for state in ORDER[ORDER.index(start):]:
        if not filled.get(state, True) or state == CONFIRM:
            return state
    return CONFIRM


async def _chosen(update: Update, label: str, value: str) -> None:
    """Turn the pressed prompt into a plain record of the answer (no stale buttons left)."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    await edit_text(query, f"{label}: <b>{escape(value)}</b>")


# --- entry points --------------------------------------------------------------------------

async def new(update: Update, context: Context) -> int:
    if not is_private(update):
        await reply(update, _("Use /new in a private chat with me: a case holds personal data."))
        return END
    if not await svc(context).cases.is_staff(actor(update)):
        await refuse(update, Forbidden())
        return END
    assert context.user_data is not None
    context.user_data[DRAFT] = Draft()
    context.user_data[EDITING] = False
    context.user_data[PREFILLED] = False
    return await ask_source(update, context)


async def offer_from_forward(update: Update, context: Context) -> None:
    """A forwarded message in private: offer to create a case from it."""
    message = update.effective_message
    assert message is not None and context.user_data is not None
    if not await svc(context).cases.is_staff(actor(update)):
        await refuse(update, Forbidden())
        return
    origin = message.forward_origin
    forwards: dict[int, dict[str, Any]] = context.user_data.setdefault(FORWARDS, {})
    forwards[message.message_id] = {
        "text": message.text or message.caption or "",
        "date": origin.date if origin else message.date,
        "attachments": _attachments_of(message),
    }
    while len(forwards) > 20:  # keep only the latest offers
        forwards.pop(next(iter(forwards)))
    await message.reply_text(
        _("Create a case from this message?"),
        reply_markup=_markup([[(_("Create a case from this message"), f"fwd:{message.message_id}")]]),
    )


async def new_from_forward(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and context.user_data is not None
    ids = parse_ids(query.data or "", 1)
    offer = context.user_data.get(FORWARDS, {}).get(ids[0]) if ids else None
    if offer is None:
        await query.answer(_("This offer has expired: forward the message again."), show_alert=True)
        return END
    if not await svc(context).cases.is_staff(actor(update)):
        await refuse(update, Forbidden())
        return END
    await query.answer()
    await drop_buttons(query)
    date: datetime = offer["date"]
    context.user_data[DRAFT] = Draft(
        source="telegram", received_at=date, description=offer["text"],
        attachments=list(offer["attachments"]),
    )
    context.user_data[EDITING] = False
    context.user_data[PREFILLED] = False
    await reply(update, _("New case from the forwarded message (received {when}).").format(
        when=when(date, svc(context).settings.tz)))
    return await ask_category(update, context)


async def new_from_request(update: Update, context: Context) -> int:
    """``rq:new:<request>`` (Create case, under a request in /inbox): the intake, filled from the
    request; only what it lacks is asked, then the confirm screen. Rights first, then the
    request still pending. In the working group's chat the intake goes on privately."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    ids = parse_ids((query.data or "").removeprefix("rq:"), 1)
    if ids is None:
        await stale_button(update)
        return END
    services = svc(context)
    decisions = RequestDecisions(services.db, services.cases, services.citizens)
    who = actor(update)
    try:
        if not is_private(update):
            await decisions.check(who, ids[0], now(context))
            await _continue_privately(update, context, ids[0])
            return END
        draft = await decisions.draft(who, ids[0], now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return END
    await query.answer()
    context.user_data[DRAFT] = draft
    context.user_data[EDITING] = False
    context.user_data[PREFILLED] = True
    await reply(update, _("New case from request #{r} ({source}, received {when}).").format(
        r=ids[0], source=label(SOURCES, draft.source),
        when=when(draft.received_at, services.settings.tz)))
    return await ASKERS[_first_missing(draft, CATEGORY)](update, context)


async def _continue_privately(update: Update, context: Context, request_id: int) -> None:
    """A case holds personal data and its intake asks questions: it is written in a private
    chat. The presser gets the Create case button there."""
    query = update.callback_query
    assert query is not None
    try:
        await context.bot.send_message(
            query.from_user.id, _("Request #{r}: create the case here.").format(r=request_id),
            reply_markup=_markup([[(_("📝 Create case"), f"rq:new:{request_id}")]]))
    except TelegramError:  # they never wrote to the bot privately
        await query.answer(_("Write to me privately first (/start), then press again."),
                           show_alert=True)
        return
    await query.answer(_("I wrote to you privately: create the case there."))


def _attachments_of(message: Message) -> list[AttachmentIn]:
    if message.photo:
        return [AttachmentIn("photo", message.photo[-1].file_id)]
    if message.document:
        return [AttachmentIn("document", message.document.file_id, message.document.file_name)]
    return []


# --- answers ------------------------------------------------------------------------------

async def got_source(update: Update, context: Context) -> int:
    key = (update.callback_query.data or "").removeprefix("ns:") if update.callback_query else ""
    if key not in SOURCES:
        return await _bad_button(update, context, SOURCE)
    _draft(context).source = key
    await _chosen(update, _("Source"), label(SOURCES, key))
    return await advance(update, context, SOURCE)


async def got_category(update: Update, context: Context) -> int:
    ids = parse_ids(update.callback_query.data or "", 1) if update.callback_query else None
    cat = await svc(context).units.category(ids[0]) if ids else None
    if cat is None:
        return await _bad_button(update, context, CATEGORY)
    _draft(context).category_id = cat.id
    await _chosen(update, _("Category"), cat.name)
    return await advance(update, context, CATEGORY)


async def browse_unit(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None
    ids = parse_ids(query.data or "", 2)
    if ids is None or (ids[0] != ROOT and await svc(context).units.by_id(ids[0]) is None):
        return await _bad_button(update, context, UNIT)
    await query.answer()
    return await ask_unit(update, context, ids[0], ids[1])


async def got_unit(update: Update, context: Context) -> int:
    ids = parse_ids(update.callback_query.data or "", 1) if update.callback_query else None
    unit = await svc(context).units.by_id(ids[0]) if ids else None
    if unit is None or unit.kind == "external":
        return await _bad_button(update, context, UNIT)
    _draft(context).place_unit_id = unit.id
    await _chosen(update, _("Unit"), unit.name)
    return await advance(update, context, UNIT)


async def _bad_button(update: Update, context: Context, state: int) -> int:
    if update.callback_query is not None:
        await stale_button(update)
    return state


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "").strip() if message else ""


# The typed answers: the draft's field, the length allowed, and what to say when it is not.
TEXT_STEPS: dict[int, tuple[str, int, int, str]] = {
    SUMMARY: ("summary", 3, 200, N_("A summary needs 3 to 200 characters; please try again.")),
    NAME: ("citizen_name", 1, 200, N_("A name needs 1 to 200 characters; please try again.")),
    CONTACT: ("citizen_contact", 0, 200, N_("A contact has at most 200 characters; please try again.")),
    DESCRIPTION: ("description", 0, 3000,
                  N_("A description has at most 3000 characters; please shorten it.")),
}


def got_text(state: int) -> Callable[[Update, Context], Coroutine[Any, Any, int]]:
    field, shortest, longest, problem = TEXT_STEPS[state]

    async def answer(update: Update, context: Context) -> int:
        text = _text(update)
        if not shortest <= len(text) <= longest:
            await reply(update, _(problem))
            return state
        setattr(_draft(context), field, text)
        return await advance(update, context, state)

    answer.__name__ = f"got_{field}"
    return answer


async def skip_contact(update: Update, context: Context) -> int:
    await _clear_buttons(update)
    _draft(context).citizen_contact = ""
    return await advance(update, context, CONTACT)


async def skip_or_keep_description(update: Update, context: Context) -> int:
    """Skip the description, or keep the forwarded text as it is."""
    await _clear_buttons(update)
    if update.callback_query and update.callback_query.data == "nk:desc":
        _draft(context).description = ""
    return await advance(update, context, DESCRIPTION)


async def _clear_buttons(update: Update) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await drop_buttons(query)


async def got_attachment(update: Update, context: Context) -> int:
    message = update.effective_message
    assert message is not None
    draft = _draft(context)
    if len(draft.attachments) >= MAX_ATTACHMENTS:
        await reply(update, _("At most {n} attachments; tap Done.").format(n=MAX_ATTACHMENTS),
                    [[(_("Done"), "nd:done")]])
        return ATTACH
    draft.attachments.extend(_attachments_of(message))
    await reply(update, _("Attached ({n}). Send more, or tap Done.").format(n=len(draft.attachments)),
                [[(_("Done"), "nd:done")]])
    return ATTACH


async def attach_text(update: Update, context: Context) -> int:
    await reply(update, _("Please send a photo or a document, or tap Done."),
                [[(_("Done"), "nd:done")]])
    return ATTACH


async def attach_done(update: Update, context: Context) -> int:
    await _clear_buttons(update)
    return await advance(update, context, ATTACH)


async def got_received(update: Update, context: Context) -> int:
    text = _text(update)
    tz = svc(context).settings.tz
    day = parse_date(text)
    if day is None:
        await reply(update, _("“{v}” is not a date like 2026-04-30; please try again.").format(
            v=excerpt(text)))
        return RECEIVED
    received = datetime.combine(day, time(12, 0), tzinfo=tz)
    if received.date() > now(context).astimezone(tz).date():
        await reply(update, _("The date cannot be in the future; please try again."))
        return RECEIVED
    _draft(context).received_at = received
    assert context.user_data is not None
    context.user_data[EDITING] = False
    return await show_confirm(update, context)


# --- confirm and edit ------------------------------------------------------------------------

EDIT_FIELDS: dict[str, tuple[str, int]] = {
    "source": ("Source", SOURCE), "received": ("Received", RECEIVED),
    "category": ("Category", CATEGORY), "unit": ("Unit", UNIT), "summary": ("Summary", SUMMARY),
    "name": ("Citizen", NAME), "contact": ("Contact", CONTACT),
    "description": ("Description", DESCRIPTION), "attachments": ("Attachments", ATTACH),
}


async def confirm_action(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and context.user_data is not None
    choice = (query.data or "").removeprefix("nf:")
    services = svc(context)
    draft = _draft(context)
    if choice == "urgent":
        draft.priority = "normal" if draft.priority == "urgent" else "urgent"
        await query.answer(label(PRIORITIES, draft.priority))
        await drop_buttons(query)
        return await show_confirm(update, context)
    if choice == "cancel":
        await query.answer()
        await drop_buttons(query)
        return await cancel(update, context)
    if choice == "edit":
        await query.answer()
        await drop_buttons(query)
        labels = {
            "source": _("Source"), "received": _("Received"), "category": _("Category"),
            "unit": _("Unit"), "summary": _("Summary"), "name": _("Citizen"),
            "contact": _("Contact"), "description": _("Description"),
            "attachments": _("Attachments"),
        }
        keys = list(EDIT_FIELDS)
        rows = [[(labels[k], f"ne:{k}") for k in keys[i:i + 3]] for i in range(0, len(keys), 3)]
        await reply(update, _("What do you want to change?"), rows)
        return EDIT
    if choice != "create":
        return await _bad_button(update, context, CONFIRM)
    try:
        case = await services.cases.create(actor(update), draft, now(context))
    except RequestDecided as exc:  # decided meanwhile (another member, another press)
        await refuse(update, exc)
        await drop_buttons(query)
        context.user_data.pop(DRAFT, None)
        return END
    except DomainError as exc:
        await refuse(update, exc)
        return CONFIRM
    await query.answer()
    await drop_buttons(query)
    context.user_data.pop(DRAFT, None)
    await reply(update, _("Case <b>#{n}</b> created. Assign it now?").format(n=case.id),
                _assign_rows(case))
    return END


async def merge_draft(update: Update, context: Context) -> int:
    """``nm:<case>``: the request is one an open case already has: create it and merge it into
    that case at once (its citizen, contact and files go over; the history of both says so)."""
    query = update.callback_query
    assert query is not None and context.user_data is not None
    ids = parse_ids(query.data or "", 1)
    if ids is None:
        return await _bad_button(update, context, CONFIRM)
    services = svc(context)
    who, into = actor(update), ids[0]
    try:  # the case to merge into is checked before anything is created
        target = await services.cases.get(into)
        if target.status not in UNFINISHED_STATUSES:
            raise Invalid(_("Case #{n} is finished: merge into a case still being handled.").format(
                n=into))
        case = await services.cases.create(who, _draft(context), now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return CONFIRM
    await query.answer()
    await drop_buttons(query)
    context.user_data.pop(DRAFT, None)
    try:
        await services.cases.apply(case.id, Action.MERGE, who, Change(into=into), now(context))
    except DomainError as exc:  # created, but not merged: say so, and offer what /new offers
        await reply(update, _("Case <b>#{n}</b> created, but not merged: {why}").format(
            n=case.id, why=exc.user_message()), _assign_rows(case))
        return END
    await reply(update, _("Case <b>#{n}</b> created and merged into <b>#{into}</b>: its citizen, "
                          "contact and files are on #{into} now.").format(n=case.id, into=into))
    return END


def _assign_rows(case: CaseView) -> list[list[tuple[str, str]]]:
    return [
        [(_("Assign to {unit}").format(unit=case.place), f"as:{case.id}:{case.place_unit_id}")],
        [(_("Assign to another unit…"), f"ap:{case.id}:{ROOT}:0")],
        [(_("Forward to another institution…"), f"fp:{case.id}")],
    ]


async def edit_field(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and context.user_data is not None
    key = (query.data or "").removeprefix("ne:")
    if key not in EDIT_FIELDS:
        return await _bad_button(update, context, EDIT)
    await query.answer()
    await drop_buttons(query)
    context.user_data[EDITING] = True
    state = EDIT_FIELDS[key][1]
    if state == ATTACH:
        _draft(context).attachments.clear()
    return await ASKERS[state](update, context)


async def cancel(update: Update, context: Context) -> int:
    assert context.user_data is not None
    context.user_data.pop(DRAFT, None)
    context.user_data[EDITING] = False
    context.user_data[PREFILLED] = False
    await reply(update, _("Cancelled. Nothing was saved."))
    return END


def conversation() -> ConversationHandler[Context]:
    text = filters.TEXT & ~filters.COMMAND
    files = filters.PHOTO | filters.Document.ALL
    states: dict[object, list[Any]] = {
        SOURCE: [CallbackQueryHandler(got_source, pattern=r"^ns:")],
        CATEGORY: [CallbackQueryHandler(got_category, pattern=r"^nc:")],
        UNIT: [
            CallbackQueryHandler(browse_unit, pattern=r"^np:"),
            CallbackQueryHandler(got_unit, pattern=r"^nu:"),
        ],
        SUMMARY: [MessageHandler(text, got_text(SUMMARY))],
        NAME: [MessageHandler(text, got_text(NAME))],
        CONTACT: [MessageHandler(text, got_text(CONTACT)),
                  CallbackQueryHandler(skip_contact, pattern=r"^nk:contact$")],
        DESCRIPTION: [MessageHandler(text, got_text(DESCRIPTION)),
                      CallbackQueryHandler(skip_or_keep_description, pattern=r"^nk:(desc|keep)$")],
        ATTACH: [MessageHandler(files, got_attachment),
                 MessageHandler(text, attach_text),
                 CallbackQueryHandler(attach_done, pattern=r"^nd:")],
        CONFIRM: [CallbackQueryHandler(confirm_action, pattern=r"^nf:"),
                  CallbackQueryHandler(merge_draft, pattern=r"^nm:")],
        EDIT: [CallbackQueryHandler(edit_field, pattern=r"^ne:")],
        RECEIVED: [MessageHandler(text, got_received)],
    }
    return ConversationHandler(
        entry_points=[
            CommandHandler("new", new),
            CallbackQueryHandler(new_from_forward, pattern=r"^fwd:"),
            CallbackQueryHandler(new_from_request, pattern=r"^rq:new:"),
        ],
        states=states,
        fallbacks=[CommandHandler("cancel", cancel)],
        name="intake",
        persistent=True,  # a restart continues a half-done intake (bot/persistence.py)
        allow_reentry=True,
        conversation_timeout=3600,
    )


def forward_handler() -> MessageHandler[Context, None]:
    return MessageHandler(filters.FORWARDED & filters.ChatType.PRIVATE, offer_from_forward)
