"""Fewer messages and taps: the questions a card's buttons ask, in a busy unit's group."""

from __future__ import annotations

from bot.domain.model import Actor
from tests.conftest import DP_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case


def left(bot: Bot, mark: int, chat_id: int) -> list[str]:
    """The bot's messages sent to a chat since ``mark`` that are still there (not deleted)."""
    posted = [c.result["message_id"] for c in bot.sent_since(mark, chat_id) if c.ok]
    return [str(bot.api.messages[(chat_id, mid)].get("text", "")) for mid in posted
            if (chat_id, mid) in bot.api.messages]


async def test_resolved_with_a_photo_and_its_caption_at_once(bot: Bot) -> None:
    n = await make_case(bot)
    start = bot.api.mark()
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Resolved")
    question = bot.last_bot_message(DP_CHAT)
    assert question["reply_markup"].get("force_reply") is True
    m = bot.api.mark()
    bot.api.send_photo(bot.official, bot.dp_chat, caption="Drain cleared, road dry again",
                       file_id="PHOTO-EVIDENCE", reply_to_message=bot.api._strip_reply(question))
    await bot.settle()
    case = await bot.services.cases.get(n)
    assert case.status.value == "resolved"
    assert [a.purpose for a in await bot.services.cases.attachments(n)] == ["evidence"]
    # No question left in the chat; the answer has a reaction; the card shows the new state.
    assert left(bot, start, DP_CHAT) == []
    answer = max(k for k in bot.api.user_messages if k[0] == DP_CHAT)
    assert bot.api.reactions[answer] == [{"type": "emoji", "emoji": "👌"}]
    assert bot.texts_since(m, DP_CHAT) == []
    assert "Resolved" in bot.card(DP_CHAT, n)["text"]


async def test_need_info_in_a_group_leaves_no_question_behind(bot: Bot) -> None:
    n = await make_case(bot)
    start = bot.api.mark()
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Need info")
    await bot.reply_to_last(bot.official, bot.dp_chat, "The land title number, please")
    assert left(bot, start, DP_CHAT) == []  # the question went, the card says "Waiting for information"
    assert "Waiting for information" in bot.card(DP_CHAT, n)["text"]


async def test_in_a_private_chat_the_answer_is_confirmed_in_words(bot: Bot) -> None:
    n = await make_case(bot)
    chat = bot.private(bot.official)
    await bot.services.cases.show_card(Actor(bot.official["id"], "Dara", chat["id"]), n, bot.clock())
    await bot.settle()
    card = bot.card(chat["id"], n)
    await bot.press_button(bot.official, card, "Need info")
    m = await bot.reply_to_last(bot.official, chat, "The land title number, please")
    assert bot.texts_since(m, chat["id"]) == ["✅ #1: your question went to the working group."]


async def test_cancel_takes_the_question_away(bot: Bot) -> None:
    n = await make_case(bot)
    start = bot.api.mark()
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Resolved")
    await bot.reply_to_last(bot.official, bot.dp_chat, "Drain cleared, road dry again")
    evidence = bot.last_bot_message(DP_CHAT)
    m = await bot.say(bot.official, bot.dp_chat, "/cancel")
    assert bot.texts_since(m, DP_CHAT) == []
    assert left(bot, start, DP_CHAT) == ["Cancelled. Nothing was changed."]
    assert bot.api.messages[(DP_CHAT, evidence["message_id"])]["text"] == "Cancelled. Nothing was changed."
    assert (await bot.services.cases.get(n)).status.value == "assigned"
    # Cancelled before any answer: the question is deleted, and one line says so.
    start = bot.api.mark()
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Not ours")
    await bot.say(bot.official, bot.dp_chat, "/cancel")
    assert left(bot, start, DP_CHAT) == ["Cancelled. Nothing was changed."]
