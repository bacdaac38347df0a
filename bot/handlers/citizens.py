"""The Telegram citizen front: a person with no role writing to the bot in a private chat.

One bot, one token, for staff and citizens: citizens already know the ministry's bot by its name,
and a person is staff or citizen by their grants, checked on every update (bot/handlers/
citizen_gate.py), never by the chat they write in. What a citizen gets:

- /start: a short welcome with **Submit a request** (bot/handlers/citizen_intake.py) and **My
  requests**, a Khmer/English switch, and one line for staff who are not registered yet (their
  Telegram id, for the invitation).
- **My requests**: their requests and cases, where each stands in plain words (unit or institution
  names only), with **Status** and **Withdraw**, and **Erase my data** (each confirmed first;
  erasing is bot/domain/erasure.py's, through the conversation).
- Their words: the answer to a question or the reason of a "No" waiting for them, a case number
  (``#42``, ``42``, ``៤២``: its status when it is theirs), or else the menu
  (bot/domain/conversation.py decides).

The buttons carry ids only (``ct:s:<case>``, ``ct:w:<case>``, ``ct:wr:<request>``); the
conversation checks on every press that the case or request is the presser's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.domain.conversation import Reply, Route
from bot.domain.errors import DomainError
from bot.domain.model import AttachmentIn
from bot.domain.outbox import Buttons
from bot.handlers import citizen_intake
from bot.handlers.citizen_gate import CITIZEN, CitizenButton, CitizenUpdate
from bot.handlers.citizen_intake import menu_buttons, submissions
from bot.handlers.common import Context, drop_buttons, edit_text, now, reply, stale_button, svc
from bot.handlers.pickers import parse_ids
from bot.i18n import _, current_locale, set_locale
from bot.inputs import parse_case_number
from bot.render import keyboard, when

LANGUAGES = {"km": "ភាសាខ្មែរ", "en": "English"}


# --- the welcome ------------------------------------------------------------------------------

def welcome_text(tg_id: int) -> str:
    return "\n\n".join([
        _("Hello! Here you can send a request to the ministry's working group for public requests, "
          "and follow it until your problem is solved."),
        _("Staff: ask your administrator for an invitation; your Telegram id is {id}.").format(
            id=f"<code>{tg_id}</code>"),
    ])


def welcome_buttons() -> Buttons:
    other = "en" if current_locale() == "km" else "km"
    return [*menu_buttons(), [("🌐 " + LANGUAGES[other], f"ct:lang:{other}")]]


async def welcome(update: Update, context: Context) -> None:
    user = update.effective_user
    assert user is not None
    await reply(update, welcome_text(user.id), welcome_buttons())


async def switch_language(update: Update, context: Context) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    choice = (query.data or "").removeprefix("ct:lang:")
    if choice not in LANGUAGES:
        await stale_button(update)
        return
    await submissions(context).set_language(user.id, choice, now(context))
    set_locale(choice)
    await query.answer()
    await edit_text(query, welcome_text(user.id), reply_markup=keyboard(welcome_buttons()))


# --- My requests --------------------------------------------------------------------------------

async def my_requests(update: Update, context: Context) -> None:
    services = svc(context)
    user = update.effective_user
    assert user is not None
    if update.callback_query is not None:
        await update.callback_query.answer()
    who = await submissions(context).citizen(user.id)
    items = await services.conversation.my_requests(who.id) if who is not None else []
    if not items:  # a citizen who only accepted the notice may still have their record erased
        erase_row = [[(_("🗑 Erase my data"), "ct:erase")]] if who is not None else []
        await reply(update, _("You have not sent any request yet."), [*menu_buttons(), *erase_row])
        return
    lines = [_("<b>Your requests</b>")]
    rows: Buttons = []
    for i, item in enumerate(items, 1):
        mark = f"#{item.case_id}" if item.case_id is not None else f"({i})"
        received = when(item.received_at, services.settings.tz, with_time=False)
        lines.append(f"\n<b>{mark}</b> · {received} · {escape(item.text)}\n{escape(item.state)}")
        row: list[tuple[str, str]] = []
        if item.case_id is not None:
            row.append((_("🔎 {mark}").format(mark=mark), f"ct:s:{item.case_id}"))
            if item.open:
                row.append((_("↩️ Withdraw {mark}").format(mark=mark), f"ct:w:{item.case_id}"))
        elif item.open and item.request_id is not None:
            row.append((_("↩️ Withdraw {mark}").format(mark=mark), f"ct:wr:{item.request_id}"))
        if row:
            rows.append(row)
    rows.append([(_("📝 Submit a request"), "ct:new"), (_("🗑 Erase my data"), "ct:erase")])
    await reply(update, "\n".join(lines), rows)


async def status(update: Update, context: Context) -> None:
    ids = await _ids(update)
    who = await _citizen_or_stale(update, context, ids)
    if who is None or ids is None:
        return
    assert update.callback_query is not None
    await update.callback_query.answer()
    await _say(update, await svc(context).conversation.status(who, ids[0]))


async def ask_withdraw(update: Update, context: Context) -> None:
    """``ct:w:<case>`` / ``ct:wr:<request>``: are they sure? (checked again when they say yes)"""
    query = update.callback_query
    ids = await _ids(update)
    who = await _citizen_or_stale(update, context, ids)
    if who is None or ids is None or query is None:
        return
    request = (query.data or "").startswith("ct:wr:")
    if not await _theirs(context, who, request_id=ids[0] if request else None,
                         case_id=None if request else ids[0]):
        await stale_button(update)
        return
    await query.answer()
    if request:
        text = _("Withdraw this request? The working group will not work on it. You can send a new "
                 "request at any time.")
    else:
        text = _("Withdraw case #{n}? The work on it stops and the case is closed as withdrawn. "
                 "You can send a new request at any time.").format(n=ids[0])
    yes = f"ct:wry:{ids[0]}" if request else f"ct:wy:{ids[0]}"
    await reply(update, text, [[(_("Yes, withdraw it"), yes), (_("No, keep it"), "ct:keep")]])


async def withdraw(update: Update, context: Context) -> None:
    query = update.callback_query
    ids = await _ids(update)
    who = await _citizen_or_stale(update, context, ids)
    if who is None or ids is None or query is None:
        return
    conversation = svc(context).conversation
    try:
        if (query.data or "").startswith("ct:wry:"):
            said = await conversation.withdraw(who, request_id=ids[0], now=now(context))
        else:
            said = await conversation.withdraw(who, case_id=ids[0], now=now(context))
    except DomainError as exc:  # e.g. this very press handled before: already done
        await query.answer(exc.user_message()[:200], show_alert=True)
        return
    await query.answer()
    if said is not None:  # nothing changed: why
        await _say(update, said)
        return
    await drop_buttons(query)  # done: "withdrawn, as you asked" comes with the change (outbox)


async def ask_erase(update: Update, context: Context) -> None:
    """``ct:erase``: what erasing does, and are they sure?"""
    query = update.callback_query
    who = await _citizen_or_stale(update, context, [])
    if who is None or query is None:
        return
    await query.answer()
    await reply(update, _(
        "Erase your data? I erase your name, your phone number, what you wrote and your photos from "
        "all your requests and cases, and forget your Telegram account. The work on your open cases "
        "goes on, but the working group can no longer contact you, and you will not get news about "
        "them here any more. The case numbers stay in the ministry's figures, without anything about "
        "you. This cannot be undone."),
        [[(_("Yes, erase my data"), "ct:erasey"), (_("No, keep it"), "ct:keep")]])


async def erase(update: Update, context: Context) -> None:
    query = update.callback_query
    who = await _citizen_or_stale(update, context, [])
    if who is None or query is None:
        return
    try:
        said = await svc(context).conversation.erase(who, now(context))
    except DomainError as exc:  # e.g. this very press handled before: already done
        await query.answer(exc.user_message()[:200], show_alert=True)
        return
    assert context.user_data is not None
    context.user_data.clear()  # a half-done request of theirs, if any, goes too
    await query.answer()
    await drop_buttons(query)
    await _say(update, said)


async def keep(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(_("Nothing was changed."))
    await drop_buttons(query)


# --- their words ----------------------------------------------------------------------------

async def words(update: Update, context: Context) -> None:
    """A message outside the intake: an answer or a reason waiting for them, a case number, or
    else the menu."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    text = (message.text or message.caption or "").strip()
    attachments = [AttachmentIn("photo", message.photo[-1].file_id)] if message.photo else (
        [AttachmentIn("document", message.document.file_id, message.document.file_name)]
        if message.document else [])
    who = await submissions(context).citizen(user.id)
    if who is not None and (text or attachments):
        try:
            routed = await svc(context).conversation.route_text(who.id, text, now(context), attachments)
        except DomainError as exc:  # e.g. this very message handled before: already done
            await reply(update, exc.user_message())
            return
        if routed.route is not Route.NEW:
            if routed.reply is not None:
                await _say(update, routed.reply)
            return  # done: what follows comes with the change, through the outbox
    elif who is None and (n := parse_case_number(text)) is not None:
        await reply(update, _("I find no request of yours with the number #{n}.").format(n=n), menu_buttons())
        return
    await reply(update, _("To send a new request, tap Submit a request. To see where your requests "
                          "stand, tap My requests, or send a case number."), menu_buttons())


async def other(update: Update, context: Context) -> None:
    """Whatever else a citizen sends (an old button, an edited message): a stale button is
    answered, the rest is left alone."""
    if update.callback_query is not None:
        await stale_button(update)
        return
    if update.message is not None:
        await words(update, context)


# --- helpers ------------------------------------------------------------------------------------

async def _ids(update: Update) -> list[int] | None:
    """The id in ``ct:<what>:<id>``, or None (forged, malformed)."""
    query = update.callback_query
    return parse_ids((query.data or "").removeprefix("ct:"), 1) if query is not None else None


async def _citizen_or_stale(update: Update, context: Context, ids: list[int] | None) -> int | None:
    """The presser's citizen id; None (the press answered as stale) when the data is forged or
    they have no requests at all."""
    user = update.effective_user
    who = await submissions(context).citizen(user.id) if user is not None and ids is not None else None
    if who is None:
        await stale_button(update)
        return None
    return who.id


async def _theirs(context: Context, citizen_id: int, *, request_id: int | None = None,
                  case_id: int | None = None) -> bool:
    """Whether the request or case is the citizen's own (rights first, before asking anything)."""
    services = svc(context)
    if request_id is not None:
        request = await services.requests.get(request_id)
        return request is not None and request.citizen_id == citizen_id
    try:
        return case_id is not None and (await services.cases.get(case_id)).citizen_id == citizen_id
    except DomainError:  # no such case
        return False


async def _say(update: Update, said: Reply) -> None:
    """The conversation's plain text, for Telegram's HTML, with its choices."""
    await reply(update, escape(said.text, quote=False), said.choices)


def handlers(case_buttons: Sequence[Any] = ()) -> list[BaseHandler[Any, Any, Any]]:
    """The citizen's handlers, first in their group; each matches citizens' updates only, and the
    last one takes whatever else a citizen sends. ``case_buttons``: the ``cz:`` buttons of their
    cases' news (bot/handlers/citizen_buttons.py), before that last one."""
    return [
        citizen_intake.conversation(welcome),
        CommandHandler(["start", "help"], welcome, filters=CITIZEN),
        CitizenButton(switch_language, pattern=r"^ct:lang:"),
        CitizenButton(my_requests, pattern=r"^ct:mine$"),
        CitizenButton(status, pattern=r"^ct:s:"),
        CitizenButton(ask_withdraw, pattern=r"^ct:wr?:"),
        CitizenButton(withdraw, pattern=r"^ct:wr?y:"),
        CitizenButton(ask_erase, pattern=r"^ct:erase$"),
        CitizenButton(erase, pattern=r"^ct:erasey$"),
        CitizenButton(keep, pattern=r"^ct:keep$"),
        *case_buttons,
        CitizenUpdate(other),
    ]
