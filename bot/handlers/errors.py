"""The one error handler: log without personal data or the token, and tell the user."""

from __future__ import annotations

import logging
import traceback

from telegram import Update
from telegram.error import BadRequest, NetworkError

from bot.attempts import current_attempt, describe
from bot.handlers.common import Context
from bot.i18n import _

log = logging.getLogger("bot.errors")


async def on_error(update: object, context: Context) -> None:
    error = context.error
    attempt = current_attempt.get()
    if attempt is not None and error is not None:
        attempt.error = error  # the inbox tries the update again, or parks it after the last try
        if not attempt.final:
            log.warning("update failed (%s); trying it again", describe(error))
            return
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        # Telegram unreachable or slow: PTB retries polling by itself.
        log.warning("network error: %s", type(error).__name__)
        return
    where = ""
    if isinstance(update, Update):
        where = f"update {update.update_id}"
    # Only the type and the traceback of our code: messages may quote user text, so no str(error).
    frames = "".join(traceback.format_tb(error.__traceback__)) if error else ""
    log.error("unhandled %s in %s\n%s", type(error).__name__, where or "a job", frames)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(_("Sorry, something went wrong."), show_alert=True)
            else:
                await update.effective_chat.send_message(
                    _("Sorry, something went wrong. Nothing was changed; please try again.")
                )
        except Exception:  # the error handler must never raise
            log.warning("could not tell the user about the error")
