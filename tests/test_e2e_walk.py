"""The whole walk through the real Application and the fake Bot API: /new to resolved by buttons."""

from __future__ import annotations

from tests.conftest import DP_CHAT, WG_CHAT
from tests.harness import Bot


async def create_case_by_conversation(bot: Bot) -> int:
    """/new in a private chat with the working group member, all by buttons and answers."""
    wg, chat = bot.wg, bot.private(bot.wg)
    m = await bot.say(wg, chat, "/new")
    assert "Where did the request come from?" in bot.texts_since(m)[-1]
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Facebook message")
    assert "Which category?" in bot.last_bot_message(chat["id"])["text"]
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Land dispute")

    picker = bot.last_bot_message(chat["id"])
    labels = [label for label, _ in bot.api.buttons(picker)]
    # The only ministry opens at once; another institution (external) is not offered.
    assert labels == ["✓ Ministry of Interior", "Phnom Penh ›", "Siem Reap"]
    await bot.press_button(wg, picker, "Phnom Penh ›")
    picker = bot.api.messages[(chat["id"], picker["message_id"])]
    assert [lbl for lbl, _ in bot.api.buttons(picker)][:3] == ["✓ Phnom Penh", "Daun Penh", "Chamkar Mon"]
    await bot.press_button(wg, picker, "Daun Penh")
    assert "Summary" in bot.last_bot_message(chat["id"])["text"]

    m = await bot.say(wg, chat, "ab")  # too short: asked again with the reason
    assert "3 to 200 characters" in bot.texts_since(m)[-1]
    await bot.say(wg, chat, "Boundary dispute <with> neighbour & family")
    await bot.say(wg, chat, "Sok Dara")
    await bot.say(wg, chat, "012 345 678")
    await bot.say(wg, chat, "The neighbour moved the fence two metres into the plot.")
    assert "photos or documents" in bot.last_bot_message(chat["id"])["text"]
    m = await bot.say(wg, chat, "here is a photo")  # text where a photo is expected
    assert "Please send a photo or a document" in bot.texts_since(m)[-1]
    bot.api.send_photo(wg, chat, file_id="PHOTO-INTAKE")
    await bot.settle()
    assert "Attached (1)" in bot.last_bot_message(chat["id"])["text"]
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Done")

    confirm = bot.last_bot_message(chat["id"])
    text = confirm["text"]
    for expected in ("Facebook message", "Land dispute", "Daun Penh", "Sok Dara", "012 345 678",
                     "Boundary dispute <with> neighbour & family", "Attachments: 1"):
        assert expected in text, (expected, text)
    assert [lbl for lbl, _ in bot.api.buttons(confirm)] == [
        "✅ Create", "✏️ Edit…", "Mark urgent", "✖️ Cancel"]
    m = await bot.press_button(wg, confirm, "Create")
    created = bot.last_bot_message(chat["id"])
    assert "Case #1 created" in created["text"]
    assert any("#1 created by Sophea" in t for t in bot.texts_since(m, WG_CHAT))
    return 1


async def test_new_to_resolved_by_buttons_with_full_history(bot: Bot) -> None:
    n = await create_case_by_conversation(bot)
    wg, wg_private = bot.wg, bot.private(bot.wg)

    # Assign with the button the confirm step offers; the card goes to the unit's chat.
    m = await bot.press_button(wg, bot.last_bot_message(wg_private["id"]), "Assign to Daun Penh")
    assert "assigned to Daun Penh" in bot.last_bot_message(wg_private["id"])["text"]
    card = bot.card(DP_CHAT, n)
    for expected in ("#1", "Land dispute", "Sok Dara", "012 345 678", "Daun Penh", "Due "):
        assert expected in card["text"], expected
    assert [lbl for lbl, _ in bot.api.buttons(card)] == [
        "✅ Accept", "❓ Need info", "↩️ Not ours", "✔️ Resolved…"]
    photos = bot.sent_since(m, DP_CHAT, "sendPhoto")
    assert [p.params["photo"] for p in photos] == ["PHOTO-INTAKE"]
    assert any("assigned by Sophea → Daun Penh" in t for t in bot.texts_since(m, WG_CHAT))

    # Accept: the card is edited in place with who and the new status.
    official, dp = bot.official, bot.dp_chat
    m = await bot.press_button(official, card, "Accept")
    assert any("accepted" in a for a in bot.answers_since(m))
    card = bot.card(DP_CHAT, n)
    assert "In progress" in card["text"] and "Dara" in card["text"]
    assert "Accept" not in [lbl for lbl, _ in bot.api.buttons(card)]
    assert any(t.startswith("#1 (Boundary dispute") and "· accepted by Dara" in t for t in bot.texts_since(m, WG_CHAT))

    # Need info: the bot asks, the answer goes to the working group, and back.
    await bot.press_button(official, card, "Need info")
    question = bot.last_bot_message(DP_CHAT)
    assert "what information is needed for #1" in question["text"]
    assert question["reply_markup"].get("force_reply") is True
    m = await bot.reply_to_last(official, dp, "The land title number, please")
    assert "Waiting for information" in bot.card(DP_CHAT, n)["text"]
    to_wg = bot.last_bot_message(WG_CHAT)
    assert "The land title number, please" in to_wg["text"]
    await bot.press_button(wg, to_wg, "Answer")
    m = await bot.reply_to_last(wg, bot.wg_chat, "Title 123/45, issued 2019")
    assert any("Answer from the working group on #1: Title 123/45" in t for t in bot.texts_since(m, DP_CHAT))
    assert "In progress" in bot.card(DP_CHAT, n)["text"]

    # Resolved…: what was done (at least 10 characters), then evidence: one question in the chat
    # at a time (an answered one is taken away), and the one asking for evidence, edited as the
    # answers come, becomes the confirmation. One message of the bot is left, beside the card.
    start = bot.api.mark()
    await bot.press_button(official, bot.card(DP_CHAT, n), "Resolved")
    first = bot.last_bot_message(DP_CHAT)
    m = await bot.reply_to_last(official, dp, "done")
    again = bot.last_bot_message(DP_CHAT)
    assert again["text"].startswith("Describe what was done in at least 10 characters. Please try again")
    assert "what was done to resolve #1?" in again["text"]
    assert (DP_CHAT, first["message_id"]) not in bot.api.messages  # deleted
    await bot.reply_to_last(official, dp, "Fence moved back; both families signed the boundary record")
    assert (DP_CHAT, again["message_id"]) not in bot.api.messages
    evidence_prompt = bot.last_bot_message(DP_CHAT)
    assert evidence_prompt["text"] == (
        "#1: what was done: Fence moved back; both families signed the boundary record\n"
        "Evidence: reply to this message with a photo or a document, or tap Skip.")
    m = await bot.say(official, dp, "no photo, sorry", reply_to=evidence_prompt["message_id"])
    assert bot.texts_since(m, DP_CHAT) == []  # the question says it again
    key = (DP_CHAT, evidence_prompt["message_id"])
    assert bot.api.messages[key]["text"].endswith("Please send a photo or a document, or tap Skip.")
    m = bot.api.mark()
    bot.api.send_photo(official, dp, file_id="PHOTO-EVIDENCE",
                       reply_to_message_id=evidence_prompt["message_id"])
    await bot.settle()
    assert bot.texts_since(m, DP_CHAT) == []
    assert bot.api.messages[key]["text"] == (
        "✅ #1 is resolved; the working group will verify it with the citizen. 1 file as evidence.")
    assert bot.api.buttons(bot.api.messages[key]) == []
    posted = [c.result["message_id"] for c in bot.sent_since(start, DP_CHAT) if c.ok]
    assert [mid for mid in posted if (DP_CHAT, mid) in bot.api.messages] == [key[1]]
    card = bot.card(DP_CHAT, n)
    assert "Resolved" in card["text"] and bot.api.buttons(card) == []

    # /case shows the card and every step in its history.
    m = await bot.say(wg, wg_private, "/case 1")
    shown = "\n".join(bot.texts_since(m))
    for step in ("created", "assigned", "accepted", "asked for information", "information provided",
                 "resolved", "The land title number, please", "Title 123/45",
                 "Fence moved back; both families signed"):
        assert step in shown, step
    assert "Sok Dara" in shown  # the working group sees personal data privately
    sent_files = [c.params.get("photo") for c in bot.sent_since(m, None, "sendPhoto")]
    assert sent_files == ["PHOTO-INTAKE", "PHOTO-EVIDENCE"]

    events = await bot.services.cases.history(n)
    assert [e.action for e in events] == [
        "create", "assign", "accept", "need_info", "provide_info", "resolve"]
