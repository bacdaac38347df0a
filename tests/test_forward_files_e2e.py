"""The request's files go to another institution only when the working group shares them with
the forward, and the choice is recorded in the forward's event."""

from __future__ import annotations

from typing import Any

from bot.domain.cases import Actor, AttachmentIn
from tests.conftest import LIAISON, WG_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case
from tests.test_forward_verify_e2e import MLM_CHAT, bind_institution_chat

FILES = [AttachmentIn("photo", "INTAKE-PHOTO"), AttachmentIn("document", "INTAKE-DOC", "title.pdf")]


async def case_with_files(bot: Bot, files: list[AttachmentIn]) -> int:
    """A new case whose files the citizen gave (known to Telegram: someone sent them first)."""
    someone, chat = bot.supervisor, bot.private(bot.supervisor)
    for f in files:
        if f.kind == "photo":
            bot.api.send_photo(someone, chat, file_id=f.file_id)
        else:
            bot.api.send_document(someone, chat, file_name=f.file_name or "a.pdf", file_id=f.file_id)
    await bot.settle()
    return await make_case(bot, unit=None, attachments=files)


def files_sent(bot: Bot, m: int, chat_id: int | None = MLM_CHAT) -> list[str]:
    return [str(c.params.get("photo") or c.params.get("document"))
            for method in ("sendPhoto", "sendDocument") for c in bot.sent_since(m, chat_id, method)]


async def forward_events(bot: Bot, n: int) -> list[dict[str, Any]]:
    """What each forward recorded (less the deadline it set, which every step records)."""
    return [{k: v for k, v in e.data.items() if k != "due"}
            for e in await bot.services.cases.history(n) if e.action == "forward"]


async def decline(bot: Bot, liaison_chat: dict, n: int) -> None:
    await bot.press_button(bot.liaison, bot.card(MLM_CHAT, n), "Decline")
    await bot.reply_to_last(bot.liaison, liaison_chat, "Not a matter for the land registry")
    assert (await bot.services.cases.get(n)).status == "new"


async def forward_by_command(bot: Bot, n: int, answer: str) -> int:
    wg = bot.private(bot.wg)
    m = await bot.say(bot.wg, wg, f"/forward {n} mlm Land titles are theirs")
    question = bot.last_bot_message(wg["id"])
    assert question["text"] == (
        f"Before #{n} goes to Ministry of Land: share the request's 2 files with them? Their card "
        "never shows the citizen's name and contact; the files go only if you share them.")
    assert bot.sent_since(m, MLM_CHAT) == [] and files_sent(bot, m) == []
    assert (await bot.services.cases.get(n)).status == "new"  # not forwarded before the answer
    return await bot.press_button(bot.wg, question, answer)


async def test_forward_shares_files_only_when_chosen_and_records_it(bot: Bot) -> None:
    liaison_chat = await bind_institution_chat(bot)
    n = await case_with_files(bot, FILES)

    # Not shared: the card goes without personal data, and no file follows it.
    m = await forward_by_command(bot, n, "Don't share")
    assert bot.last_bot_message(bot.wg["id"])["text"] == (
        f"✅ #{n} is forwarded. The files stay with the working group.")
    card = bot.card(MLM_CHAT, n)
    assert "Chan Lina" not in card["text"] and "099 111 222" not in card["text"]
    assert files_sent(bot, m) == []
    assert any(f"#{n} (Road flooded) · forwarded by Sophea → Ministry of Land · 2 files not shared" in t
               for t in bot.texts_since(m, WG_CHAT))
    assert await forward_events(bot, n) == [
        {"unit": "mlm", "unit_name": "Ministry of Land", "channel": "telegram", "from_unit": None,
         "files": 2, "shared_files": False}]
    # Their card, asked for again under a reminder, and /case in their chat hold the files back.
    m = bot.api.mark()
    await bot.services.cases.show_card(Actor(LIAISON, "Rith", MLM_CHAT), n, bot.clock())
    await bot.settle()
    assert bot.sent_since(m, MLM_CHAT) and files_sent(bot, m) == []

    # Declined and forwarded again, shared this time: each file goes once, under the card.
    await decline(bot, liaison_chat, n)
    m = await forward_by_command(bot, n, "Share files")
    assert bot.last_bot_message(bot.wg["id"])["text"] == (
        f"✅ #{n} is forwarded. The 2 files went to Ministry of Land with the card.")
    assert files_sent(bot, m) == ["INTAKE-PHOTO", "INTAKE-DOC"]
    card = bot.card(MLM_CHAT, n)
    for method in ("sendPhoto", "sendDocument"):
        [sent] = bot.sent_since(m, MLM_CHAT, method)
        assert sent.params["reply_parameters"]["message_id"] == card["message_id"]
    assert files_sent(bot, m, WG_CHAT) == []
    assert (await forward_events(bot, n))[-1]["shared_files"] is True

    # Forwarded a third time without sharing: nothing is sent again.
    await decline(bot, liaison_chat, n)
    m = await forward_by_command(bot, n, "Don't share")
    assert files_sent(bot, m, None) == []
    assert [(e["files"], e["shared_files"]) for e in await forward_events(bot, n)] == [
        (2, False), (2, True), (2, False)]

    m = await bot.say(bot.liaison, liaison_chat, f"/case {n}")
    assert "History" in bot.texts_since(m)[0] and files_sent(bot, m) == []

    # The history says what went where.
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    shown = bot.texts_since(m)[0]
    assert shown.count("2 files not shared") == 2 and shown.count("2 files shared") == 1


async def test_forward_button_flow_asks_after_the_reason(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await case_with_files(bot, FILES[:1])
    wg, wg_private = bot.wg, bot.private(bot.wg)
    m = await bot.say(wg, wg_private, f"/case {n}")
    [call] = [c for c in bot.sent_since(m, wg["id"]) if "History" in c.params["text"]]
    shown = bot.api.messages[(wg["id"], call.result["message_id"])]
    await bot.press_button(wg, shown, "Forward to another institution")
    await bot.press_button(wg, bot.api.messages[(wg["id"], shown["message_id"])], "Ministry of Land")
    m = await bot.reply_to_last(wg, wg_private, "Land titles are theirs")
    question = bot.last_bot_message(wg["id"])
    assert question["text"].startswith(
        f"Before #{n} goes to Ministry of Land: share the request's file with them?")
    assert bot.sent_since(m, MLM_CHAT) == []

    # Someone else pressing the question's buttons decides nothing.
    m = await bot.press_button(bot.admin, question, "Share files")
    assert bot.answers_since(m) == ["That button is not valid any more."]
    assert (await bot.services.cases.get(n)).status == "new"

    m = await bot.press_button(wg, question, "Share files")
    assert bot.api.messages[(wg["id"], question["message_id"])]["text"] == (
        f"✅ #{n} is forwarded. The file went to Ministry of Land with the card.")
    assert files_sent(bot, m) == ["INTAKE-PHOTO"]
    assert (await forward_events(bot, n))[-1] == {
        "unit": "mlm", "unit_name": "Ministry of Land", "channel": "telegram", "from_unit": None,
        "files": 1, "shared_files": True}

    # The question answered, its buttons are spent: a second press sends nothing again.
    m = await bot.press_button(wg, question, "Share files")
    assert bot.answers_since(m) == ["That button is not valid any more."]
    assert files_sent(bot, m, None) == []
    assert len(await forward_events(bot, n)) == 1


async def test_a_case_changed_while_the_question_waits_is_not_forwarded(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await case_with_files(bot, FILES)
    wg = bot.private(bot.wg)
    await bot.say(bot.wg, wg, f"/forward {n} mlm Land titles are theirs")
    question = bot.last_bot_message(wg["id"])
    await bot.say(bot.admin, bot.private(bot.admin), f"/assign {n} pp-dp")
    m = await bot.press_button(bot.wg, question, "Share files")
    assert bot.answers_since(m) == ["#1 has changed meanwhile: it is Assigned — awaiting acceptance now."]
    assert bot.api.buttons(bot.api.messages[(wg["id"], question["message_id"])]) == []
    assert files_sent(bot, m, None) == []
    case = await bot.services.cases.get(n)
    assert case.status == "assigned" and case.unit_key == "pp-dp"


async def test_no_question_without_files_or_without_a_chat(bot: Bot) -> None:
    await bind_institution_chat(bot)
    plain = await make_case(bot, unit=None)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/forward {plain} mlm Land titles are theirs")
    assert bot.texts_since(m, bot.wg["id"]) == [
        f"#{plain} is now: Forwarded — awaiting acknowledgment."]
    assert (await forward_events(bot, plain))[-1]["files"] == 0



async def test_no_question_for_an_institution_without_a_chat(bot: Bot) -> None:
    n = await case_with_files(bot, FILES)  # the Ministry of Land has no chat here
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/forward {n} mlm letter Land titles are theirs")
    assert bot.texts_since(m, bot.wg["id"]) == [f"#{n} is now: Forwarded — awaiting acknowledgment."]
    assert files_sent(bot, m, None) == []
    assert (await forward_events(bot, n))[-1]["files"] == 2
    assert (await forward_events(bot, n))[-1]["shared_files"] is False


async def test_refused_before_anything_is_asked(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await case_with_files(bot, FILES)
    m = await bot.say(bot.official, bot.dp_chat, f"/forward {n} mlm Land titles are theirs")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    rows = await bot.services.db.all("SELECT tg_id, action, case_id FROM refusals")
    assert [tuple(r) for r in rows] == [(bot.official["id"], "forward", n)]
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/forward {n} mlm ok")
    assert "at least 3 characters" in bot.texts_since(m)[0]
    assert (await bot.services.cases.get(n)).status == "new"


async def test_cancel_leaves_the_case_where_it_was(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await case_with_files(bot, FILES)
    m = await forward_by_command(bot, n, "Cancel")
    question = bot.last_bot_message(bot.wg["id"])
    assert question["text"] == "Cancelled. Nothing was changed." and bot.api.buttons(question) == []
    assert bot.sent_since(m, MLM_CHAT) == [] and files_sent(bot, m, None) == []
    assert (await bot.services.cases.get(n)).status == "new" and await forward_events(bot, n) == []
    m = await bot.press(bot.wg, bot.wg["id"], question["message_id"], f"fs:{n}:1")
    assert bot.answers_since(m) == ["That button is not valid any more."]
    assert await forward_events(bot, n) == []
