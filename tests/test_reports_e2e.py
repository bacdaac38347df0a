"""/report, /export and /stats through Telegram."""

from __future__ import annotations

from tests.conftest import WG_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case


async def test_report_export_stats(bot: Bot) -> None:
    for _ in range(3):
        await make_case(bot, citizen_name="Hidden Citizen")
    wg = bot.private(bot.wg)
    m = await bot.say(bot.wg, wg, "/report 2026-11")
    text = bot.texts_since(m)[0]
    assert "Of the 3 requests received in 2026-11, 0 have been resolved and 3 are still in progress." in text
    photos = bot.sent_since(m, None, "sendPhoto")
    assert len(photos) == 2  # the monthly charts
    m = await bot.say(bot.wg, wg, "/report 2026-Q4")
    assert bot.sent_since(m, None, "sendPhoto") == []  # charts come with monthly reports
    m = await bot.say(bot.wg, wg, "/report nonsense")
    assert "is not a period like 2026-04" in bot.texts_since(m)[0]
    m = await bot.say(bot.official, bot.private(bot.official), "/report 2026-11")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/report 2026-11")
    assert "Of the 3 requests" in bot.texts_since(m)[0]

    m = await bot.say(bot.wg, wg, "/export 2026-11")
    [doc] = bot.sent_since(m, None, "sendDocument")
    assert "3 cases" in doc.params["caption"] and "personal data: included" in doc.params["caption"]
    m = await bot.say(bot.wg, bot.wg_chat, "/export")
    [doc] = bot.sent_since(m, WG_CHAT, "sendDocument")
    assert "personal data: left out" in doc.params["caption"]  # a group: never personal data
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/export nopd")
    assert "left out" in bot.sent_since(m, None, "sendDocument")[0].params["caption"]

    m = await bot.say(bot.stranger, bot.private(bot.stranger), "/stats")
    text = bot.texts_since(m)[0]
    assert "Public figures" in text and "&lt;5" in text and "Hidden Citizen" not in text
