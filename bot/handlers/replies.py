"""A reply to one of the bot's messages about a case is a note on that case, no ``/note 42``
typing: a reply to the case's card (in a unit's group, an institution's chat, the working
group's), to a notice or a reminder about it. A reply of the working group to a unit's question
("Needed: …", with **Answer…**) while the case waits for it is the answer.

The change goes through ``CaseService.apply`` like every other (the rights are the note's or the
answer's); in a group it is confirmed with a ✍ reaction on the reply (no message: a busy group
gets 20 a minute), elsewhere with a line."""

from __future__ import annotations

import logging

from telegram import Message, ReactionTypeEmoji, Update
from telegram.error import TelegramError
from telegram.ext import MessageHandler, filters

from bot.domain.cases import AttachmentIn, Change
from bot.domain.errors import DomainError, Invalid
from bot.domain.rules import Action, Status
from bot.handlers.common import Context, actor, is_private, now, refuse, reply, svc
from bot.i18n import _

log = logging.getLogger(__name__)

NOTED = "✍"     # the reaction that says "noted"
ANSWERED = "👌"  # the reaction that says "your answer went to the unit"


def _files(message: Message) -> tuple[AttachmentIn, ...]:
    if message.photo:
        return (AttachmentIn("photo", message.photo[-1].file_id),)
    if message.document:
        return (AttachmentIn("document", message.document.file_id, message.document.file_name),)
    return ()


async def reply_note(update: Update, context: Context) -> None:
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    target = message.reply_to_message
    if target is None or target.from_user is None or target.from_user.id != context.bot.id:
        return  # people talking among themselves
    services = svc(context)
    if not await services.people.is_registered(message.from_user.id if message.from_user else 0):
        return  # a citizen replying to the bot: their words are the conversation's (citizen_buttons)
    about = await services.outbox.about(chat.id, target.message_id)
    if about is None:
        return  # not a message about a case: not a note
    cases, asks = about
    if len(cases) > 1:
        listed = ", ".join(f"#{n}" for n in sorted(cases))
        await reply(update, _("That message is about several cases ({cases}): reply to one case's "
                              "card, or write /note &lt;case&gt; &lt;text&gt;.").format(cases=listed))
        return
    (case_id,) = cases
    who = actor(update)
    text = (message.text or message.caption or "").strip()
    action = Action.NOTE
    try:
        if case_id in asks:
            current = await services.cases.get(case_id)
            if current.status is Status.WAITING_INFO and await services.cases.may(
                    who, Action.PROVIDE_INFO, current):
                action = Action.PROVIDE_INFO
        files = _files(message)
        if files and not text:
            raise Invalid(_("Add a few words to the file (a caption), so that the note says "
                            "what it is."))
        await services.cases.apply(case_id, action, who, Change(text=text, attachments=files),
                                   now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await _confirm(update, message, action, case_id)


async def _confirm(update: Update, message: Message, action: Action, case_id: int) -> None:
    """A reaction in a group; a line in a private chat (or when the group allows no reactions)."""
    if not is_private(update):
        try:
            await message.set_reaction([ReactionTypeEmoji(
                NOTED if action is Action.NOTE else ANSWERED)])
            return
        except TelegramError as exc:  # reactions turned off in this group: say it in words
            log.info("no reaction in a group (%s): confirming in words", type(exc).__name__)
    text = (_("📝 Note added to #{n}.") if action is Action.NOTE
            else _("#{n}: your answer went to the unit.")).format(n=case_id)
    await message.reply_text(text)


def handler() -> MessageHandler[Context, None]:
    """After the conversations (an answer to a question of the bot is that answer, not a note)."""
    content = (filters.TEXT & ~filters.COMMAND) | filters.PHOTO | filters.Document.ALL
    return MessageHandler(filters.REPLY & content, reply_note)
