"""The working group's queue of requests from citizens, end to end: the ping, /inbox page by page,
a case made of a request through the intake (filled from the request), a duplicate, an abusive
request with its reason, one that is not a request; stale and forged presses change nothing; the
same in Khmer."""

from __future__ import annotations

from typing import Any

from tests.conftest import WG_CHAT
from tests.harness import Bot

PING = "📥 New requests from citizens are waiting. /inbox lists them."


async def store(bot: Bot, key: str, source: str, text: str, *, channel: str, address: str,
                name: str = "", contact: str = "", language: str | None = None,
                data: dict[str, Any] | None = None) -> int:
    """A request as the Facebook or Telegram front stores it (their own tests cover how)."""
    services = bot.services
    async with services.db.transaction() as tx:
        who = await services.citizens.find_or_create(tx, channel, address, bot.clock(), name=name,
                                                     language=language)
        if contact:
            services.citizens.set_contact(tx, who.id, name, contact)
        rid = await services.requests.receive(tx, key, source, who.id, text, bot.clock(), data)
    assert rid is not None
    services.sender.wake()
    return rid


async def four_requests(bot: Bot) -> list[int]:
    units, clock = bot.services.units, bot.clock
    dp = (await units.by_key("pp-dp")).id
    land = next(c.id for c in await units.categories() if c.key == "land")
    ids = [await store(bot, "tg:1:1", "telegram", "Flooded road <b>near</b> the school",
                       channel="telegram", address="7001", name="Sok Chea", contact="012 999 888",
                       data={"summary": "Flooded road near the school",
                             "details": "Water 50 cm deep <i>since Monday</i>.",
                             "place_unit_id": dp, "category_id": land,
                             "files": [{"kind": "photo", "file_id": "PHOTO-A"},
                                       {"kind": "document", "file_id": "DOC-B"}]})]
    clock.advance(minutes=5)
    ids.append(await store(bot, "fb:m:mid.2", "facebook_message",
                           "The road near the school is under water again", channel="messenger",
                           address="PSID-2", name="Dara Vann"))
    clock.advance(minutes=5)
    ids.append(await store(bot, "fb:c:10_20", "facebook_comment", "You are all thieves!!!",
                           channel="messenger", address="PSID-3", name="Anon",
                           data={"comment_id": "10_20", "post_id": "10"}))
    clock.advance(minutes=5)
    ids.append(await store(bot, "tg:7001:2", "telegram", "Thank you", channel="telegram",
                           address="7001", name="Sok Chea"))
    return ids


async def test_the_working_group_works_through_its_queue(bot: Bot) -> None:
    ids = await four_requests(bot)
    await bot.settle()
    assert bot.texts_since(0, WG_CHAT).count(PING) == 1  # four requests, one ping

    # Only the working group, and only where personal data may be shown.
    m = await bot.say(bot.official, bot.private(bot.official), "/inbox")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    m = await bot.say(bot.wg, bot.dp_chat, "/inbox")
    assert "Use /inbox in the working group's chat or in a private chat" in bot.texts_since(m)[0]

    m = await bot.say(bot.wg, bot.wg_chat, "/inbox")
    queue = bot.last_bot_message(WG_CHAT)
    text = queue["text"]
    assert "Requests from citizens waiting: 4 · 1/4" in text
    assert f"Request #{ids[0]} · Telegram · received 2 Nov 2026, 09:00" in text  # local time
    assert "From: Sok Chea · 012 999 888" in text and "Place: Daun Penh · Category: Land dispute" in text
    assert "Water 50 cm deep <i>since Monday</i>." in text  # the citizen's words, escaped
    assert "2 attachments" in text and "This citizen's first request." in text
    assert [label for label, _ in bot.api.buttons(queue)] == [
        "📝 Create case", "🚫 Not a request", "🔗 Duplicate of #…", "⚠️ Abusive…", "Next ›"]

    await bot.press_button(bot.wg, queue, "Next ›")
    queue = bot.api.messages[(WG_CHAT, queue["message_id"])]
    assert "2/4" in queue["text"] and "Facebook message" in queue["text"]
    assert "The road near the school is under water again" in queue["text"]
    assert "PSID" not in queue["text"]
    await bot.press_button(bot.wg, queue, "‹ Prev")
    queue = bot.api.messages[(WG_CHAT, queue["message_id"])]
    assert "1/4" in queue["text"]

    # Create case: a case holds personal data, its intake goes on privately, filled from the request.
    first_queue = dict(queue)
    m = await bot.press_button(bot.wg, queue, "Create case")
    assert bot.answers_since(m) == ["I wrote to you privately: create the case there."]
    offer = bot.last_bot_message(bot.wg["id"])
    m = await bot.press_button(bot.wg, offer, "Create case")
    shown = bot.texts_since(m, bot.wg["id"])
    assert shown[0] == f"New case from request #{ids[0]} (Telegram, received 2 Nov 2026, 09:00)."
    confirm = shown[-1]
    for line in ("Source: Telegram", "Category: Land dispute", "Unit: Daun Penh",
                 "Summary: Flooded road near the school", "Citizen: Sok Chea", "Contact: 012 999 888",
                 "Attachments: 2", f"From the citizen's request #{ids[0]}."):
        assert line in confirm, line
    m = await bot.press_button(bot.wg, bot.last_bot_message(bot.wg["id"]), "Create")
    assert "Case <b>#1</b> created. Assign it now?" in bot.texts_since(m, bot.wg["id"])
    case = await bot.services.cases.get(1)
    assert (case.citizen_id, case.request_id, case.source, case.citizen_name) == (
        (await bot.services.requests.get(ids[0])).citizen_id, ids[0], "telegram", "Sok Chea")
    assert len(await bot.services.cases.attachments(1)) == 2
    request = await bot.services.requests.get(ids[0])
    assert request is not None and (request.status, request.case_id) == ("case", 1)

    # The old Create case button, pressed again: a short answer, nothing made twice.
    m = await bot.press(bot.wg, WG_CHAT, first_queue["message_id"], f"rq:new:{ids[0]}")
    assert bot.answers_since(m) == [f"Request #{ids[0]} was already made into case #1."]
    m = await bot.press(bot.wg, bot.wg["id"], offer["message_id"], f"rq:new:{ids[0]}")
    assert bot.answers_since(m) == [f"Request #{ids[0]} was already made into case #1."]
    assert [r[0] for r in await bot.services.db.all("SELECT id FROM cases")] == [1]

    # A fresh look at the queue: the Facebook message is first now. It is a duplicate of #1.
    await bot.say(bot.wg, bot.wg_chat, "/inbox")
    queue = bot.last_bot_message(WG_CHAT)
    assert "Requests from citizens waiting: 3 · 1/3" in queue["text"]
    await bot.press_button(bot.wg, queue, "Duplicate of")
    assert "is a duplicate of which case?" in bot.last_bot_message(WG_CHAT)["text"]
    await bot.reply_to_last(bot.wg, bot.wg_chat, "#99")
    assert "There is no case #99." in bot.last_bot_message(WG_CHAT)["text"]  # asked again
    m = await bot.reply_to_last(bot.wg, bot.wg_chat, "#1")
    queue = bot.api.messages[(WG_CHAT, queue["message_id"])]
    assert queue["text"].startswith(f"✅ Request #{ids[1]} joined to case #1 as a duplicate; the citizen is told.")
    assert "Requests from citizens waiting: 2 · 1/2" in queue["text"]
    told = await bot.services.db.all("SELECT kind, text FROM outbox WHERE citizen_id = ?",
                                     ((await bot.services.requests.get(ids[1])).citizen_id,))
    assert [tuple(r) for r in told] == [("messenger", "Thank you. Your message is about a problem "
                                         "already reported: it was joined to case #1, which is being handled.")]

    # The comment is abusive: a reason is required.
    await bot.press_button(bot.wg, queue, "Abusive")
    await bot.reply_to_last(bot.wg, bot.wg_chat, "no")
    assert "A reason is needed (at least 3 characters)." in bot.last_bot_message(WG_CHAT)["text"]
    await bot.reply_to_last(bot.wg, bot.wg_chat, "Insults, no request")
    queue = bot.api.messages[(WG_CHAT, queue["message_id"])]
    assert queue["text"].startswith(f"✅ Request #{ids[2]} marked as abusive.")
    abusive = await bot.services.requests.get(ids[2])
    assert abusive is not None and (abusive.status, abusive.reason, abusive.decided_by) == (
        "abusive", "Insults, no request", bot.wg["id"])

    # "Thank you" is not a request; the queue is empty then.
    assert "This citizen before: 1 request · 1 case" in queue["text"]
    m = await bot.press_button(bot.wg, queue, "Not a request")
    queue = bot.api.messages[(WG_CHAT, queue["message_id"])]
    assert queue["text"] == (f"✅ Request #{ids[3]}: not a request.\n"
                             "📥 No requests from citizens are waiting.")
    assert bot.api.buttons(queue) == []
    counts = await bot.services.requests.counts()
    assert (counts["case"], counts["duplicate"], counts["abusive"], counts["not_request"],
            counts["pending"]) == (1, 1, 1, 1, 0)
    # Nothing went to the citizens but the duplicate's note (the case's news is the loop's).
    sent = await bot.services.db.all("SELECT COUNT(*) FROM outbox WHERE citizen_id IS NOT NULL"
                                     " OR chat_id = 7001")
    assert sent[0][0] == 2


async def test_stale_and_forged_presses_change_nothing(bot: Bot) -> None:
    ids = await four_requests(bot)
    await bot.say(bot.wg, bot.wg_chat, "/inbox")
    queue = bot.last_bot_message(WG_CHAT)
    await bot.press_button(bot.wg, queue, "Not a request")
    assert (await bot.services.requests.get(ids[0])).status == "not_request"  # type: ignore[union-attr]
    # The same press again (a double tap, another member's old message): a short answer.
    m = await bot.press(bot.admin, WG_CHAT, queue["message_id"], f"rq:no:{ids[0]}")
    assert bot.answers_since(m) == [f"Request #{ids[0]} was already marked as not a request."]
    m = await bot.press(bot.admin, WG_CHAT, queue["message_id"], f"rq:ab:{ids[0]}")
    assert bot.answers_since(m) == [f"Request #{ids[0]} was already marked as not a request."]
    # Someone without the right: refused first, whatever the request.
    before = await bot.services.db.all("SELECT id, status, decided_by FROM requests ORDER BY id")
    for data in (f"rq:no:{ids[1]}", f"rq:dup:{ids[1]}", f"rq:ab:{ids[1]}", f"rq:new:{ids[1]}",
                 "rq:pg:1", "rq:no:999"):
        m = await bot.press(bot.official, WG_CHAT, queue["message_id"], data)
        assert bot.answers_since(m) == ["You are not allowed to do that."], data
    # Forged data: the usual answer for a button that is not valid.
    for data in ("rq:no:abc", "rq:zz:1", "rq:no", f"rq:no:{ids[1]}:1", "rq:no:-1", "rq:no:١"):
        m = await bot.press(bot.wg, WG_CHAT, queue["message_id"], data)
        assert bot.answers_since(m) == ["That button is not valid any more."], data
    m = await bot.press(bot.wg, WG_CHAT, queue["message_id"], "rq:no:999")
    assert bot.answers_since(m) == ["There is no request #999."]
    # The queue's buttons pressed in a unit's chat (forged there): no request shown, none decided.
    card_mark = await bot.say(bot.wg, bot.dp_chat, "/units")
    unit_message = bot.last_bot_message(bot.dp_chat["id"])
    for data in (f"rq:no:{ids[1]}", "rq:pg:0", f"rq:ab:{ids[1]}"):
        m = await bot.press(bot.wg, bot.dp_chat["id"], unit_message["message_id"], data)
        assert bot.answers_since(m) == ["That button is not valid any more."], data
    assert not any("Request #" in t for t in bot.texts_since(card_mark))
    assert await bot.services.db.all("SELECT id, status, decided_by FROM requests ORDER BY id") == before
    assert await bot.services.db.all("SELECT id FROM cases") == []
    # A question asked, then cancelled: nothing changed.
    await bot.press(bot.wg, WG_CHAT, queue["message_id"], f"rq:ab:{ids[1]}")
    m = await bot.say(bot.wg, bot.wg_chat, "/cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was changed."]
    assert await bot.services.db.all("SELECT id, status, decided_by FROM requests ORDER BY id") == before
    # The refusals are on record for the admins (/refusals).
    refused = await bot.services.db.all("SELECT action FROM refusals WHERE tg_id = ?", (bot.official["id"],))
    assert {r[0] for r in refused} == {"decide_request", "inbox"}


async def test_create_case_asks_only_what_the_request_lacks(bot: Bot) -> None:
    ids = await four_requests(bot)
    wg = bot.private(bot.wg)
    await bot.say(bot.wg, wg, "/inbox")
    queue = bot.last_bot_message(bot.wg["id"])
    await bot.press_button(bot.wg, queue, "Next ›")
    m = await bot.press(bot.wg, bot.wg["id"], queue["message_id"], f"rq:new:{ids[1]}")
    assert bot.texts_since(m)[-1] == "Which category?"  # the Facebook message has none
    await bot.press_button(bot.wg, bot.last_bot_message(bot.wg["id"]), "Land dispute")
    picker = bot.last_bot_message(bot.wg["id"])
    await bot.press_button(bot.wg, picker, "Phnom Penh")
    picker = bot.api.messages[(bot.wg["id"], picker["message_id"])]
    m = await bot.press_button(bot.wg, picker, "Chamkar Mon")
    confirm = bot.texts_since(m)[-1]
    assert "Check the new case" in confirm and "Citizen: Dara Vann" in confirm
    assert "Summary: The road near the school is under water again" in confirm
    await bot.press_button(bot.wg, bot.last_bot_message(bot.wg["id"]), "Create")
    case = await bot.services.cases.get(1)
    assert (case.source, case.request_id, case.citizen_contact) == ("facebook_message", ids[1], "")
    assert case.citizen_id is not None
    # Create case in the working group's chat from a member who never wrote to the bot
    # privately (Telegram refuses the private message): they are told what to do.
    await bot.say(bot.wg, bot.wg_chat, "/inbox")
    bot.api.block(bot.wg["id"])
    m = await bot.press_button(bot.wg, bot.last_bot_message(WG_CHAT), "Create case")
    assert bot.answers_since(m) == ["Write to me privately first (/start), then press again."]
    bot.api.unblock(bot.wg["id"])
    assert (await bot.services.requests.get(ids[0])).status == "pending"  # type: ignore[union-attr]


async def test_the_queue_in_khmer(bot: Bot) -> None:
    ids = await four_requests(bot)
    wg = bot.private(bot.wg)
    await bot.say(bot.wg, wg, "/lang km")
    m = await bot.say(bot.wg, wg, "/inbox")
    queue = bot.last_bot_message(bot.wg["id"])
    assert "សំណើរបស់ពលរដ្ឋដែលកំពុងរង់ចាំ៖ 4" in queue["text"]
    assert f"សំណើ #{ids[0]}" in queue["text"] and "ពី៖ Sok Chea" in queue["text"]
    assert [label for label, _ in bot.api.buttons(queue)][:4] == [
        "📝 បង្កើតករណី", "🚫 មិនមែនជាសំណើ", "🔗 ស្ទួននឹង #…", "⚠️ បំពាន…"]
    await bot.press(bot.wg, bot.wg["id"], queue["message_id"], f"rq:no:{ids[0]}")
    queue = bot.api.messages[(bot.wg["id"], queue["message_id"])]
    assert queue["text"].startswith(f"✅ សំណើ #{ids[0]}៖ មិនមែនជាសំណើទេ។")
    m = await bot.press(bot.wg, bot.wg["id"], queue["message_id"], f"rq:no:{ids[0]}")
    assert bot.answers_since(m) == [f"គេបានកំណត់សំណើ #{ids[0]} ថាមិនមែនជាសំណើរួចហើយ។"]
    await bot.press(bot.wg, bot.wg["id"], queue["message_id"], f"rq:ab:{ids[1]}")
    assert "ហេតុអ្វីសំណើ" in bot.last_bot_message(bot.wg["id"])["text"]
    await bot.reply_to_last(bot.wg, wg, "ជេរប្រមាថ")
    queue = bot.api.messages[(bot.wg["id"], queue["message_id"])]
    assert queue["text"].startswith(f"✅ បានកំណត់សំណើ #{ids[1]} ថាជាសំណើបំពាន។")
    assert (await bot.services.requests.get(ids[1])).reason == "ជេរប្រមាថ"  # type: ignore[union-attr]
    m = await bot.say(bot.wg, wg, "/digest")
    assert "សំណើរបស់ពលរដ្ឋ 2 កំពុងរង់ចាំ៖ /inbox" in bot.texts_since(m)[0]
