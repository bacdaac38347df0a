"""Telegram adapters: parse the update, call the domain, render. No SQL here."""

from __future__ import annotations

import warnings
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, TypeHandler
from telegram.warnings import PTBUserWarning

from bot.handlers import (
    accesslog,
    basics,
    cards,
    citizen_buttons,
    citizens,
    commands,
    digest,
    erasure,
    importing,
    intake,
    people,
    queue,
    replies,
    reports,
    search,
)
from bot.handlers.errors import on_error
from bot.handlers.flood import FloodGuard

FLOOD = "flood"


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    # Group -2 before all: one person writing faster than a person can is slowed, alone.
    guard = app.bot_data[FLOOD] = FloodGuard(app.bot_data["settings"].flood)
    app.add_handler(TypeHandler(Update, guard.on_update), group=-2)
    # Group -1 next for every update: language and who is who.
    app.add_handler(TypeHandler(Update, basics.every_update), group=-1)
    with warnings.catch_warnings():
        # Our conversations follow a person in a chat across several messages on purpose
        # (per_message=False); PTB warns about that choice.
        warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
        # A citizen's handlers first: they match only citizens' updates (bot/handlers/citizen_gate.py),
        # and the last of them takes whatever else a citizen sends, so staff handlers never see one.
        citizen = citizens.handlers(citizen_buttons.handlers())
        conversations = [intake.conversation(), cards.prompt_conversation(),
                         queue.conversation()]
    for handler in [
        *citizen,
        *conversations,
        intake.forward_handler(),
        *importing.handlers(),
        replies.handler(),
        CommandHandler("start", basics.start),
        CommandHandler("help", basics.help_command),
        CommandHandler("bindchat", basics.bindchat),
        CommandHandler("units", basics.units),
        CommandHandler("lang", basics.lang),
        CallbackQueryHandler(basics.lang, pattern=r"^lang:(km|en)$"),
        *cards.handlers(),
        *commands.handlers(),
        *people.handlers(),
        *accesslog.handlers(),
        *search.handlers(),
        *reports.handlers(),
        *digest.handlers(),
        *erasure.handlers(),
        *queue.handlers(),
        CommandHandler("cancel", basics.nothing_to_cancel),
        CallbackQueryHandler(cards.dead_button),
    ]:
        app.add_handler(handler)
    app.add_error_handler(on_error)
