"""The one error handler: log without personal data or the token, and tell the user the truth.

When a change was committed while handling the update (``changed_here``) or the failure was in
talking to Telegram (a reply refused, timed out or rate-limited), the change may well stand: the
user is told to check before trying again, not that nothing was changed (which invites a
duplicate). Only an error of our own code before any change gets "Nothing was changed"."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.attempts import current_attempt, describe
from bot.domain.outbox import changed_here
from bot.handlers.common import Context, now, svc
from bot.i18n import _

log = logging.getLogger("bot.errors")


def _seconds(error: RetryAfter) -> float:
    delay = error.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


async def on_error(update: object, context: Context) -> None:
    error = context.error
    attempt = current_attempt.get()
    retrying = False  # the inbox tries the update again (bot/service.py); the user is told at the last
    if attempt is not None and error is not None and not isinstance(error, Forbidden):
        attempt.error = error
        retrying = attempt.retrying(error)
    again = "; trying it again" if retrying else ""
    where = f"update {update.update_id}" if isinstance(update, Update) else "a job"
    if not isinstance(update, Update) and isinstance(error, NetworkError) and not isinstance(
            error, BadRequest):
        # Telegram unreachable or slow while polling: PTB retries by itself.
        log.warning("network error: %s", type(error).__name__)
        return
    # Only the type and the traceback of our code: messages may quote user text, so no str(error).
    if isinstance(error, RetryAfter):  # handled: one line, no traceback
        log.warning("Telegram asked to wait %g s (429) while answering %s%s", _seconds(error), where,
                    again)
    elif isinstance(error, Forbidden):
        log.warning("could not answer %s: the bot was blocked or removed", where)
        return  # nobody to tell
    elif isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        log.warning("network error (%s) while answering %s%s", type(error).__name__, where, again)
    elif retrying and error is not None:
        log.warning("%s in %s%s", describe(error), where, again)
    else:
        frames = "".join(traceback.format_tb(error.__traceback__)) if error else ""
        log.error("unhandled %s in %s\n%s", type(error).__name__, where, frames)
    if retrying:
        return
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    telegram_failed = isinstance(error, TelegramError)
    if changed_here() or telegram_failed:
        text = _("Sorry, I could not reply, but your change may have been recorded. "
                 "Check with /case before trying again.")
    else:
        text = _("Sorry, something went wrong. Nothing was changed; please try again.")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
            return
        if not telegram_failed:  # Telegram works: answer at once
            await update.effective_chat.send_message(text)
            return
    except Exception:  # the error handler must never raise
        log.warning("could not tell the user about the error")
        return
    # Telegram refused or did not take the reply: the outbox retries, paced and in order.
    try:
        services = svc(context)
        await services.outbox.queue_texts([update.effective_chat.id], text, now(context))
        services.sender.wake()
    except Exception:
        log.warning("could not tell the user about the error")
