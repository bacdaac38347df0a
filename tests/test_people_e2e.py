"""Invitations, /people, /revoke, /whoami, /refusals through Telegram."""

from __future__ import annotations

import re
from pathlib import Path

from bot.domain.rules import Role
from tests.conftest import DP_CHAT, WG, Clock
from tests.harness import Bot, running_bot, unknown_answer
from tests.test_e2e_inputs import make_case

LINK = re.compile(r"https://t\.me/casebot_test\?start=([A-Za-z0-9_-]+)")


async def invite(bot: Bot, who: dict, text: str) -> str:
    m = await bot.say(who, bot.private(who), text)
    found = LINK.search("\n".join(bot.texts_since(m)))
    assert found, bot.texts_since(m)
    return found.group(1)


async def test_invitation_registers_once_and_greets(bot: Bot) -> None:
    token = await invite(bot, bot.admin, "/invite pp-dp official")
    raw = await bot.services.db.all("SELECT token_hash FROM invitations")
    assert all(token not in r[0] for r in raw)  # only the hash is stored
    newcomer = bot.api.user(2101, "Bopha", username="bopha", language_code="en")
    m = await bot.say(newcomer, bot.private(newcomer), f"/start {token}")
    greeting = bot.texts_since(m)[0]
    assert "Welcome, Bopha! You are now official of Daun Penh." in greeting and "/mycases" in greeting
    m = await bot.say(newcomer, bot.private(newcomer), "/whoami")
    assert "official of Daun Penh" in bot.texts_since(m)[0]

    # The same link again, by someone else: refused, nothing registered.
    late = bot.api.user(2102, "Late")
    m = await bot.say(late, bot.private(late), f"/start {token}")
    assert bot.texts_since(m) == ["This invitation link has already been used."]
    assert not await bot.services.people.is_registered(2102)

    # The newcomer can work their unit's cases at once.
    n = await make_case(bot)
    m = await bot.press_button(newcomer, bot.card(DP_CHAT, n), "Accept")
    assert "In progress" in bot.card(DP_CHAT, n)["text"]


async def test_bad_links(bot: Bot) -> None:
    stranger, chat = bot.stranger, bot.private(bot.stranger)
    for token in ("short", "x" * 80, "bad*chars*in*this*token*", "A" * 32):
        m = await bot.say(stranger, chat, f"/start {token}")
        assert bot.texts_since(m) == ["This invitation link is not valid. Ask for a new one."], token
    expired = await invite(bot, bot.admin, "/invite sr official")
    bot.clock.advance(hours=73)
    m = await bot.say(stranger, chat, f"/start {expired}")
    assert bot.texts_since(m) == ["This invitation link has expired. Ask for a new one."]
    withdrawn = await invite(bot, bot.admin, "/invite sr official")
    m = await bot.say(bot.admin, bot.private(bot.admin), "/invites")
    listing = bot.last_bot_message(bot.admin["id"])
    assert "official · Siem Reap" in listing["text"]
    await bot.press_button(bot.admin, listing, "Withdraw")
    m = await bot.say(stranger, chat, f"/start {withdrawn}")
    assert bot.texts_since(m) == ["This invitation link was withdrawn. Ask for a new one."]
    assert not await bot.services.people.is_registered(stranger["id"])
    m = await bot.say(stranger, chat, "/start")  # without a link: the citizen's welcome, with their id
    [welcome] = bot.texts_since(m)
    assert f"Staff: ask your administrator for an invitation; your Telegram id is <code>{stranger['id']}</code>." in welcome


async def test_link_for_a_unit_since_removed(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        token = await invite(bot, bot.admin, "/invite pp-ck official")
    units_without_ck = None
    from tests.conftest import config_dict

    units_without_ck = [u for u in config_dict(tmp_path)["units"] if u["key"] != "pp-ck"]
    async with running_bot(tmp_path, clock, units=units_without_ck) as bot:
        m = await bot.say(bot.stranger, bot.private(bot.stranger), f"/start {token}")
        assert bot.texts_since(m) == ["The unit of this invitation no longer exists."]


async def test_who_may_invite_what(bot: Bot) -> None:
    sup = bot.supervisor
    token = await invite(bot, sup, "/invite pp-dp official")  # below their province: yes
    assert token
    for text in ("/invite sr official", "/invite pp-dp supervisor", "/invite - working_group"):
        m = await bot.say(sup, bot.private(sup), text)
        assert bot.texts_since(m) == ["You are not allowed to do that."], text
    for who in (bot.official, bot.wg):
        m = await bot.say(who, bot.private(who), "/invite pp-dp official")
        assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.admin, bot.dp_chat, "/invite pp-dp official")
    assert "private chat" in bot.texts_since(m)[0]  # a link in a group is anyone's
    m = await bot.say(bot.admin, bot.private(bot.admin), "/invite pp-dp chief")
    assert "is not a role" in bot.texts_since(m)[0]
    m = await bot.say(bot.admin, bot.private(bot.admin), "/invite mlm official")
    assert "invite a liaison there" in bot.texts_since(m)[0]
    assert await invite(bot, bot.admin, "/invite - working_group")
    assert await invite(bot, bot.admin, "/invite mlm liaison")


async def test_people_and_revoke_take_effect_at_once(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/people")
    listing = bot.texts_since(m)[0]
    assert "Dara @dara" in listing and "official of Daun Penh" in listing
    assert "Vanna" not in listing  # Siem Reap is outside a Phnom Penh supervisor's scope
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/people sr")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.official, bot.private(bot.official), "/people")
    assert bot.texts_since(m) == ["You are not allowed to do that."]

    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/revoke @vanna")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/revoke @dara pp-dp official")
    assert bot.texts_since(m) == ["Removed: official of Daun Penh. It takes effect at once."]
    # The button Dara still holds stops working; she is now unknown to the bot.
    m = await bot.press_button(bot.official, card, "Accept")
    assert bot.answers_since(m) == [unknown_answer(bot.official["id"], alert=True)]
    assert (await bot.services.cases.get(n)).status == "assigned"
    m = await bot.say(bot.admin, bot.private(bot.admin), "/revoke @nobody")
    assert "I don't know @nobody yet" in bot.texts_since(m)[0]
    m = await bot.say(bot.admin, bot.private(bot.admin), "/revoke")
    assert "Usage" in bot.texts_since(m)[0]


async def test_refusals_are_logged_for_admins(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.say(bot.other, bot.sr_chat, f"/resolve {n} not my case but trying")
    m = await bot.say(bot.admin, bot.private(bot.admin), "/refusals")
    text = bot.texts_since(m)[0]
    assert f"Vanna · resolve #{n}" in text
    m = await bot.say(bot.wg, bot.private(bot.wg), "/refusals")
    assert bot.texts_since(m) == ["You are not allowed to do that."]


async def test_config_working_group_is_migrated_once(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        assert Role.WORKING_GROUP in await bot.services.people.global_roles(WG)
    async with running_bot(tmp_path, clock, working_group=[7777]) as bot:
        assert Role.WORKING_GROUP in await bot.services.people.global_roles(WG)
        assert not await bot.services.people.is_registered(7777)
    async with running_bot(tmp_path, clock, admins=[7778]) as bot:
        assert Role.ADMIN in await bot.services.people.global_roles(7778)
        # Removed from the config's admins: no longer an admin (nor anything else).
        m = await bot.say(bot.admin, bot.private(bot.admin), "/whoami")
        assert bot.texts_since(m) == [unknown_answer(bot.admin["id"])]
