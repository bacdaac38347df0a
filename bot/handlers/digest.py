"""/digest: a digest of the caller's units now; /digest off and /digest on for the daily one."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import CommandHandler

from bot.domain.errors import DomainError
from bot.domain.rules import keyword
from bot.handlers.common import Context, UsageError, actor, now, refuse, reply, svc
from bot.i18n import N_, _

DIGEST_USAGE = N_("/digest [off|on]")


async def digest(update: Update, context: Context) -> None:
    services = svc(context)
    who = actor(update)
    args = [keyword(a) for a in context.args or []]  # off/on, or Khmer: បិទ/បើក
    try:
        if not args:
            text = await services.digests.for_person(who.tg_id, now(context), who.chat_id)
        elif args in (["off"], ["on"]):
            muted = args == ["off"]
            await services.digests.mute(who.tg_id, muted, now(context))
            at = services.digests.time.strftime("%H:%M")
            text = (_("Done: no more daily digest for you. /digest on brings it back.") if muted
                    else _("Done: you will get the daily digest again at {time}.").format(time=at))
        else:
            raise UsageError(_("Say off or on, or nothing for a digest now."), DIGEST_USAGE)
    except DomainError as exc:
        await refuse(update, exc)
        return
    await reply(update, text)


def handlers() -> list[Any]:
    return [CommandHandler("digest", digest)]
