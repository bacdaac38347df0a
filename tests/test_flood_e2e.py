"""Flooding, end to end through the fake Bot API with the shipped [flood] defaults: one person
sending faster than a person can gets one "please slow down", then silence for a minute; nobody
else notices. (The allowance itself: tests/test_flood.py.)"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.handlers.basics import access_hint
from bot.handlers.flood import slow_down_text
from bot.i18n import _, use_locale
from tests.conftest import STRANGER, WG, Clock
from tests.harness import Bot, running_bot

JSON = dict[str, Any]
SLOW = "Please slow down: I will read your messages again in a minute."
HELP = "<b>What you can do</b>"


@pytest.fixture
async def flood_bot(tmp_path: Path, clock: Clock) -> AsyncIterator[Bot]:
    async with running_bot(tmp_path, clock, flood={}) as running:  # {}: the defaults
        assert running.settings.flood.burst == 20 and running.settings.flood.per_minute == 30
        yield running


def helps(texts: list[str]) -> int:
    return sum(t.startswith(HELP) for t in texts)


async def test_120_help_in_a_minute_are_slowed_and_nobody_else_notices(
        flood_bot: Bot, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    bot = flood_bot
    wg, chat = bot.wg, bot.private(bot.wg)
    official, official_chat = bot.official, bot.private(bot.official)
    first = bot.api.mark()
    caplog.set_level(logging.INFO, logger="bot.handlers.flood")
    for i in range(120):
        clock.advance(seconds=0.5)
        await bot.say(wg, chat, "/help")
        if i == 60:  # someone else, in the middle of it
            m = await bot.say(official, official_chat, "/help")
            assert helps(bot.texts_since(m, official["id"])) == 1
    texts = bot.texts_since(first, WG)
    # 20 at once and one back every 2 s: the 26 sent in the first 13 seconds are answered,
    # then one "please slow down", then nothing for the rest of the minute.
    assert texts == [texts[0]] * 26 + [SLOW] and texts[0].startswith(HELP)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.handlers.flood"]
    assert lines == [f"flood: user {WG} slowed down for 60 s"]  # the id only: no name, no text

    # Still quiet: a command that would change something changes nothing and is not answered.
    m = await bot.say(wg, chat, "/lang km")
    assert bot.texts_since(m) == [] and await bot.services.units.language_of(WG) == "en"

    clock.advance(seconds=60)  # the quiet period is over
    m = await bot.say(wg, chat, "/help")
    assert helps(bot.texts_since(m, WG)) == 1
    m = await bot.say(official, official_chat, "/help")
    assert helps(bot.texts_since(m, official["id"])) == 1


async def test_a_stranger_in_a_bound_group_is_slowed_the_same_way_in_their_language(
        flood_bot: Bot, clock: Clock) -> None:
    bot = flood_bot
    stranger = bot.api.user(STRANGER, "Stranger", language_code="km")
    group = bot.dp_chat  # Daun Penh's chat; the group reads English (the default)
    first = bot.api.mark()
    for _message in range(40):
        await bot.say(stranger, group, "/mycases")
    with use_locale("km"):
        slow_km = slow_down_text(60)
    hint = access_hint(STRANGER)  # the gate answers in the group's language
    texts = bot.texts_since(first, group["id"])
    assert texts == [hint] * 20 + [slow_km]
    assert slow_km != SLOW
    slow = bot.sent_since(first, group["id"])[-1]
    assert "reply_parameters" in slow.params  # in a group: a reply, so that it is clear to whom

    # A member of the unit in the same group is answered meanwhile.
    m = await bot.say(bot.official, group, "/help")
    assert helps(bot.texts_since(m, group["id"])) == 1
    # The stranger after the quiet period: answered (with the hint) again.
    clock.advance(seconds=61)
    m = await bot.say(stranger, group, "/mycases")
    assert bot.texts_since(m, group["id"]) == [hint]


async def test_a_flood_of_button_presses_gets_the_slow_down_as_the_query_answer(
        flood_bot: Bot, clock: Clock) -> None:
    bot = flood_bot
    official, chat = bot.official, bot.private(bot.official)
    await bot.say(official, chat, "/lang km")  # a registered person's own choice counts
    await bot.say(official, chat, "/help")
    message = bot.last_bot_message(official["id"])
    first = bot.api.mark()
    for _press in range(30):
        await bot.press(official, chat["id"], message["message_id"], "gone:1")
    with use_locale("km"):
        stale, slow_km = _("That button is not valid any more."), slow_down_text(60)
    answers = bot.answers_since(first)
    # The /lang and the /help took two of the 20: 18 presses answered, then the slow-down.
    assert answers == [stale] * 18 + [slow_km]
    assert bot.sent_since(first) == []  # no message for a press: the answer to the query only
    alert = [c for c in bot.api.calls[first:] if c.method == "answerCallbackQuery"][-1]
    assert alert.params.get("show_alert") in (True, "true")
    # The other 11 presses were not answered at all, and changed nothing.
    assert await bot.services.units.language_of(official["id"]) == "km"

    clock.advance(minutes=1)
    m = await bot.press(official, chat["id"], message["message_id"], "gone:1")
    assert bot.answers_since(m) == [stale]
