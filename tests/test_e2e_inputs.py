"""Bad input, forged buttons, stale cards, forwarded messages, paging, chats, long messages."""

from __future__ import annotations

from pathlib import Path

from bot.domain.cases import Actor, Change, Draft
from bot.domain.rules import Action
from tests.conftest import ADMIN, DP_CHAT, WG, WG_CHAT, Clock
from tests.harness import Bot, running_bot, unknown_answer


async def make_case(bot: Bot, unit: str | None = "pp-dp", **draft: object) -> int:
    services = bot.services
    cats = await services.units.categories()
    d = Draft(source="phone", category_id=cats[0].id,
              place_unit_id=(await services.units.by_key("pp-dp")).id, summary="Road flooded",
              citizen_name="Chan Lina", citizen_contact="099 111 222")
    for k, v in draft.items():
        setattr(d, k, v)
    actor = Actor(WG, "Sophea", WG_CHAT)
    case = await services.cases.create(actor, d, bot.clock())
    if unit:
        await services.cases.apply(case.id, Action.ASSIGN, actor, Change(unit_key=unit), bot.clock())
    await bot.settle()
    return case.id


async def counts(bot: Bot) -> tuple[int, int]:
    db = bot.services.db
    cases = await db.one("SELECT COALESCE(SUM(version), 0) FROM cases")
    events = await db.one("SELECT COUNT(*) FROM events")
    assert cases is not None and events is not None
    return int(cases[0]), int(events[0])


async def test_malformed_commands_get_one_sentence_and_usage_and_change_nothing(bot: Bot) -> None:
    await make_case(bot)
    before = await counts(bot)
    wg, chat = bot.wg, bot.private(bot.wg)
    cases = [
        ("/assign", "Which case?", "/assign &lt;case&gt;"),
        ("/assign abc pp", "is not a case number", "Usage"),
        ("/assign 99 pp-dp", "There is no case #99", None),
        ("/assign 1 nowhere", "There is no unit with the key", None),
        ("/assign 1", "To which unit?", "Usage"),
        ("/assign 1 pp-ck", "has no bound chat", None),
        ("/status 1 done", "in_progress or waiting_info", "Usage"),
        ("/resolve 1", "Say what was done", "Usage"),
        ("/reopen 1 because", "cannot be done now", None),
        ("/case", "Give one case number", "Usage"),
        ("/case #x", "is not a case number", None),
    ]
    for text, sentence, usage in cases:
        m = await bot.say(wg, chat, text)
        answers = bot.texts_since(m)
        assert len(answers) == 1, (text, answers)
        assert sentence in answers[0], (text, answers[0])
        if usage:
            assert usage in answers[0], (text, answers[0])
        assert "Traceback" not in answers[0]
    assert await counts(bot) == before


async def test_strangers_and_other_units_are_refused(bot: Bot) -> None:
    n = await make_case(bot)
    before = await counts(bot)
    access = unknown_answer(bot.stranger["id"])
    m = await bot.say(bot.stranger, bot.private(bot.stranger), "/new")
    assert bot.texts_since(m) == [access]
    m = await bot.say(bot.stranger, bot.private(bot.stranger), f"/case {n}")
    assert bot.texts_since(m) == [access]
    m = await bot.say(bot.official, bot.private(bot.official), "/new")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    # A Siem Reap official presses a forged Accept for a Daun Penh case from their own chat.
    card = bot.card(DP_CHAT, n)
    accept = bot.button(card, "Accept")
    bot.api.send_message(bot.other, bot.sr_chat, "/mycases")  # seen in Siem Reap's chat
    await bot.settle()
    sr_msg = bot.last_bot_message(bot.sr_chat["id"])
    m = await bot.press(bot.other, bot.sr_chat["id"], sr_msg["message_id"], accept)
    assert bot.answers_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.official, bot.dp_chat, f"/reopen {n} please reopen")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    assert await counts(bot) == before


async def test_forged_and_stale_buttons(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    before = await counts(bot)
    for data in ("c:1:1:zzz", "c:x:y:acc", "as:1", "ap:1:2", "np:9:9", "garbage" * 9, "ans:abc"):
        m = await bot.press(bot.official, DP_CHAT, card["message_id"], data)
        assert bot.answers_since(m) == ["That button is not valid any more."], data
    assert await counts(bot) == before

    # Accept, then press the old Accept again: "This case has changed" and the card is redrawn.
    accept = bot.button(card, "Accept")
    await bot.press(bot.official, DP_CHAT, card["message_id"], accept)
    after_accept = await counts(bot)
    m = await bot.press(bot.official, DP_CHAT, card["message_id"], accept)
    assert bot.answers_since(m) == ["This case has changed. Here is its current card."]
    assert await counts(bot) == after_accept
    assert "In progress" in bot.card(DP_CHAT, n)["text"]


async def test_not_ours_returns_the_case_with_the_reason(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Not ours")
    m = await bot.reply_to_last(bot.official, bot.dp_chat, "This street is in Chamkar Mon")
    assert any("returned as not ours by Dara: This street is in Chamkar Mon" in t
               for t in bot.texts_since(m, WG_CHAT))
    card = bot.card(DP_CHAT, n)
    assert "Returned to the working group" in card["text"] and "Chan Lina" not in card["text"]
    case = await bot.services.cases.get(n)
    assert case.unit_id is None and case.status == "new"


async def test_typed_commands_walk(bot: Bot) -> None:
    n = await make_case(bot)
    dp, official = bot.dp_chat, bot.official
    m = await bot.say(official, dp, f"/status {n} in_progress")
    assert bot.texts_since(m, DP_CHAT) == [f"#{n} is now: In progress."]
    m = await bot.say(official, dp, f"/status {n} waiting_info need the plot map")
    assert "Waiting for information" in bot.texts_since(m, DP_CHAT)[0]
    await bot.say(bot.wg, bot.wg_chat, f"/answer {n} Map sent by email")
    await bot.say(official, dp, f"/note #{n} visited the site <today>")
    m = await bot.say(official, dp, f"/resolve {n} Drain cleared and road reopened")
    assert bot.texts_since(m, DP_CHAT) == [f"#{n} is now: Resolved — awaiting verification."]
    m = await bot.say(bot.wg, bot.wg_chat, f"/reopen {n} Citizen says water is back")
    assert any(f"#{n} is reopened: Citizen says water is back" in t for t in bot.texts_since(m, DP_CHAT))
    actions = [e.action for e in await bot.services.cases.history(n)]
    assert actions == ["create", "assign", "accept", "need_info", "provide_info", "note", "resolve",
                       "reopen"]
    notes = [e.note for e in await bot.services.cases.history(n)]
    assert "visited the site <today>" in notes


async def test_forwarded_message_becomes_a_case_with_its_original_date(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    origin = int(bot.clock().timestamp()) - 5 * 86400
    m = bot.api.mark()
    bot.api.forward_message(wg, chat, "Please help: my ID card application is stuck",
                            origin_date=origin, origin_sender_name="A citizen")
    await bot.settle()
    offer = bot.last_bot_message(chat["id"])
    assert offer["text"] == "Create a case from this message?"
    await bot.press_button(wg, offer, "Create a case")
    assert "Which category?" in bot.last_bot_message(chat["id"])["text"]
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Civil documents")
    picker = bot.last_bot_message(chat["id"])
    await bot.press_button(wg, picker, "Siem Reap")
    await bot.say(wg, chat, "ID card application stuck")
    await bot.say(wg, chat, "Keo Sreymom")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Skip")
    desc = bot.last_bot_message(chat["id"])
    await bot.press_button(wg, desc, "Keep the forwarded text")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Done")
    confirm = bot.last_bot_message(chat["id"])
    assert "my ID card application is stuck" in confirm["text"]
    assert "Telegram" in confirm["text"]
    await bot.press_button(wg, confirm, "Create")
    cases, _total = await bot.services.cases.open_cases(Actor(WG, "x", None), 0, bot.clock())
    case = cases[0]
    assert int(case.received_at.timestamp()) == origin and case.source == "telegram"
    assert case.citizen_contact == "" and bot.texts_since(m)


async def test_edit_and_cancel_on_the_confirm_screen(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    await bot.say(wg, chat, "/new")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Phone")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Land dispute")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Siem Reap")
    m = await bot.say(wg, chat, "/cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was saved."]
    assert (await bot.services.cases.open_cases(Actor(WG, "x", None), 0, bot.clock()))[1] == 0

    await bot.say(wg, chat, "/new")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Walk-in")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Land dispute")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Siem Reap")
    for answer in ("Market stall removed", "Mao Sina", "012 000 000", "Stall removed without notice"):
        await bot.say(wg, chat, answer)
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Done")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Edit")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Summary")
    await bot.say(wg, chat, "Market stall removed without notice")
    confirm = bot.last_bot_message(chat["id"])
    assert "Summary: Market stall removed without notice" in confirm["text"]
    await bot.press_button(wg, confirm, "Edit")
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Received")
    m = await bot.say(wg, chat, "30/04/2026")
    assert "is not a date like" in bot.texts_since(m)[0]
    await bot.say(wg, chat, "2026-04-30")
    confirm = bot.last_bot_message(chat["id"])
    assert "30 Apr 2026" in confirm["text"]
    await bot.press_button(wg, confirm, "Mark urgent")
    confirm = bot.last_bot_message(chat["id"])
    assert "Priority: Urgent" in confirm["text"]
    await bot.press_button(wg, confirm, "Create")
    case = (await bot.services.cases.open_cases(Actor(WG, "x", None), 0, bot.clock()))[0][0]
    assert case.summary == "Market stall removed without notice" and case.priority == "urgent"
    assert case.received_at.date().isoformat() == "2026-04-30"


async def test_new_only_in_private(bot: Bot) -> None:
    m = await bot.say(bot.wg, bot.wg_chat, "/new")
    assert "private chat" in bot.texts_since(m)[0]


async def test_mycases_pages_and_overdue(bot: Bot) -> None:
    for i in range(12):
        await make_case(bot, summary=f"Case number {i}")
    m = await bot.say(bot.official, bot.dp_chat, "/mycases")
    first = bot.sent_since(m, DP_CHAT)[-1]
    assert "page 1/2, 12 in all" in first.params["text"] and "Case number 0" in first.params["text"]
    listing = bot.last_bot_message(DP_CHAT)
    await bot.press_button(bot.official, listing, "Next")
    listing = bot.api.messages[(DP_CHAT, listing["message_id"])]
    assert "page 2/2" in listing["text"] and "Case number 11" in listing["text"]
    m = await bot.say(bot.official, bot.dp_chat, "/overdue")
    assert bot.texts_since(m, DP_CHAT) == ["No overdue cases."]
    bot.clock.advance(days=16)
    m = await bot.say(bot.official, bot.dp_chat, "/overdue")
    assert "12 in all" in bot.texts_since(m, DP_CHAT)[0]
    # A registered person with no case in their units sees none.
    m = await bot.say(bot.other, bot.private(bot.other), "/mycases")
    assert bot.texts_since(m) == ["No open cases."]


async def test_assign_to_unit_without_chat_says_so_plainly(bot: Bot) -> None:
    n = await make_case(bot, unit=None)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-ck")
    assert "Chamkar Mon has no bound chat, so the case stays unassigned" in bot.texts_since(m)[0]
    assert (await bot.services.cases.get(n)).unit_id is None


async def test_bindchat_survives_restart_and_only_admins_bind(tmp_path: Path, clock: Clock) -> None:
    new_group = -100777
    async with running_bot(tmp_path, clock) as bot:
        group = bot.api.group_chat(new_group, "Chamkar Mon district")
        m = await bot.say(bot.wg, group, "/bindchat pp-ck")
        assert bot.texts_since(m) == []  # an unbound group hears only an admin's /bindchat
        m = await bot.say(bot.admin, group, "/help")
        assert bot.texts_since(m) == []
        m = await bot.say(bot.admin, bot.private(bot.admin), "/bindchat pp-ck")
        assert "not in a private chat" in bot.texts_since(m)[0]
        m = await bot.say(bot.admin, group, "/bindchat")
        assert "Usage" in bot.texts_since(m)[0]
        m = await bot.say(bot.admin, group, "/bindchat pp-ck")
        assert bot.texts_since(m) == ["This chat is now the chat of Chamkar Mon."]
    async with running_bot(tmp_path, clock) as bot:
        m = await bot.say(bot.official, bot.dp_chat, "/units")
        units = bot.texts_since(m)[0]
        assert "✅ <code>pp-ck</code> Chamkar Mon" in units
        assert "▫️ <code>moi</code> Ministry of Interior" in units
        n = await make_case(bot, unit=None)
        await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-ck")
        assert bot.card(new_group, n)
        row = await bot.services.db.one("SELECT bound_by FROM chat_bindings")
        assert row is not None and row[0] == ADMIN


async def test_long_history_is_split_and_user_text_escaped(bot: Bot) -> None:
    n = await make_case(bot, description="<b>not bold</b> " + "x" * 2900)
    for i in range(12):
        await bot.services.cases.apply(n, Action.NOTE, Actor(WG, "Sophea", WG_CHAT),
                                       Change(text=f"note {i} " + "&<>" * 100), bot.clock())
    await bot.settle()
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    texts = bot.texts_since(m, WG)
    assert len(texts) >= 2 and all(len(t) <= 4096 for t in texts)
    assert "&lt;b&gt;not bold&lt;/b&gt;" in texts[0]
    assert not bot.api.server_errors


async def test_help_and_start(bot: Bot) -> None:
    m = await bot.say(bot.official, bot.private(bot.official), "/start")
    text = bot.texts_since(m)[0]
    assert "/mycases" in text and "/assign" not in text
    m = await bot.say(bot.wg, bot.private(bot.wg), "/help")
    assert "/assign" in bot.texts_since(m)[0]
    m = await bot.say(bot.official, bot.private(bot.official), "/cancel")
    assert bot.texts_since(m) == ["There is nothing to cancel."]
