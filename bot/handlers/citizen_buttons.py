"""The citizen's buttons on Telegram (``cz:…``: Yes / No, because… / Answer / Withdraw / Status)
and their words when their case waits for them (an answer to the unit's question, the reason of
their "No"): parsed here, done by bot/domain/conversation.py, which checks every press again.

A citizen is someone the bot knows as one (``citizens``, channel telegram, their user id), in their
private chat with the bot; staff never are. What follows a change (the news) reaches them through
the outbox; a press is answered with a short toast, and a word that changed nothing with a
message."""

from __future__ import annotations

import contextlib
import html

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler

from bot.domain.citizens import Citizen
from bot.domain.conversation import parse_choice
from bot.handlers.common import Context, is_private, now, reply, stale_button, svc
from bot.i18n import _, use_locale
from bot.render import keyboard

TOAST_MAX = 200  # characters Telegram shows in a button's answer


async def citizen_of(update: Update, context: Context) -> Citizen | None:
    """The citizen writing in their private chat with the bot, or None."""
    user = update.effective_user
    if user is None or not is_private(update):
        return None
    who = await svc(context).citizens.by_address("telegram", str(user.id))
    return who if who is not None and who.erased_at is None else None


def _lang(context: Context, who: Citizen) -> str:
    return who.language or svc(context).settings.default_language


async def press(update: Update, context: Context) -> None:
    """``cz:<code>:<case>[:<version>]``."""
    query = update.callback_query
    assert query is not None
    who = await citizen_of(update, context)
    choice = parse_choice(query.data or "")
    if who is None or choice is None:
        await stale_button(update)
        return
    answer = await svc(context).conversation.press(who.id, query.data or "", now(context))
    with use_locale(_lang(context, who)):
        if answer is not None:  # nothing changed: say why, the whole of it in the chat
            await query.answer(answer.text[:TOAST_MAX], show_alert=len(answer.text) > 60)
            if len(answer.text) > TOAST_MAX or answer.choices:
                await reply(update, _escape(answer.text), answer.choices)
            return
        await query.answer(_("Thank you."))
    if choice.code in ("y", "n", "w"):  # done: these buttons can do nothing more
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(keyboard(None))


def _escape(text: str) -> str:
    """A plain text of the conversation, for Telegram's HTML."""
    return html.escape(text, quote=False)


def handlers() -> list[object]:
    return [CallbackQueryHandler(press, pattern=r"^cz:")]
