"""**Submit a request**: a citizen's guided intake, one question at a time, buttons wherever
possible and Cancel at every step.

The privacy notice first (once: accepted, it is not asked again), then: what it is about (the
categories), where (the province, then its district), a one-line summary, details (may be
skipped), photos (may be skipped), their phone number through Telegram's own contact button (their
own only; may be skipped, with a word on what that means), a summary and **Send**. Send stores the
request (bot/domain/submissions.py) for the working group's queue; the half-done intake lives in
the database like /new's (bot/persistence.py) and survives a restart.

Callback data carries ids only (``ct:c:<category>``, ``ct:p:<province>``, ``ct:d:<district>``),
checked against the database on every press.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import CommandHandler, ConversationHandler, MessageHandler, filters

from bot.domain.outbox import Buttons
from bot.domain.submissions import Limit, LimitReached, Submissions
from bot.domain.units import Unit
from bot.handlers.citizen_gate import CITIZEN, CitizenButton
from bot.handlers.common import Context, drop_buttons, edit_text, now, reply, stale_button, svc
from bot.handlers.pickers import parse_ids
from bot.i18n import _, current_locale, use_locale
from bot.render import keyboard, when

PRIVACY, CATEGORY, PROVINCE, DISTRICT, SUMMARY, DETAILS, PHOTOS, CONTACT, CONFIRM = range(9)
END = ConversationHandler.END
DRAFT = "citizen_draft"
PAGE = 10            # provinces a page (Cambodia has 25)
MAX_PHOTOS = 10
SUMMARY_MIN, SUMMARY_MAX, DETAILS_MAX = 3, 200, 3000


@dataclass
class CitizenDraft:
    category_id: int | None = None  # None: "something else"
    province_id: int | None = None
    place_unit_id: int | None = None
    summary: str = ""
    details: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)  # (photo|document, Telegram file id)
    phone: str = ""
    contact_name: str = ""
    contact_asked: bool = False  # the contact keyboard is shown: Cancel takes it away


def _draft(context: Context) -> CitizenDraft:
    assert context.user_data is not None
    draft = context.user_data.get(DRAFT)
    if not isinstance(draft, CitizenDraft):
        draft = context.user_data[DRAFT] = CitizenDraft()
    return draft


def submissions(context: Context) -> Submissions:
    services = svc(context)
    return Submissions(services.db, services.citizens, services.requests,
                       services.settings.citizens, services.sender.wake)


def _cancel_row() -> list[tuple[str, str]]:
    return [(_("✖️ Cancel"), "ct:cancel")]


def menu_buttons() -> Buttons:
    return [[(_("📝 Submit a request"), "ct:new")], [(_("📋 My requests"), "ct:mine")]]


def limit_text(limit: Limit, context: Context) -> str:
    """The polite answer to a request past a limit, with what they can do."""
    settings = svc(context).settings
    if limit.kind == "open":
        return _("You have {n} requests still open, the most one person can have at a time. The "
                 "working group handles them first. You can follow them, or withdraw one you no "
                 "longer need, in My requests; then you can send a new one.").format(n=limit.count)
    assert limit.until is not None
    return _("You have sent {n} requests in the last {hours} hours, the most one person can send "
             "in that time. You can send a new one from {when}. Your requests already sent are in "
             "My requests.").format(n=limit.count, hours=settings.citizens.per_hours,
                                    when=when(limit.until, settings.tz))


# --- entry and the privacy notice -------------------------------------------------------------

async def start_request(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    await query.answer()
    desk = submissions(context)
    who = await desk.citizen(update.effective_user.id)
    if who is not None:
        limit = await desk.limit(who.id, now(context))
        if limit is not None:
            await reply(update, limit_text(limit, context), [[(_("📋 My requests"), "ct:mine")]])
            return END
    assert context.user_data is not None
    context.user_data[DRAFT] = CitizenDraft()
    if who is None or who.privacy_accepted_at is None:
        await reply(update, privacy_notice(), [[(_("✅ I agree"), "ct:agree")], _cancel_row()])
        return PRIVACY
    return await ask_category(update, context)


def privacy_notice() -> str:
    return _("<b>Before you send a request</b>\n"
             "To handle your request, we keep what you send: your Telegram name and id, your phone "
             "number if you share it, what you write and your photos. Only the ministry's working "
             "group and the office that handles your problem see them; they are never published. "
             "You can withdraw a request at any time, and have your data erased, in My requests. "
             "Do you agree?")


async def agree(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    await query.answer()
    await submissions(context).accept_privacy(update.effective_user.id, now(context),
                                              language=current_locale())
    await edit_text(query, privacy_notice() + "\n" + _("✅ You agreed."))
    return await ask_category(update, context)


# --- the questions ----------------------------------------------------------------------------

async def ask_category(update: Update, context: Context) -> int:
    cats = await svc(context).units.categories()
    pairs = [(c.name, f"ct:c:{c.id}") for c in cats] + [(_("Something else"), "ct:c:0")]
    rows: Buttons = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
    await reply(update, _("What is your request about?"), [*rows, _cancel_row()])
    return CATEGORY


async def got_category(update: Update, context: Context) -> int:
    ids = await _ids(update, 1)
    if ids is None:
        return CATEGORY
    cat = await svc(context).units.category(ids[0]) if ids[0] else None
    if ids[0] and cat is None:
        await stale_button(update)
        return CATEGORY
    _draft(context).category_id = cat.id if cat else None
    await _chosen(update, _("About: {v}").format(v=escape(cat.name if cat else _("Something else"))))
    return await ask_province(update, context)


async def _provinces(context: Context) -> list[Unit]:
    return [u for u in await svc(context).units.all() if u.kind == "province"]


async def ask_province(update: Update, context: Context, page: int = 0) -> int:
    provinces = await _provinces(context)
    pages = max(1, -(-len(provinces) // PAGE))
    page = min(max(page, 0), pages - 1)
    shown = [(u.name, f"ct:p:{u.id}") for u in provinces[page * PAGE:(page + 1) * PAGE]]
    rows: Buttons = [shown[i:i + 2] for i in range(0, len(shown), 2)]
    nav = []
    if page > 0:
        nav.append((_("◀ Prev"), f"ct:pp:{page - 1}"))
    if page < pages - 1:
        nav.append((_("Next ▶"), f"ct:pp:{page + 1}"))
    if nav:
        rows.append(nav)
    rows.append(_cancel_row())
    text = _("Where is the problem? Choose the province.")
    query = update.callback_query
    if query is not None and (query.data or "").startswith("ct:pp:"):
        await edit_text(query, text, reply_markup=keyboard(rows))
    else:
        await reply(update, text, rows)
    return PROVINCE


async def province_page(update: Update, context: Context) -> int:
    ids = await _ids(update, 1)
    if ids is None:
        return PROVINCE
    assert update.callback_query is not None
    await update.callback_query.answer()
    return await ask_province(update, context, ids[0])


async def got_province(update: Update, context: Context) -> int:
    ids = await _ids(update, 1)
    if ids is None:
        return PROVINCE
    province = next((u for u in await _provinces(context) if u.id == ids[0]), None)
    if province is None:
        await stale_button(update)
        return PROVINCE
    draft = _draft(context)
    draft.province_id = draft.place_unit_id = province.id
    await _chosen(update, _("Province: {v}").format(v=escape(province.name)))
    districts = await _districts(context, province.id)
    if not districts:
        return await ask_summary(update, context)
    pairs = [(u.name, f"ct:d:{u.id}") for u in districts]
    rows: Buttons = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
    rows.append([(_("The whole province / not sure"), "ct:d:0")])
    rows.append(_cancel_row())
    await reply(update, _("Which district of {province}?").format(province=escape(province.name)), rows)
    return DISTRICT


async def _districts(context: Context, province_id: int) -> list[Unit]:
    return [u for u in await svc(context).units.children(province_id) if u.kind == "district"]


async def got_district(update: Update, context: Context) -> int:
    ids = await _ids(update, 1)
    if ids is None:
        return DISTRICT
    draft = _draft(context)
    district = None
    if ids[0] and draft.province_id is not None:
        district = next((u for u in await _districts(context, draft.province_id) if u.id == ids[0]),
                        None)
        if district is None:
            await stale_button(update)
            return DISTRICT
    if district is not None:
        draft.place_unit_id = district.id
    await _chosen(update, _("District: {v}").format(
        v=escape(district.name if district else _("The whole province / not sure"))))
    return await ask_summary(update, context)


async def ask_summary(update: Update, context: Context) -> int:
    await reply(update, _("In one line: what is the problem?"), [_cancel_row()])
    return SUMMARY


async def got_summary(update: Update, context: Context) -> int:
    text = _text(update)
    if not SUMMARY_MIN <= len(text) <= SUMMARY_MAX:
        await reply(update, _("Please write the problem in one line, of {least} to {most} "
                              "characters.").format(least=SUMMARY_MIN, most=SUMMARY_MAX), [_cancel_row()])
        return SUMMARY
    _draft(context).summary = " ".join(text.split())
    await reply(update, _("Tell us more if you can: what happened, since when, who is affected. "
                          "Or tap Skip."), [[(_("Skip"), "ct:skip")], _cancel_row()])
    return DETAILS


async def got_details(update: Update, context: Context) -> int:
    text = _text(update)
    if len(text) > DETAILS_MAX:
        await reply(update, _("Please keep the details under {most} characters.").format(most=DETAILS_MAX),
                    [[(_("Skip"), "ct:skip")], _cancel_row()])
        return DETAILS
    _draft(context).details = text
    return await ask_photos(update, context)


async def skip_details(update: Update, context: Context) -> int:
    await _answered(update)
    _draft(context).details = ""
    return await ask_photos(update, context)


async def ask_photos(update: Update, context: Context) -> int:
    await reply(update, _("If you have photos of the problem, send them now, then tap Done. "
                          "Or tap Skip."), [[(_("Skip"), "ct:done")], _cancel_row()])
    return PHOTOS


async def got_photo(update: Update, context: Context) -> int:
    message = update.effective_message
    assert message is not None
    draft = _draft(context)
    if len(draft.files) < MAX_PHOTOS:
        if message.photo:
            draft.files.append(("photo", message.photo[-1].file_id))
        elif message.document:  # a photo sent as a file
            draft.files.append(("document", message.document.file_id))
    if len(draft.files) >= MAX_PHOTOS:
        text = _("That is {n} photos, the most for one request: tap Done.").format(n=MAX_PHOTOS)
    else:
        text = _("Photo received ({n}). Send more, or tap Done.").format(n=len(draft.files))
    await reply(update, text, [[(_("Done"), "ct:done")], _cancel_row()])
    return PHOTOS


async def photos_text(update: Update, context: Context) -> int:
    await reply(update, _("Please send a photo, or tap Done."), [[(_("Done"), "ct:done")], _cancel_row()])
    return PHOTOS


async def photos_done(update: Update, context: Context) -> int:
    await _answered(update)
    return await ask_contact(update, context)


def _contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(_("📱 Share my phone number"), request_contact=True)],
         [KeyboardButton(_("Skip")), KeyboardButton(_("Cancel"))]],
        resize_keyboard=True, one_time_keyboard=True)


async def ask_contact(update: Update, context: Context) -> int:
    chat = update.effective_chat
    assert chat is not None
    _draft(context).contact_asked = True
    await chat.send_message(
        _("So that the working group can call you, share your phone number with the button below. "
          "You can also skip this: then the working group may not be able to call you, and you "
          "will hear from us only here."), reply_markup=_contact_keyboard())
    return CONTACT


async def got_contact(update: Update, context: Context) -> int:
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.contact is not None and user is not None
    contact = message.contact
    chat = update.effective_chat
    assert chat is not None
    if contact.user_id != user.id:  # someone else's card: only their own number counts
        await chat.send_message(_("Please share your own number, with the button below."),
                                reply_markup=_contact_keyboard())
        return CONTACT
    draft = _draft(context)
    draft.phone = contact.phone_number.strip()[:40]
    draft.contact_name = " ".join(filter(None, [contact.first_name, contact.last_name]))[:200]
    await chat.send_message(_("Thank you: your number is {phone}.").format(phone=escape(draft.phone)),
                            reply_markup=ReplyKeyboardRemove())
    return await show_summary(update, context)


def _said(text: str, message: str) -> bool:
    """The citizen tapped the reply-keyboard button ``message`` (in either language)."""
    said = " ".join(text.split()).casefold()
    labels = set()
    for lang in ("en", "km"):
        with use_locale(lang):
            labels.add(_(message).casefold())
    return said in labels


async def contact_text(update: Update, context: Context) -> int:
    chat = update.effective_chat
    assert chat is not None
    text = _text(update)
    if _said(text, "Cancel"):
        return await cancel(update, context)
    if not _said(text, "Skip"):
        await chat.send_message(_("Please share your number with the button below, or tap Skip."),
                                reply_markup=_contact_keyboard())
        return CONTACT
    draft = _draft(context)
    draft.phone = draft.contact_name = ""
    await chat.send_message(_("No phone number: the working group may not be able to call you."),
                            reply_markup=ReplyKeyboardRemove())
    return await show_summary(update, context)


async def show_summary(update: Update, context: Context) -> int:
    services = svc(context)
    d = _draft(context)
    cat = await services.units.category(d.category_id) if d.category_id else None
    place = await services.units.by_id(d.place_unit_id) if d.place_unit_id else None
    province = await services.units.by_id(d.province_id) if d.province_id else None
    where = place.name if place else "—"
    if place is not None and province is not None and place.id != province.id:
        where = f"{place.name}, {province.name}"
    lines = [
        _("<b>Please check your request</b>"),
        _("About: {v}").format(v=escape(cat.name if cat else _("Something else"))),
        _("Where: {v}").format(v=escape(where)),
        _("Problem: {v}").format(v=escape(d.summary)),
        _("Details: {v}").format(v=escape(d.details) if d.details else "—"),
        _("Photos: {n}").format(n=len(d.files)),
        _("Phone: {v}").format(v=escape(d.phone) if d.phone else _("not shared")),
    ]
    await reply(update, "\n".join(lines), [[(_("✅ Send"), "ct:send")], _cancel_row()])
    return CONFIRM


async def send(update: Update, context: Context) -> int:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None and context.user_data is not None
    d = _draft(context)
    if d.place_unit_id is None or not d.summary:  # cannot be: the questions come in order
        await stale_button(update)
        return END
    text = d.summary + (f"\n\n{d.details}" if d.details else "")
    data: dict[str, Any] = {
        "category_id": d.category_id, "place_unit_id": d.place_unit_id, "summary": d.summary,
        "details": d.details, "files": [{"kind": kind, "file_id": f} for kind, f in d.files],
        "contact": d.phone,
    }
    try:
        await submissions(context).submit(
            user.id, update.update_id, now(context), name=d.contact_name or user.full_name,
            language=current_locale(), contact=d.phone, text=text, data=data)
    except LimitReached as exc:
        await query.answer()
        await edit_text(query, limit_text(exc.limit, context))
        context.user_data.pop(DRAFT, None)
        return END
    await query.answer()
    await drop_buttons(query)
    context.user_data.pop(DRAFT, None)
    await reply(update, _("Received. The working group will give it a case number; you will be "
                          "told here."), [[(_("📋 My requests"), "ct:mine")]])
    return END


async def cancel(update: Update, context: Context) -> int:
    assert context.user_data is not None
    draft = context.user_data.pop(DRAFT, None)
    query = update.callback_query
    if query is not None:
        await query.answer()
        await drop_buttons(query)
    text = _("Cancelled. Nothing was sent.")
    if isinstance(draft, CitizenDraft) and draft.contact_asked:
        chat = update.effective_chat
        assert chat is not None  # a message of its own takes the contact keyboard away
        await chat.send_message(text, reply_markup=ReplyKeyboardRemove())
        await reply(update, _("What would you like to do?"), menu_buttons())
    else:
        await reply(update, text, menu_buttons())
    return END


async def use_the_buttons(update: Update, context: Context) -> int | None:
    """Words where a button is expected: say so, the question stays."""
    await reply(update, _("Please choose with the buttons above, or tap Cancel."), [_cancel_row()])
    return None  # stay in the same state


# --- helpers ---------------------------------------------------------------------------------

async def _ids(update: Update, count: int) -> list[int] | None:
    """The ids in ``ct:<what>:<id>…``, or None (the press answered as stale)."""
    query = update.callback_query
    ids = parse_ids((query.data or "").removeprefix("ct:"), count) if query is not None else None
    if ids is None:
        await stale_button(update)
    return ids


async def _chosen(update: Update, text: str) -> None:
    """The pressed question becomes a record of the answer (no stale buttons left)."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    await edit_text(query, text)


async def _answered(update: Update) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await drop_buttons(query)


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "").strip() if message else ""


Restart = Callable[[Update, Context], Awaitable[object]]


def conversation(restart: Restart) -> ConversationHandler[Context]:
    """The intake; ``restart``: what /start shows (the welcome) once the intake is dropped."""

    async def start_again(update: Update, context: Context) -> int:
        assert context.user_data is not None
        draft = context.user_data.pop(DRAFT, None)
        if isinstance(draft, CitizenDraft) and draft.contact_asked:
            chat = update.effective_chat
            assert chat is not None
            await chat.send_message(_("Cancelled. Nothing was sent."), reply_markup=ReplyKeyboardRemove())
        await restart(update, context)
        return END

    text = CITIZEN & filters.TEXT & ~filters.COMMAND
    words_not_buttons = MessageHandler(CITIZEN & ~filters.COMMAND, use_the_buttons)
    states: dict[object, list[Any]] = {
        PRIVACY: [CitizenButton(agree, pattern=r"^ct:agree$"), words_not_buttons],
        CATEGORY: [CitizenButton(got_category, pattern=r"^ct:c:"), words_not_buttons],
        PROVINCE: [CitizenButton(province_page, pattern=r"^ct:pp:"),
                   CitizenButton(got_province, pattern=r"^ct:p:"), words_not_buttons],
        DISTRICT: [CitizenButton(got_district, pattern=r"^ct:d:"), words_not_buttons],
        SUMMARY: [MessageHandler(text, got_summary)],
        DETAILS: [MessageHandler(text, got_details), CitizenButton(skip_details, pattern=r"^ct:skip$")],
        PHOTOS: [MessageHandler(CITIZEN & (filters.PHOTO | filters.Document.IMAGE), got_photo),
                 MessageHandler(CITIZEN & ~filters.COMMAND, photos_text),
                 CitizenButton(photos_done, pattern=r"^ct:done$")],
        CONTACT: [MessageHandler(CITIZEN & filters.CONTACT, got_contact),
                  MessageHandler(CITIZEN & ~filters.COMMAND, contact_text)],
        CONFIRM: [CitizenButton(send, pattern=r"^ct:send$"), words_not_buttons],
    }
    return ConversationHandler(
        entry_points=[CitizenButton(start_request, pattern=r"^ct:new$")],
        states=states,
        fallbacks=[CitizenButton(cancel, pattern=r"^ct:cancel$"),
                   CommandHandler("cancel", cancel, filters=CITIZEN),
                   CommandHandler("start", start_again, filters=CITIZEN)],
        name="citizen_intake",
        persistent=True,  # a restart continues a half-done request (bot/persistence.py)
        allow_reentry=True,
        conversation_timeout=6 * 3600,
    )
