"""Every update first; /start, /help, /bindchat, /units."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.app import Services
from bot.domain.errors import DomainError, Forbidden
from bot.domain.rules import Role
from bot.handlers import citizen_gate
from bot.handlers.common import Context, UsageError, actor, drop_buttons, now, refuse, reply, svc
from bot.i18n import N_, _, normalize, set_locale


async def every_update(update: Update, context: Context) -> None:
    """The gate every update passes first: the reader's language, and who may talk to the bot.

    Someone the bot does not know gets one short answer on how to get access, and nothing else.
    In a group bound to no unit, only an admin's /bindchat is answered."""
    services = svc(context)
    user = update.effective_user
    set_locale(normalize(user.language_code if user else None, services.settings.default_language))
    if user is None or user.is_bot:
        raise ApplicationHandlerStop
    registered = await services.people.is_registered(user.id)
    chat = update.effective_chat
    private = chat is not None and chat.type == "private"
    if registered:
        await services.units.seen(user.id, user.full_name, user.username, user.language_code,
                                  now(context), private=private)
        set_locale(await services.units.language_of(user.id))
    if chat is not None and not private:
        set_locale(await services.units.language_of(chat.id))  # a group reads its own language
    if chat is not None and chat.type != "private" and not await _bound(services, chat.id):
        if registered and _command(update) == "bindchat" and Role.ADMIN in (
                await services.people.global_roles(user.id)):
            return
        raise ApplicationHandlerStop
    if registered:
        return
    if private and await citizen_gate.admit(update, context):
        return  # a citizen, in their own chat with the bot (bot/handlers/citizens.py)
    if _command(update) == "start" and private:
        return  # /start may carry an invitation
    if _command(update) == "stats":
        return  # the public figures are for anyone
    if update.callback_query is not None:
        await update.callback_query.answer(access_hint(user.id, html=False), show_alert=True)
    elif chat is not None:
        await chat.send_message(access_hint(user.id))
    raise ApplicationHandlerStop


def access_hint(tg_id: int, *, html: bool = True) -> str:
    """The answer to someone the bot does not know, with their Telegram id: the first admin finds
    theirs here to put it into the config. ``html=False`` for an alert (plain text, 200 at most)."""
    def code(text: str) -> str:
        return f"<code>{escape(text)}</code>" if html else text

    return _("I don't know you yet. Your Telegram id is {id}: an administrator can add it to {admins} "
             "in the config, or send you an invitation link.").format(id=code(str(tg_id)),
                                                                     admins=code("admins"))


async def _bound(services: Services, chat_id: int) -> bool:
    return await services.units.unit_for_chat(chat_id) is not None or (
        chat_id == await services.units.wg_chat_id())


def _command(update: Update) -> str | None:
    message = update.effective_message
    text = (message.text or "") if message is not None and update.callback_query is None else ""
    if not text.startswith("/"):
        return None
    return text.split()[0][1:].split("@")[0].lower()


async def start(update: Update, context: Context) -> None:
    services = svc(context)
    user = update.effective_user
    assert user is not None
    if context.args:
        try:
            grant = await services.people.redeem(
                context.args[0], user.id, user.full_name, user.username, user.language_code,
                now(context))
        except DomainError as exc:
            await reply(update, exc.user_message())
            return
        greeting = _("Welcome, {name}! You are now {role}.").format(
            name=escape(user.full_name), role=escape(grant.label()))
    elif not await services.people.is_registered(user.id):
        await reply(update, access_hint(user.id))
        return
    else:
        greeting = _("Hello! I coordinate the public-requests working group's cases.")
    await reply(update, greeting + "\n\n" + await help_text(update, context))


def verify_help() -> str:
    return _("/verify &lt;case&gt; &lt;confirmed|unreachable|disputed&gt; — after calling the citizen")


async def help_command(update: Update, context: Context) -> None:
    full = [a.lower() for a in context.args or []] in (["all"], ["ទាំងអស់"])
    await reply(update, await help_text(update, context, full=full))


async def help_text(update: Update, context: Context, *, full: bool = False) -> str:
    services = svc(context)
    who = actor(update)
    roles = {g.role for g in await services.people.grants(who.tg_id)}
    if roles and roles <= {Role.OFFICIAL, Role.LIAISON} and not full:
        # An official's phone: the buttons and replies do the work; a few lines, no keywords.
        return "\n".join([
            _("<b>What you can do</b>"),
            _("Tap the buttons on a case card. Reply to a card to add a note."),
            _("/mycases — your unit's open cases · /overdue — the late ones"),
            _("/search — find a case · /case &lt;number&gt; — one case"),
            _("/help all — every command"),
        ])
    lines = [_("<b>What you can do</b>")]
    if roles & {Role.ADMIN, Role.WORKING_GROUP}:
        lines += [
            _("/new — create a case (in a private chat with me)"),
            _("/inbox — requests from citizens waiting for a decision"),
            _("Forward me a citizen's message — create a case from it"),
            _("Send me a CSV or XLSX file — import the backlog (the columns are in the README)"),
            _("/assign &lt;case&gt; &lt;unit-key&gt; [@official] — assign a case to a unit"),
            _("/answer &lt;case&gt; &lt;text&gt; — answer a unit's request for information"),
            _("/reopen &lt;case&gt; &lt;reason&gt; — reopen a resolved case"),
            _("/forward &lt;case&gt; &lt;institution&gt; [channel] &lt;reason&gt; — to another institution"),
            verify_help(),
            _("/merge &lt;case&gt; &lt;into&gt; — close a duplicate"),
            _("/due &lt;case&gt; &lt;YYYY-MM-DD&gt; — set a deadline"),
            _("/outcome &lt;case&gt; &lt;text&gt; — what an institution without a chat reported"),
        ]
    if roles & {Role.ADMIN, Role.OFFICIAL}:
        lines += [
            _("Buttons on a case card: Accept, Need info, Not ours, Resolved…"),
            _("/status &lt;case&gt; &lt;in_progress|waiting_info&gt; [note] — change the status"),
            _("/resolve &lt;case&gt; &lt;what was done&gt; — mark a case resolved"),
        ]
    if roles & {Role.SUPERVISOR}:
        lines.append(_("/assign &lt;case&gt; &lt;unit-key&gt; — re-assign within your units"))
        lines.append(verify_help())
    if roles & {Role.LIAISON}:
        lines.append(_("/ack &lt;case&gt; [reference], /decline &lt;case&gt; &lt;reason&gt; — "
                       "for your institution"))
    lines += [
        _("/note &lt;case&gt; &lt;text&gt; — add an internal note"),
        _("/case &lt;number&gt; — a case and its history"),
        _("/search &lt;words&gt; — find a case (number, reference, phone, name, summary)"),
        _("Reply to the bot's card or notice — a note on that case"),
        _("/mycases — open cases of your unit, oldest first"),
        _("/overdue — overdue cases"),
        _("/digest — a digest of your units now; /digest off|on — the daily one"),
        _("/bouncing — cases handed off again and again"),
        _("/units — the unit tree and which chats are bound"),
        _("/whoami — your roles"),
        _("/cancel — stop what you are doing"),
    ]
    if roles & {Role.ADMIN, Role.SUPERVISOR}:
        lines += [
            _("/invite &lt;unit-key&gt; &lt;role&gt; — an invitation link (in a private chat)"),
            _("/invites — pending invitations; /people [unit-key] — who holds which role"),
            _("/revoke &lt;@person&gt; [unit-key] [role] — take rights away at once"),
        ]
    if Role.ADMIN in roles:
        lines.append(_("/bindchat &lt;unit-key&gt; — (in a group) make it the unit's chat; "
                       "/bindchat workgroup for the working group"))
        lines.append(_("/refusals — recent refused attempts"))
        lines.append(_("/accesslog &lt;case&gt; — who saw the citizen's personal data"))
        lines.append(_("/erase &lt;case&gt; &lt;reason&gt; — erase the citizen's personal data "
                       "from a case"))
    return "\n".join(lines)


BINDCHAT_USAGE = N_("/bindchat <unit-key>")


async def bindchat(update: Update, context: Context) -> None:
    services = svc(context)
    who = actor(update)
    try:
        if not context.args:
            raise UsageError(_("Which unit? Give its key."), BINDCHAT_USAGE)
        assert who.chat_id is not None
        is_admin = Role.ADMIN in await services.people.global_roles(who.tg_id)
        name = await services.units.bind_chat(context.args[0], who.chat_id, who.tg_id, is_admin,
                                              now(context))
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


LANG_USAGE = N_("/lang <km|en>")


async def lang(update: Update, context: Context) -> None:
    """/lang km|en: your language in a private chat; the group's language in a group."""
    services = svc(context)
    who = actor(update)
    args = context.args or []
    query = update.callback_query
    choice = (query.data or "").removeprefix("lang:") if query else (args[0].lower() if args else "")
    if not choice:
        current = await services.units.language_of(who.chat_id or who.tg_id)
        await reply(update, _("Language: {lang}. Choose:").format(lang=LANGUAGE_NAMES[current]),
                    [[(LANGUAGE_NAMES["km"], "lang:km"), (LANGUAGE_NAMES["en"], "lang:en")]])
        return
    try:
        if choice not in LANGUAGE_NAMES:
            raise UsageError(_("Choose km (Khmer) or en (English)."), LANG_USAGE)
        target = who.chat_id if who.chat_id is not None else who.tg_id
        if target < 0:  # a group's language: for those who work in it
            unit = await services.units.unit_for_chat(target)
            roles = {(g.role, g.unit_id) for g in await services.people.grants(who.tg_id)}
            if not ({r for r, _u in roles} & {Role.ADMIN, Role.WORKING_GROUP} or (
                    unit is not None and (Role.OFFICIAL, unit.id) in roles)):
                raise Forbidden()
        await services.units.set_language(target, choice)
    except DomainError as exc:
        await refuse(update, exc)
        return
    set_locale(choice)
    if query is not None:
        await query.answer()
        await drop_buttons(query)
    await reply(update, _("From now on I write in English here."))


LANGUAGE_NAMES = {"km": "ខ្មែរ", "en": "English"}
