"""Helpers shared by the Telegram adapters: services, the actor, parsing and replies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from telegram import CallbackQuery, ForceReply, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.app import SERVICES, Services
from bot.domain.access import AccessLog
from bot.domain.cases import Actor
from bot.domain.errors import DomainError, Invalid
from bot.domain.outbox import Buttons
from bot.i18n import _
from bot.inputs import excerpt, parse_case_number, parse_person, plain_text
from bot.render import keyboard, split_message

Context = ContextTypes.DEFAULT_TYPE
ReplyMarkup = ForceReply | InlineKeyboardMarkup


def svc(context: Context) -> Services:
    services: Services = context.application.bot_data[SERVICES]
    return services


def access_log(services: Services) -> AccessLog:
    """Who saw which case's personal data (bot/domain/access.py)."""
    return AccessLog(services.db, services.units, services.people)


def now(context: Context) -> datetime:
    return svc(context).clock()


def actor(update: Update) -> Actor:
    user = update.effective_user
    assert user is not None
    chat = update.effective_chat
    return Actor(user.id, user.full_name, chat.id if chat else None)


class UsageError(Invalid):
    """A malformed command: one sentence and the usage line."""

    def __init__(self, problem: str, usage: str) -> None:
        label = _("Usage:")  # outside the f-string, or the extractor does not see it
        usage = _(usage)  # the argument names in the reader's language
        super().__init__(f"{problem}\n{label} <code>{escape(usage)}</code>")


def case_arg(args: list[str], usage: str) -> int:
    if not args:
        raise UsageError(_("Which case? Give its number."), usage)
    number = parse_case_number(args[0])
    if number is None:
        raise UsageError(_("“{arg}” is not a case number.").format(arg=excerpt(args[0])), usage)
    return number


def person_arg(text: str, usage: str) -> str:
    """Someone named in a command (@username or Telegram id), checked before the domain looks
    them up: anything else gets the usage line."""
    if parse_person(text) is None:
        raise UsageError(_("“{arg}” is not a @username or a Telegram id.").format(arg=excerpt(text)),
                         usage)
    return text


async def reply(
    update: Update, text: str, buttons: Buttons | None = None,
    reply_markup: ReplyMarkup | None = None,
) -> Message | None:
    """Reply in the chat the update came from, splitting long texts; the buttons (or another
    markup, such as ForceReply) go on the last part."""
    chat = update.effective_chat
    if chat is None:
        return None
    parts = split_message(text)
    markup = reply_markup or keyboard(buttons)
    sent: Message | None = None
    for i, part in enumerate(parts):
        sent = await chat.send_message(part, reply_markup=markup if i == len(parts) - 1 else None)
    return sent


async def refuse(update: Update, error: DomainError) -> None:
    """Answer a refused action: a toast for a button, a message for a command."""
    query = update.callback_query
    if query is not None:  # a toast is plain text, of at most 200 characters
        await query.answer(plain_text(error.user_message())[:200], show_alert=True)
    else:
        await reply(update, error.user_message())


def is_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == "private"


async def button_ids(update: Update, count: int) -> list[int] | None:
    """The ids a pressed button carries (bot/handlers/pickers.py ``parse_ids``); None, the press
    answered as a stale button, when the data is forged or malformed."""
    from bot.handlers.pickers import parse_ids

    query = update.callback_query
    ids = parse_ids(query.data or "", count) if query is not None else None
    if ids is None:
        await stale_button(update)
    return ids


async def stale_button(update: Update) -> None:
    """A press on an old, expired or forged button: one sentence, nothing changes."""
    if update.callback_query is not None:
        await update.callback_query.answer(_("That button is not valid any more."), show_alert=True)


def _not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in exc.message.lower()


async def edit_text(
    query: CallbackQuery, text: str, reply_markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Show ``text`` in the message whose button was pressed. A second press of the same button
    (a double tap, or a page that is already shown) leaves it as it is, which Telegram reports
    as an error: it is none."""
    try:
        await query.edit_message_text(text, reply_markup=reply_markup)
    except BadRequest as exc:
        if not _not_modified(exc):
            raise


async def drop_buttons(query: CallbackQuery) -> None:
    """Take the buttons off the pressed message (they may be gone already: a second press)."""
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        if not _not_modified(exc):
            raise


def page_buttons(data: Callable[[int], str], page: int, pages: int) -> Buttons | None:
    """‹ Prev / Next › under a page of a list; ``data(n)``: the callback data of page n."""
    nav = []
    if page > 0:
        nav.append((_("‹ Prev"), data(page - 1)))
    if page < pages - 1:
        nav.append((_("Next ›"), data(page + 1)))
    return [nav] if nav else None


async def show_page(update: Update, text: str, buttons: Buttons | None) -> None:
    """A page of a list: edited in place under a pressed ‹ › button, else sent as a reply."""
    query = update.callback_query
    if query is not None:
        await query.answer()
        await edit_text(query, text, reply_markup=keyboard(buttons))
    else:
        await reply(update, text, buttons)
