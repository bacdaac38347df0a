"""Every update first; /start, /help, /bindchat, /units."""

from __future__ import annotations

from html import escape

from telegram import Update

from bot.domain.errors import DomainError
from bot.handlers.common import Context, UsageError, actor, now, refuse, reply, svc
from bot.i18n import _, normalize, set_locale


async def every_update(update: Update, context: Context) -> None:
    """Set the reader's language and record who they are (and their unit, in a unit's chat)."""
    services = svc(context)
    user = update.effective_user
    set_locale(normalize(user.language_code if user else None, services.settings.default_language))
    if user is None or user.is_bot:
        return
    chat = update.effective_chat
    await services.units.seen(
        user.id, user.full_name, user.username, user.language_code,
        chat.id if chat else None, now(context),
    )


async def start(update: Update, context: Context) -> None:
    await reply(update, _("Hello! I coordinate the public-requests working group's cases.")
                + "\n\n" + await help_text(update, context))


async def help_command(update: Update, context: Context) -> None:
    await reply(update, await help_text(update, context))


async def help_text(update: Update, context: Context) -> str:
    services = svc(context)
    who = actor(update)
    lines = [_("<b>What you can do</b>")]
    if services.cases.is_staff(who):
        lines += [
            _("/new — create a case (in a private chat with me)"),
            _("Forward me a citizen's message — create a case from it"),
            _("/assign &lt;case&gt; &lt;unit-key&gt; [@official] — assign a case to a unit"),
            _("/answer &lt;case&gt; &lt;text&gt; — answer a unit's request for information"),
            _("/reopen &lt;case&gt; &lt;reason&gt; — reopen a resolved case"),
        ]
    lines += [
        _("Buttons on a case card: Accept, Need info, Not ours, Resolved…"),
        _("/status &lt;case&gt; &lt;in_progress|waiting_info&gt; [note] — change the status"),
        _("/resolve &lt;case&gt; &lt;what was done&gt; — mark a case resolved"),
        _("/note &lt;case&gt; &lt;text&gt; — add an internal note"),
        _("/case &lt;number&gt; — a case and its history"),
        _("/mycases — open cases of your unit, oldest first"),
        _("/overdue — overdue cases"),
        _("/units — the unit tree and which chats are bound"),
        _("/cancel — stop what you are doing"),
    ]
    if who.tg_id in services.settings.admins:
        lines.append(_("/bindchat &lt;unit-key&gt; — (in a group) make it the unit's chat; "
                       "/bindchat workgroup for the working group"))
    return "\n".join(lines)


BINDCHAT_USAGE = "/bindchat <unit-key>"


async def bindchat(update: Update, context: Context) -> None:
    services = svc(context)
    who = actor(update)
    try:
        if not context.args:
            raise UsageError(_("Which unit? Give its key."), BINDCHAT_USAGE)
        assert who.chat_id is not None
        name = await services.units.bind_chat(context.args[0], who.chat_id, who.tg_id, now(context))
    except DomainError as exc:
        await refuse(update, exc)
        return
    await reply(update, _("This chat is now the chat of {unit}.").format(unit=escape(name)))


async def units(update: Update, context: Context) -> None:
    services = svc(context)
    all_units = await services.units.all()
    lines = [_("<b>Units</b> (✅ chat bound, ▫️ no chat)")]
    for depth, unit in services.units.tree_lines(all_units):
        mark = "✅" if unit.chat_id is not None else "▫️"
        lines.append(f"{'    ' * depth}{mark} <code>{escape(unit.key)}</code> {escape(unit.name)}")
    wg = await services.units.wg_chat_id()
    lines.append("")
    lines.append(_("Working group chat: {state}").format(
        state=_("bound") if wg is not None else _("not bound")))
    await reply(update, "\n".join(lines))


async def nothing_to_cancel(update: Update, context: Context) -> None:
    await reply(update, _("There is nothing to cancel."))
