"""The backlog sent to the bot as a file: check, confirm, import; through the fake Bot API."""

from __future__ import annotations

from typing import Any

from bot.domain.rules import Action
from tests.harness import Bot
from tests.test_importer import csv_file, row

JSON = dict[str, Any]
CSV = "text/csv"


async def send_file(bot: Bot, user: JSON, chat: JSON, name: str, content: bytes, mime: str = CSV) -> int:
    mark = bot.api.mark()
    bot.api.send_document(user, chat, file_name=name, mime_type=mime, content=content)
    await bot.settle()
    return mark


async def imported(bot: Bot) -> list[str]:
    rows = await bot.services.db.all("SELECT external_ref FROM cases WHERE external_ref IS NOT NULL ORDER BY id")
    return [r[0] for r in rows]


GOOD = csv_file(row(), row(external_ref="R-2", status="assigned"), bom=True)


async def test_working_group_imports_a_csv(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    m = await send_file(bot, wg, chat, "backlog.csv", GOOD)
    assert bot.texts_since(m) == [
        "<b>backlog.csv</b>: checked 2 rows: 2 to import, 0 already imported, 0 rejected"]
    offer = bot.last_bot_message(wg["id"])
    assert [label for label, _data in bot.api.buttons(offer)] == ["Import 2 cases", "Cancel"]
    data = bot.button(offer, "Import")
    assert data is not None and data.startswith("imp:") and len(data) <= 24  # a key, not the rows
    assert await imported(bot) == []

    m = await bot.press_button(wg, offer, "Import 2 cases")
    texts = bot.texts_since(m)
    assert len(texts) == 1 and texts[0].startswith("Imported 2 cases from backlog.csv. #")
    assert await imported(bot) == ["R-1", "R-2"]
    assert bot.api.buttons(bot.api.messages[(offer["chat"]["id"], offer["message_id"])]) == []
    numbers = await bot.services.db.all("SELECT id FROM cases WHERE external_ref IS NOT NULL ORDER BY id")
    for (n,) in numbers:
        history = await bot.services.cases.history(n)
        assert history[0].action == Action.IMPORT and history[0].actor_name == "Sophea"
    m = await bot.say(wg, chat, f"/case {numbers[1][0]}")
    assert "imported" in "\n".join(bot.texts_since(m))

    # The same file again: nothing to import, no button.
    m = await send_file(bot, wg, chat, "backlog.csv", GOOD)
    assert bot.texts_since(m) == [
        "<b>backlog.csv</b>: checked 2 rows: 0 to import, 2 already imported, 0 rejected\n"
        "Nothing new to import: every case in it is imported already."]
    assert bot.api.buttons(bot.last_bot_message(wg["id"])) == []

    # The old button again: the rows are gone.
    m = await bot.press(wg, offer["chat"]["id"], offer["message_id"], data)
    assert bot.answers_since(m) == ["This import has expired: send the file again."]
    assert await imported(bot) == ["R-1", "R-2"]


async def test_an_xlsx_file_and_the_admin(bot: Bot) -> None:
    from tests.test_importer import xlsx

    content = xlsx([["X-1", "2026-10-01", "phone", "land", "pp-dp", "Flooded road", "", "Chan Thy", "",
                     "new", None]])
    m = await send_file(bot, bot.admin, bot.private(bot.admin), "Backlog.XLSX", content,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "checked 1 row: 1 to import" in bot.texts_since(m)[0]
    await bot.press_button(bot.admin, bot.last_bot_message(bot.admin["id"]), "Import 1 case")
    assert await imported(bot) == ["X-1"]


async def test_others_are_refused_and_other_documents_ignored(bot: Bot) -> None:
    official, chat = bot.official, bot.private(bot.official)
    m = await send_file(bot, official, chat, "backlog.csv", GOOD)
    assert bot.texts_since(m) == ["Only the working group imports cases from a file."]
    refusals = await bot.services.db.all("SELECT tg_id, action FROM refusals")
    assert [tuple(r) for r in refusals] == [(official["id"], "import")]
    # Someone without a role is a citizen: their file imports nothing, they are shown their menu.
    m = await send_file(bot, bot.stranger, bot.private(bot.stranger), "backlog.csv", GOOD)
    assert [t.split(".")[0] for t in bot.texts_since(m)] == ["To send a new request, tap Submit a request"]
    assert await imported(bot) == []
    # Not a backlog file, or not in a private chat: not this handler's business.
    m = await send_file(bot, bot.wg, bot.private(bot.wg), "letter.pdf", b"%PDF-1.4\n", "application/pdf")
    assert bot.texts_since(m) == []
    m = await send_file(bot, bot.wg, bot.wg_chat, "backlog.csv", GOOD)
    assert bot.texts_since(m) == []
    assert await imported(bot) == []


async def test_bad_files_get_their_problems(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    m = await send_file(bot, wg, chat, "old.csv", csv_file(row(citizen_name="Fran\u00e7ois"), encoding="cp1252"))
    assert bot.texts_since(m) == ["I cannot read old.csv: the file is not UTF-8 (first at line 2): in Excel, "
                                  "save it as “CSV UTF-8 (Comma delimited)”."]
    m = await send_file(bot, wg, chat, "short.csv", csv_file(row(), header="external_ref,summary"))
    assert bot.texts_since(m) == ["I cannot read short.csv: missing columns: received_date, category, "
                                  "unit, citizen_name (in the header, line 1)."]

    # Some rows rejected: listed by line, the valid ones offered.
    data = csv_file(row(), row(external_ref="R-2", unit="pp-xx"), row(external_ref="R-3", received_date="<b>"))
    m = await send_file(bot, wg, chat, "mixed.csv", data)
    assert bot.texts_since(m) == [
        "<b>mixed.csv</b>: checked 3 rows: 1 to import, 0 already imported, 2 rejected\n"
        "line 3: unknown unit 'pp-xx'\n"
        "line 4: received_date: '&lt;b&gt;' is not a date like 2026-04-30\n"
        "The rejected rows will not be imported; correct them and send the file again to add them "
        "(rows imported already are left as they are)."]
    offer = bot.last_bot_message(wg["id"])
    m = await bot.press_button(wg, offer, "Cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was imported."]
    assert await imported(bot) == []

    # Everything rejected, and more problems than fit: the first twenty, no button.
    many = csv_file(*[row(external_ref=f"B-{i}", unit="pp-xx") for i in range(25)])
    m = await send_file(bot, wg, chat, "many.csv", many)
    text = bot.texts_since(m)[0]
    assert text.count("unknown unit 'pp-xx'") == 20 and "…and 5 more problems." in text
    assert text.endswith("Nothing to import: correct the file and send it again.")
    assert "Sok Dara" not in text
    assert bot.api.buttons(bot.last_bot_message(wg["id"])) == []


async def test_expiry_and_rights_checked_again_on_press(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    await send_file(bot, wg, chat, "backlog.csv", GOOD)
    offer = bot.last_bot_message(wg["id"])
    bot.clock.advance(hours=2)
    m = await bot.press_button(wg, offer, "Import")
    assert bot.answers_since(m) == ["This import has expired: send the file again."]
    assert await imported(bot) == []

    # Dara is an official and, for the backlog, also in the working group; the working group
    # role is revoked between the upload and the press: the press is refused, nothing imported.
    from tests.test_people_e2e import invite

    dara, dara_chat = bot.official, bot.private(bot.official)
    token = await invite(bot, bot.admin, "/invite - working_group")
    await bot.say(dara, dara_chat, f"/start {token}")
    await send_file(bot, dara, dara_chat, "backlog.csv", GOOD)
    offer = bot.last_bot_message(dara["id"])
    assert bot.button(offer, "Import 2 cases")
    m = await bot.say(bot.admin, bot.private(bot.admin), "/revoke @dara - working_group")
    assert bot.texts_since(m) == ["Removed: working group. It takes effect at once."]
    m = await bot.press_button(dara, offer, "Import")
    assert bot.answers_since(m) == ["You are not allowed to do that."]
    assert await imported(bot) == []
    refusals = await bot.services.db.all("SELECT tg_id, action FROM refusals")
    assert [tuple(r) for r in refusals] == [(dara["id"], "import")]


async def test_a_csv_during_new_is_an_attachment(bot: Bot) -> None:
    """The /new conversation is registered first: at its attachments step a CSV is attached."""
    wg, chat = bot.wg, bot.private(bot.wg)
    await bot.say(wg, chat, "/new")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Walk-in")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Land dispute")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Siem Reap")
    for answer in ("Market stall removed", "Mao Sina", "012 000 000", "Stall removed without notice"):
        await bot.say(wg, chat, answer)
    m = await send_file(bot, wg, chat, "receipts.csv", GOOD)
    texts = bot.texts_since(m)
    assert len(texts) == 1 and "Attached (1)" in texts[0]
    assert bot.api.buttons(bot.last_bot_message(chat["id"]))[0][1] == "nd:done"
    assert await imported(bot) == []
