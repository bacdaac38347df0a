"""/report, /export and /stats through Telegram."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.conftest import WG_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case


async def test_report_export_stats(bot: Bot) -> None:
    for _ in range(3):
        await make_case(bot, citizen_name="Hidden Citizen")
    wg = bot.private(bot.wg)
    m = await bot.say(bot.wg, wg, "/report 2026-11")
    text = bot.texts_since(m)[0]
    assert "Of the 3 requests received in November 2026, 0 have been resolved and 3 are still in progress." in text
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


async def test_export_document_is_safe_and_counted(bot: Bot) -> None:
    """/export writes the same safe workbook as the CLI: citizens' text never a formula, control
    characters dropped; the caption counts what the sheets hold."""
    await make_case(bot, summary='=HYPERLINK("http://x","y")', citizen_name="+855 12 345 678",
                    description="ring \x07bell\x1b")
    await make_case(bot)
    cases, events = (await bot.services.db.one("SELECT (SELECT COUNT(*) FROM cases),"
                                               " (SELECT COUNT(*) FROM events)") or (0, 0))
    for chat, personal in ((bot.private(bot.wg), True), (bot.wg_chat, False)):
        m = await bot.say(bot.wg, chat, "/export")
        [doc] = bot.sent_since(m, None, "sendDocument")
        assert doc.params["caption"] == (f"{cases} cases, {events} events; personal data: "
                                         + ("included" if personal else "left out"))
        wb = load_workbook(io.BytesIO(doc.files["document"].content))
        assert doc.files["document"].filename == "casebot-all.xlsx"
        assert all(c.data_type != "f" for ws in wb.worksheets for row in ws.iter_rows() for c in row)
        rows = list(wb["cases"].iter_rows(values_only=True))
        assert len(rows) == 1 + cases and len(list(wb["events"].iter_rows())) == 1 + events
        case = dict(zip(rows[0], rows[1], strict=True))
        assert case["summary"] == '=HYPERLINK("http://x","y")'  # a text cell (quote prefix)
        assert case["description"] == "ring bell"
        assert case.get("citizen_name") == ("+855 12 345 678" if personal else None)
