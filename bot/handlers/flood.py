"""Flooding: a person who writes faster than a person can is slowed, politely, and alone.

Every person has an allowance (a token bucket): ``burst`` updates at once, coming back at
``per_minute``. An update beyond it gets one "please slow down" (the answer to a button press), then
everything the person sends is ignored, unanswered and changing nothing, for ``quiet_seconds``,
while the allowance keeps coming back (with the defaults, all of it by the end). Nobody else is
touched: the allowance is per person, whatever the chat.

The defaults (burst 20, 30 a minute, 60 s quiet) stay out of an honest official's way: the
quickest things a person does send at most about ten updates at once (an album is at most 10
photos; a handful of forwarded messages; a few quick taps through a menu), and a person who
reads each answer before the next tap sends one every few seconds at most, well under one
every 2 seconds kept up for minutes. A script, or a person holding down a key, goes past it in
seconds. The forward offers keep the latest 20 too (bot/handlers/intake.py).

It runs before every other handler (handler group -2, before the gate of bot/handlers/basics.py),
so that a stranger in a bound group, who gets an access hint for each command, cannot make the
bot write without end either. The time is the injected clock's (``bot_data["clock"]``).
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass

from telegram import Update, User
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.app import SERVICES, Services
from bot.bounded import MAX_ENTRIES, LRUDict
from bot.config import FloodSettings
from bot.handlers.common import Context
from bot.i18n import ngettext, normalize, use_locale

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    PASS = "pass"      # within the allowance: handled as usual
    WARN = "warn"      # just went over it: one "please slow down", and the quiet period begins
    IGNORE = "ignore"  # in the quiet period: nothing at all


@dataclass
class Bucket:
    tokens: float
    at: float                       # when ``tokens`` was counted (seconds)
    quiet_until: float | None = None


class FloodGuard:
    """The allowances of the people writing to the bot, at most ``maxsize`` of them (the least
    recently heard from are forgotten: a fresh allowance, which is what they would have by now)."""

    def __init__(self, limits: FloodSettings, maxsize: int = MAX_ENTRIES) -> None:
        self.burst = float(limits.burst)
        self.rate = limits.per_minute / 60.0  # per second
        self.quiet = limits.quiet_seconds
        self.buckets: LRUDict[int, Bucket] = LRUDict(maxsize)

    def check(self, user_id: int, now: float) -> Verdict:
        """Count one update from this person at ``now`` (seconds). No await inside: updates of one
        person handled side by side (a private chat and a group) cannot both take the last token."""
        bucket = self.buckets.get(user_id)
        if bucket is None:
            bucket = self.buckets[user_id] = Bucket(self.burst, now)
        else:
            least = 0.0
            if bucket.quiet_until is not None:
                # Quiet from (quiet_until - quiet) to quiet_until; a clock set back ends it too.
                if bucket.quiet_until - self.quiet <= now < bucket.quiet_until:
                    return Verdict.IGNORE
                bucket.quiet_until = None
                least = 1.0  # after the quiet period the person is answered again
            elapsed = max(0.0, now - bucket.at)  # a clock set back gives nothing back
            bucket.tokens = max(least, min(self.burst, bucket.tokens + elapsed * self.rate))
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Verdict.PASS
        bucket.quiet_until = now + self.quiet
        return Verdict.WARN

    async def on_update(self, update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None or user.is_bot:
            return  # the gate after this one deals with those
        now = context.bot_data["clock"]().timestamp()
        verdict = self.check(user.id, now)
        if verdict is Verdict.PASS:
            return
        if verdict is Verdict.WARN:
            log.info("flood: user %d slowed down for %g s", user.id, self.quiet)
            await self._ask_to_slow_down(update, context, user)
        raise ApplicationHandlerStop

    async def _ask_to_slow_down(self, update: Update, context: Context, user: User) -> None:
        with use_locale(await _language(context, user)):
            text = slow_down_text(self.quiet)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif update.effective_message is not None and update.effective_chat is not None:
                await update.effective_message.reply_text(text)
        except TelegramError as exc:  # a courtesy: never an error report for it
            log.info("flood: could not ask user %d to slow down: %s", user.id, type(exc).__name__)


def slow_down_text(quiet_seconds: float) -> str:
    minutes = max(1, math.ceil(quiet_seconds / 60))
    return ngettext("Please slow down: I will read your messages again in a minute.",
                    "Please slow down: I will read your messages again in {n} minutes.",
                    minutes).format(n=minutes)


async def _language(context: Context, user: User) -> str:
    """The person's language: the one they chose if the bot knows them, else their Telegram's."""
    services: Services | None = context.bot_data.get(SERVICES)
    if services is None:
        return normalize(user.language_code)
    lang = normalize(user.language_code, services.settings.default_language)
    if await services.people.is_registered(user.id):
        lang = await services.units.language_of(user.id)
    return lang
