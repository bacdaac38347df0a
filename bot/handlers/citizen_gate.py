"""Who is a citizen, update by update: a person with no role writing to the bot in a private chat.

The gate (bot/handlers/basics.py ``every_update``) asks ``admit`` about each update from someone
it does not know in a private chat. What a citizen may send — a message, /start without an
invitation, /help, /cancel, a press of a citizen's button (``ct:`` here, ``cz:`` from their case's
news) — is marked as a citizen's update, in their language; anything else (a staff command) gets
the gate's "I don't know you yet" as before. /start with an invitation code is never a citizen's:
it goes on to the invitation.

Citizens' handlers match marked updates only (``CITIZEN`` for messages, ``CitizenButton`` for
presses), and they come first in their group with a catch-all at their end: a staff member's
update never reaches a citizen's handler, nor a citizen's a staff handler. The two never mix in
one chat, and a group chat has no citizen at all.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, filters

from bot.handlers.common import Context, svc
from bot.i18n import normalize, set_locale

PREFIXES = ("ct:", "cz:")  # the citizen's own buttons; cz: are their case's (design-17.md)
COMMANDS = ("start", "help", "cancel")

# The update being handled, when it is a citizen's (the object itself: never a stale mark).
_marked: ContextVar[Update | None] = ContextVar("casebot_citizen_update", default=None)


def is_citizens(update: object) -> bool:
    return isinstance(update, Update) and _marked.get() is update


class _CitizenFilter(filters.UpdateFilter):
    def filter(self, update: Update) -> bool:
        return is_citizens(update) and update.message is not None


CITIZEN = _CitizenFilter(name="citizen")  # a new message from a citizen (not an edit)


class CitizenButton(CallbackQueryHandler[Context, Any]):
    """A press of a citizen's button, by a citizen."""

    def check_update(self, update: object) -> Any:
        return super().check_update(update) if is_citizens(update) else None


class CitizenUpdate(BaseHandler[Update, Context, Any]):
    """Any citizen's update: the catch-all after the citizen's handlers."""

    def check_update(self, update: object) -> bool:
        return is_citizens(update)


_COMMAND = re.compile(r"/([A-Za-z0-9_]+)(?:@\S+)?(.*)", re.DOTALL)


def _wanted(update: Update) -> bool:
    query = update.callback_query
    if query is not None:
        return (query.data or "").startswith(PREFIXES)
    message = update.effective_message
    if message is None:
        return False
    command = _COMMAND.fullmatch(message.text or "")
    if command is None:
        return True  # words, a photo, a contact: theirs to say
    name, rest = command.group(1).lower(), command.group(2).strip()
    return name in COMMANDS and not (name == "start" and rest)


async def admit(update: Update, context: Context) -> bool:
    """Called by the gate for someone it does not know in a private chat: True (and the update
    marked as a citizen's, the language theirs) when it is for the citizens' handlers."""
    if not _wanted(update):
        return False
    _marked.set(update)
    set_locale(await language(update, context))
    return True


async def language(update: Update, context: Context) -> str:
    """The citizen's language: the one they chose, else their Telegram app's (Khmer or English),
    else the bot's default, as for everyone."""
    services = svc(context)
    user = update.effective_user
    assert user is not None
    who = await services.citizens.by_address("telegram", str(user.id))
    if who is not None and who.language and who.erased_at is None:
        return who.language
    return normalize(user.language_code, services.settings.default_language)
