"""Who read what: every view of a case's personal data is recorded (who, when, which case, through
what), and admins can list it (/accesslog) and export it (casebot accesslog)."""

from __future__ import annotations

import argparse
import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Settings
from bot.db import Database, IntegrityError
from bot.domain import access
from bot.domain.cases import AttachmentIn
from bot.reporting import cli_export
from tests.conftest import DP_CHAT, OFFICIAL, SR_CHAT, WG, WG_CHAT, Clock, Domain, cli_config
from tests.fakebotapi import parse_html
from tests.harness import Bot
from tests.test_e2e_inputs import make_case
from tests.test_forward_verify_e2e import MLM_CHAT, bind_institution_chat

NOT_ALLOWED = "You are not allowed to do that."


async def views(where: Bot | Database, case_id: int | None = None) -> list[tuple[Any, ...]]:
    """The log's rows (case, via, who_id, who_name, chat_id, unit key), oldest first."""
    db = where if isinstance(where, Database) else where.services.db
    rows = await db.all(
        "SELECT a.case_id, a.via, a.who_id, a.who_name, a.chat_id, u.key FROM data_access a"
        " LEFT JOIN units u ON u.id = a.unit_id" + (" WHERE a.case_id = ?" if case_id else "")
        + " ORDER BY a.id", (case_id,) if case_id else ())
    return [tuple(r) for r in rows]


async def test_case_as_working_group_records_a_row(bot: Bot) -> None:
    n = await make_case(bot)
    before = await views(bot, n)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    assert "Chan Lina · 099 111 222" in bot.texts_since(m)[0]
    assert (await views(bot, n))[len(before):] == [(n, "case", WG, "Sophea", WG, None)]
    # The time is the clock's, in UTC.
    row = await bot.services.db.one("SELECT at FROM data_access ORDER BY id DESC LIMIT 1")
    assert row is not None and row[0] == "2026-11-02T02:00:00+00:00"

    # In the unit's chat, the official reads it there: the chat is recorded with the person.
    m = await bot.say(bot.official, bot.dp_chat, f"/case {n}")
    assert "Chan Lina" in bot.texts_since(m, DP_CHAT)[0]
    assert (await views(bot, n))[-1] == (n, "case", OFFICIAL, "Dara", DP_CHAT, "pp-dp")

    # Where the card holds no personal data, nothing is recorded: another unit's group, a
    # liaison (no right to read it), a stranger.
    count = len(await views(bot))
    m = await bot.say(bot.wg, bot.sr_chat, f"/case {n}")
    assert "Chan Lina" not in bot.texts_since(m, SR_CHAT)[0]
    m = await bot.say(bot.liaison, bot.private(bot.liaison), f"/case {n}")
    assert bot.texts_since(m) == [NOT_ALLOWED]
    assert len(await views(bot)) == count


def photo(bot: Bot, file_id: str) -> AttachmentIn:
    """A photo Telegram knows (as if someone had sent it to the bot)."""
    bot.api._make_media("photo", b"\xff\xd8\xff\xe0fake-jpeg", file_id=file_id)
    return AttachmentIn("photo", file_id)


async def test_case_with_files_records_the_files(bot: Bot) -> None:
    n = await make_case(bot, unit=None, attachments=[photo(bot, "INTAKE-PHOTO")])
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    assert len(bot.sent_since(m, WG, "sendPhoto")) == 1
    assert await views(bot, n) == [(n, "case", WG, "Sophea", WG, None), (n, "files", WG, "Sophea", WG, None)]


async def test_official_card_in_the_unit_chat_records_a_row_for_that_chat(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    assert "Chan Lina" in card["text"]
    dp_card = (n, "card", DP_CHAT, "Daun Penh", DP_CHAT, "pp-dp")
    assert await views(bot, n) == [dp_card]

    # Edits of a card that already shows the name and contact are not new views.
    await bot.press_button(bot.official, card, "Accept")
    assert "In progress" in bot.card(DP_CHAT, n)["text"]
    assert await views(bot, n) == [dp_card]

    # "Not ours": the card no longer shows them; nothing recorded.
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Not ours")
    await bot.reply_to_last(bot.official, bot.dp_chat, "The plot is in Kandal")
    assert "Chan Lina" not in bot.card(DP_CHAT, n)["text"]
    assert await views(bot, n) == [dp_card]

    # Assigned there again: a new card with them, a view; the old card says a newer one is
    # further down, without them (and without buttons): no view.
    await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-dp")
    shown = [msg for (chat, _m), msg in bot.api.messages.items()
             if chat == DP_CHAT and str(msg.get("text", "")).startswith(f"#{n} · ")]
    assert len(shown) == 2 and ["Chan Lina" in msg["text"] for msg in shown] == [False, True]
    assert shown[0]["text"].endswith("A newer card of this case is further down.")
    assert await views(bot, n) == [dp_card] * 2


async def test_an_edit_whose_record_was_lost_is_recorded_when_tried_again(bot: Bot) -> None:
    """The bot died after Telegram showed the name and contact again, before recording it: the
    next refresh finds the card already showing them ("not modified") and records the view."""
    n = await make_case(bot)
    await bot.services.db.write("UPDATE case_cards SET personal = 0 WHERE case_id = ?", (n,))
    dp_card = (n, "card", DP_CHAT, "Daun Penh", DP_CHAT, "pp-dp")
    for _ in range(2):
        m = bot.api.mark()
        await bot.services.cases.refresh_cards(n, bot.clock())  # as after a stale press
        await bot.settle()
        [edit] = bot.sent_since(m, DP_CHAT, "editMessageText")
        assert "not modified" in str(edit.error)
        assert await views(bot, n) == [dp_card] * 2  # recorded once, not again


async def test_the_intake_files_posted_with_a_card_are_recorded(bot: Bot) -> None:
    n = await make_case(bot, attachments=[photo(bot, "INTAKE-PHOTO")])
    assert await views(bot, n) == [(n, "card", DP_CHAT, "Daun Penh", DP_CHAT, "pp-dp"),
                                   (n, "files", DP_CHAT, "Daun Penh", DP_CHAT, "pp-dp")]


async def test_a_liaison_card_without_personal_data_records_none(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    await bot.say(bot.wg, bot.private(bot.wg), f"/forward {n} mlm Land titles are theirs")
    card = bot.card(MLM_CHAT, n)
    assert "Chan Lina" not in card["text"]
    await bot.press_button(bot.liaison, card, "Acknowledge")  # an edit: still none
    await bot.reply_to_last(bot.liaison, bot.api.group_chat(MLM_CHAT, "x"), "MLM-1")
    assert "With the institution" in bot.card(MLM_CHAT, n)["text"]
    assert await views(bot, n) == []


async def test_a_card_asked_for_under_a_reminder_is_a_view_by_that_person(bot: Bot) -> None:
    n = await make_case(bot)
    chat = bot.private(bot.official)
    await bot.say(bot.official, chat, "/help")
    version = (await bot.services.cases.get(n)).version
    await bot.press(bot.official, chat["id"], bot.last_bot_message(chat["id"])["message_id"],
                    f"c:{n}:{version}:upd")
    assert "Chan Lina" in bot.card(OFFICIAL, n)["text"]
    assert (await views(bot, n))[-1] == (n, "card", OFFICIAL, "Dara", OFFICIAL, None)


async def test_export_with_personal_data_records_a_row_per_case(bot: Bot) -> None:
    a, b = await make_case(bot), await make_case(bot, unit=None)
    start = len(await views(bot))
    m = await bot.say(bot.wg, bot.private(bot.wg), "/export")
    assert "personal data: included" in bot.sent_since(m, None, "sendDocument")[0].params["caption"]
    assert (await views(bot))[start:] == [(a, "export", WG, "Sophea", WG, None),
                                          (b, "export", WG, "Sophea", WG, None)]
    start += 2
    for user, chat, text in ((bot.wg, bot.private(bot.wg), "/export nopd"),
                             (bot.wg, bot.wg_chat, "/export"),  # a group: never personal data
                             (bot.supervisor, bot.private(bot.supervisor), "/export")):
        m = await bot.say(user, chat, text)
        assert "left out" in bot.sent_since(m, None, "sendDocument")[0].params["caption"], text
    assert len(await views(bot)) == start


async def _cli_export(settings: Settings, path: Path, *, nopd: bool) -> None:
    assert await cli_export(settings, argparse.Namespace(
        period=None, format="csv", output=str(path), no_personal_data=nopd)) == 0


async def test_cli_export_records_rows_and_nopd_none(domain: Domain, clock: Clock, tmp_path: Path) -> None:
    a = await domain.new_case(clock)
    b = await domain.new_case(clock)
    await _cli_export(domain.settings, tmp_path / "nopd.csv", nopd=True)
    assert await views(domain.db) == []
    await _cli_export(domain.settings, tmp_path / "all.csv", nopd=False)
    assert await views(domain.db) == [(a, "export", None, "casebot CLI", None, None),
                                       (b, "export", None, "casebot CLI", None, None)]


async def test_the_log_is_append_only(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await access.record(domain.db, access.CLI, [n], access.VIA_EXPORT, clock())
    for sql in ("UPDATE data_access SET who_name = 'nobody'", "DELETE FROM data_access"):
        with pytest.raises(IntegrityError, match="append-only"):
            await domain.db.write(sql)
    assert len(await views(domain.db)) == 1


async def test_non_admins_are_refused_and_the_refusal_is_recorded(bot: Bot) -> None:
    n = await make_case(bot)
    for user, chat in ((bot.wg, bot.private(bot.wg)), (bot.official, bot.dp_chat),
                       (bot.supervisor, bot.private(bot.supervisor))):
        m = await bot.say(user, chat, f"/accesslog {n}")
        assert bot.texts_since(m) == [NOT_ALLOWED], user["first_name"]
    refusals = await bot.services.db.all("SELECT tg_id, action, case_id FROM refusals ORDER BY id")
    assert [tuple(r) for r in refusals] == [(WG, "accesslog", n), (OFFICIAL, "accesslog", n),
                                            (bot.supervisor["id"], "accesslog", n)]
    m = await bot.say(bot.admin, bot.private(bot.admin), "/refusals")
    assert f"Sophea · see who saw personal data #{n}" in bot.texts_since(m)[0]


async def test_accesslog_lists_newest_first_in_valid_html(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    # A name as people choose them, and the command line.
    await access.record(bot.services.db, access.Viewer(7, "<b>Evil</b> & co", 7), [n],
                        access.VIA_CASE, bot.clock())
    bot.clock.advance(hours=1)
    await access.record(bot.services.db, access.CLI, [n], access.VIA_EXPORT, bot.clock())
    admin = bot.private(bot.admin)
    m = await bot.say(bot.admin, admin, f"/accesslog {n}")
    [text] = bot.texts_since(m)
    plain = parse_html(text)[0]
    assert plain.splitlines() == [
        f"Who saw the personal data of #{n}, newest first — page 1/1, 4 in all",
        "• 2 Nov 2026, 10:00 · export · the command line (casebot CLI)",
        "• 2 Nov 2026, 09:00 · /case · <b>Evil</b> & co (7)",
        f"• 2 Nov 2026, 09:00 · /case · Sophea ({WG})",
        "• 2 Nov 2026, 09:00 · card · the chat of Daun Penh",
    ]
    m = await bot.say(bot.admin, admin, "/lang km")
    m = await bot.say(bot.admin, admin, f"/accesslog {n}")
    khmer = parse_html(bot.texts_since(m)[0])[0]
    assert khmer.startswith(f"អ្នកដែលបានឃើញទិន្នន័យផ្ទាល់ខ្លួននៃករណី #{n}")
    assert "កាតករណី · ឆាតរបស់ Daun Penh" in khmer
    m = await bot.say(bot.admin, admin, "/lang en")


async def test_accesslog_pages_and_bad_input(bot: Bot) -> None:
    n = await make_case(bot)
    other = await make_case(bot, unit=None)
    await access.record(bot.services.db, access.CLI, [n] * 24, access.VIA_EXPORT, bot.clock())
    admin = bot.private(bot.admin)
    m = await bot.say(bot.admin, admin, f"/accesslog #{n}")
    [text] = bot.texts_since(m)
    assert "page 1/2, 25 in all" in text and text.count("\n•") == 20
    message = bot.last_bot_message(admin["id"])
    await bot.press_button(bot.admin, message, "Next")
    page2 = bot.api.messages[(admin["id"], message["message_id"])]
    assert "page 2/2, 25 in all" in page2["text"] and page2["text"].count("\n•") == 5
    assert page2["text"].rstrip().endswith("card · the chat of Daun Penh")  # the oldest last
    m = await bot.press(bot.admin, admin["id"], message["message_id"], f"al:{n}:99")
    assert "page 2/2" in bot.api.messages[(admin["id"], message["message_id"])]["text"]

    # A press by someone else is refused and recorded too.
    m = await bot.press(bot.wg, admin["id"], message["message_id"], f"al:{n}:0")
    assert bot.answers_since(m) == [NOT_ALLOWED]
    assert await bot.services.db.one(
        "SELECT 1 FROM refusals WHERE tg_id = ? AND action = 'accesslog'", (WG,)) is not None

    for text, expected in ((f"/accesslog {other}", f"No view of the personal data of #{other} is recorded."),
                           ("/accesslog 999", "There is no case #999."),
                           ("/accesslog", "Give one case number.\nUsage: /accesslog <case>"),
                           ("/accesslog x", "“x” is not a case number.\nUsage: /accesslog <case>"),
                           (f"/accesslog {n} {n}", "Give one case number.")):
        m = await bot.say(bot.admin, admin, text)
        [answer] = bot.texts_since(m)
        assert expected in parse_html(answer)[0], text
    m = await bot.say(bot.admin, admin, "/help")
    assert "/accesslog &lt;case&gt; — who saw the citizen's personal data" in bot.texts_since(m)[0]
    m = await bot.say(bot.wg, bot.private(bot.wg), "/help")
    assert "/accesslog" not in bot.texts_since(m)[0]


async def test_cli_accesslog_exports_the_log(domain: Domain, clock: Clock, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    a = await domain.new_case(clock)
    b = await domain.new_case(clock)
    await access.record(domain.db, access.Viewer(WG, "=cmd|' /C calc'!A0", WG), [a], access.VIA_CASE,
                        clock())
    clock.advance(days=2)
    await access.record(domain.db, await access.AccessLog(domain.db, domain.units, domain.people)
                        .chat(DP_CHAT), [a, b], access.VIA_CARD, clock())
    await access.record(domain.db, await access.AccessLog(domain.db, domain.units, domain.people)
                        .chat(WG_CHAT), [b], access.VIA_CARD, clock())
    config = cli_config(domain, tmp_path)

    def run(*args: str) -> list[dict[str, str]]:
        out = tmp_path / "log.csv"
        code = main(["accesslog", "--config", str(config), "-o", str(out), *args])
        assert code == 0
        with out.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))

    rows = await asyncio.to_thread(run)
    assert [(r["case"], r["via"], r["who_id"], r["who_name"], r["chat_id"], r["unit"]) for r in rows] == [
        (str(a), "case", str(WG), "'=cmd|' /C calc'!A0", str(WG), ""),  # never a formula
        (str(a), "card", str(DP_CHAT), "Daun Penh", str(DP_CHAT), "pp-dp"),
        (str(b), "card", str(DP_CHAT), "Daun Penh", str(DP_CHAT), "pp-dp"),
        (str(b), "card", str(WG_CHAT), "working group", str(WG_CHAT), ""),
    ]
    assert rows[0]["at_utc"] == "2026-11-02T02:00:00+00:00"
    assert "views of personal data: 4" in capsys.readouterr().out
    rows = await asyncio.to_thread(run, "--case", str(a))
    assert [r["via"] for r in rows] == ["case", "card"]
    rows = await asyncio.to_thread(run, "--since", "2026-11-04")  # local dates
    assert len(rows) == 3
    rows = await asyncio.to_thread(run, "--case", f"#{b}", "--since", "២០២៦-១១-០៥")
    assert rows == []
    for bad in (["--since", "2026-13-01"], ["--case", "x"]):
        with pytest.raises(SystemExit) as exc:
            await asyncio.to_thread(main, ["accesslog", "--config", str(config), "-o",
                                           str(tmp_path / "x.csv"), *bad])
        assert exc.value.code == 2
        assert "is not a" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["accesslog", "--config", str(config), "-o",
                                          str(tmp_path / "missing" / "x.csv")])
    assert code == 2 and "x.csv" in capsys.readouterr().err
