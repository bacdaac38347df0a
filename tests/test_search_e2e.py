"""/search and the duplicate hint at intake, through the real Application and the fake Bot API."""

from __future__ import annotations

from datetime import datetime

from bot.domain.model import Actor, Change, ImportedCase
from bot.domain.rules import Action, Status
from bot.domain.search import national_number, similarity
from tests.conftest import DP_CHAT, WG, WG_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case


async def accesses(bot: Bot, via: str) -> list[tuple[int, int]]:
    rows = await bot.services.db.all(
        "SELECT case_id, who_id FROM data_access WHERE via = ? ORDER BY id", (via,))
    return [(int(r[0]), int(r[1])) for r in rows]


def test_phone_numbers_are_read_however_they_are_written() -> None:
    for written in ("012 345 678", "012-345-678", "+855 12 345 678", "(012) 345.678", "00855 12345678",
                    "០១២ ៣៤៥ ៦៧៨", "12345678"):
        assert national_number(written) == "12345678", written
    for not_phone in ("Sok Dara", "12 34", "#12", "2021-0457x", ""):
        assert national_number(not_phone) is None, not_phone


def test_similar_summaries() -> None:
    assert similarity("Road flooded near the market", "road flooded near the market!") == 1.0
    assert similarity("Road flooded near the market", "Near the market, road flooded") >= 0.8
    assert similarity("ផ្លូវលិចទឹកនៅជិតផ្សារ", "ផ្លូវលិចទឹក នៅជិតផ្សារ") >= 0.8
    assert similarity("Road flooded near the market", "Birth certificate not issued") < 0.8


async def test_search_by_number_reference_phone_name_and_words(bot: Bot) -> None:
    one = await make_case(bot, summary="Road flooded near the market", citizen_name="Chan Lina",
                          citizen_contact="099 111 222")
    two = await make_case(bot, summary="Birth certificate not issued", citizen_name="Sok Dara",
                          citizen_contact="+855 12 345 678")
    three = await make_case(bot, unit="sr", summary="Flooded school yard", citizen_name="Keo Mony",
                            citizen_contact="011 222 333")
    services = bot.services
    cats = await services.units.categories()
    dp = await services.units.by_key("pp-dp")
    await services.cases.import_cases(Actor(WG, "Sophea"), [ImportedCase(
        "2021-0457", datetime(2021, 3, 15, 5, tzinfo=bot.clock().tzinfo), "letter", cats[0].id, dp.id,
        "Old land title dispute", "", "Meas Sophal", "", Status.IN_PROGRESS)], bot.clock())
    wg, private = bot.wg, bot.private(bot.wg)

    async def found(user: dict, chat: dict, words: str) -> tuple[str, list[str]]:
        m = await bot.say(user, chat, f"/search {words}")
        [text] = bot.texts_since(m, chat["id"])
        message = bot.last_bot_message(chat["id"])
        return text, [label for label, _ in bot.api.buttons(message)]

    text, buttons = await found(wg, private, f"#{two}")
    assert buttons == [f"#{two}"] and "Birth certificate" in text
    text, buttons = await found(wg, private, "flooded")
    assert sorted(buttons) == sorted([f"#{one}", f"#{three}"])
    assert "Chan Lina" not in text  # found by the summary: no personal data shown
    text, buttons = await found(wg, private, "2021-0457")
    assert buttons == ["#4"] and "old reference: 2021-0457" in text
    assert await accesses(bot, "search") == []
    text, buttons = await found(wg, private, "012 345 678")  # written otherwise than stored
    assert buttons == [f"#{two}"] and "Sok Dara · +855 12 345 678" in text
    assert await accesses(bot, "search") == [(two, WG)]  # recorded: it showed them
    text, buttons = await found(wg, private, "lina")
    assert buttons == [f"#{one}"] and "Chan Lina" in text
    text, _b = await found(wg, private, "nothing like this")
    assert text == "Nothing found for “nothing like this”."

    # The official of Daun Penh: only their unit's cases; the Siem Reap one is not found.
    text, buttons = await found(bot.official, bot.private(bot.official), "flooded")
    assert buttons == [f"#{one}"]
    # A liaison may not see personal data: their phone search finds nothing, and says nothing.
    text, buttons = await found(bot.liaison, bot.private(bot.liaison), "012 345 678")
    assert text == "Nothing found for “012 345 678”."
    # In Siem Reap's group, Daun Penh's citizen is not shown, even to the working group.
    m = await bot.say(wg, bot.sr_chat, "/search Sok Dara")
    assert bot.texts_since(m, bot.sr_chat["id"]) == ["Nothing found for “Sok Dara”."]

    # A result's button opens the case as /case does (rights checked again).
    text, _b = await found(wg, private, "flooded")
    m = await bot.press_button(wg, bot.last_bot_message(private["id"]), f"#{one}")
    assert bot.texts_since(m, private["id"])[0].startswith(f"<b>#{one}</b>")
    liaison = bot.private(bot.liaison)["id"]
    m = await bot.press(bot.liaison, liaison, bot.last_bot_message(liaison)["message_id"], f"sc:{one}")
    assert bot.answers_since(m) == ["You are not allowed to do that."]


async def test_search_usage_and_limits(bot: Bot) -> None:
    chat = bot.private(bot.wg)
    m = await bot.say(bot.wg, chat, "/search")
    assert bot.texts_since(m) == ["What should I look for?\nUsage: <code>/search &lt;number, reference, "
                                  "phone, name or words of the summary&gt;</code>"]
    m = await bot.say(bot.wg, chat, "/search " + "x" * 101)
    assert bot.texts_since(m) == ["A search has at most 100 characters."]
    m = await bot.say(bot.wg, chat, "/search 100% _ <b>")
    assert bot.texts_since(m) == ["Nothing found for “100% _ &lt;b&gt;”."]


async def walk_to_confirm(bot: Bot, summary: str, contact: str) -> dict:
    wg, chat = bot.wg, bot.private(bot.wg)
    await bot.say(wg, chat, "/new")
    for label in ("Phone", "Land dispute", "Phnom Penh ›"):
        await bot.press_button(wg, bot.last_bot_message(chat["id"]), label)
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Daun Penh")
    for answer in (summary, "Chan Lina", contact, "Water everywhere"):
        await bot.say(wg, chat, answer)
    await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Done")
    return bot.last_bot_message(chat["id"])


async def test_duplicate_hint_and_merge_into_it(bot: Bot) -> None:
    first = await make_case(bot, summary="Road flooded near the market", citizen_contact="099 111 222")
    # The same phone written otherwise: a hint, with Merge into #1 beside Create.
    confirm = await walk_to_confirm(bot, "Flood on the road", "+855 99 111 222")
    assert f"Perhaps the same request as #{first} (the same contact): Road flooded near the market" in (
        confirm["text"])
    labels = [label for label, _ in bot.api.buttons(confirm)]
    assert labels[:2] == ["✅ Create", f"🔗 Merge into #{first}"]
    m = await bot.press_button(bot.wg, confirm, "Merge into")
    chat = bot.private(bot.wg)
    assert bot.texts_since(m, chat["id"]) == [
        f"Case <b>#2</b> created and merged into <b>#{first}</b>: its citizen, contact and files are on "
        f"#{first} now."]
    merged = await bot.services.cases.get(2)
    assert merged.status is Status.MERGED and merged.merged_into == first
    assert await bot.services.cases.contacts(first) == ["Chan Lina · +855 99 111 222 (#2)"]
    # A similar summary about the same place, another contact: a hint too.
    confirm = await walk_to_confirm(bot, "Road flooded near market", "011 000 000")
    assert "(a similar summary)" in confirm["text"]
    # Nothing alike: no hint.
    confirm = await walk_to_confirm(bot, "Birth certificate not issued", "011 000 001")
    assert "Perhaps" not in confirm["text"]
    assert bot.api.buttons(confirm)[0][0] == "✅ Create"


async def test_merge_into_a_case_finished_meanwhile_creates_nothing(bot: Bot) -> None:
    first = await make_case(bot, summary="Road flooded near the market", citizen_contact="099 111 222")
    confirm = await walk_to_confirm(bot, "Road flooded near the market", "099 111 222")
    actor = Actor(WG, "Sophea", WG_CHAT)
    await bot.services.cases.apply(first, Action.MERGE, actor, Change(into=await make_case(bot)),
                                   bot.clock())
    m = await bot.press_button(bot.wg, confirm, "Merge into")
    assert bot.answers_since(m) == [
        f"Case #{first} is finished: merge into a case still being handled."]
    rows = await bot.services.db.one("SELECT COUNT(*) FROM cases")
    assert rows is not None and rows[0] == 2
    m = await bot.press_button(bot.wg, confirm, "Create")  # the draft is still there
    assert "Case <b>#3</b> created" in bot.texts_since(m, bot.private(bot.wg)["id"])[-1]


async def test_a_reply_to_a_card_is_a_note(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    m = await bot.say(bot.official, bot.dp_chat, "Called the village chief, visit on Friday",
                      reply_to=card["message_id"])
    assert bot.texts_since(m, DP_CHAT) == []  # no message in a busy group: a reaction
    user_msg = max(k for k in bot.api.user_messages if k[0] == DP_CHAT)
    assert bot.api.reactions[user_msg] == [{"type": "emoji", "emoji": "✍"}]
    events = await bot.services.cases.history(n)
    assert (events[-1].action, events[-1].note) == ("note", "Called the village chief, visit on Friday")
    # People talking among themselves (a reply to a person, not to the bot) make no note.
    await bot.say(bot.official, bot.dp_chat, "ok")
    await bot.say(bot.other, bot.dp_chat, "thanks", reply_to=max(
        k for k in bot.api.user_messages if k[0] == DP_CHAT)[1])
    assert len(await bot.services.cases.history(n)) == len(events)


async def test_the_working_groups_reply_to_a_question_is_the_answer(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Need info")
    await bot.reply_to_last(bot.official, bot.dp_chat, "The land title number, please")
    question = bot.last_bot_message(WG_CHAT)
    assert "The land title number, please" in question["text"]
    m = await bot.say(bot.wg, bot.wg_chat, "Title 123/45", reply_to=question["message_id"])
    assert bot.texts_since(m, WG_CHAT) == [f"#{n} (Road flooded) · information provided by Sophea: Title 123/45"]
    reply = max(k for k in bot.api.user_messages if k[0] == WG_CHAT)
    assert bot.api.reactions[reply] == [{"type": "emoji", "emoji": "👌"}]
    assert bot.texts_since(m, DP_CHAT) == [f"Answer from the working group on #{n}: Title 123/45"]
    case = await bot.services.cases.get(n)
    assert case.status is Status.IN_PROGRESS
    # Once answered, a further reply to the same question is a note.
    await bot.say(bot.wg, bot.wg_chat, "Also the old one", reply_to=question["message_id"])
    assert (await bot.services.cases.history(n))[-1].action == "note"


async def test_replies_in_private_and_refused_ones(bot: Bot) -> None:
    n = await make_case(bot)
    # A note by reply in a private chat is confirmed in words (no reaction there).
    private = bot.private(bot.wg)
    m = await bot.say(bot.wg, private, f"/case {n}")
    shown = bot.sent_since(m, private["id"])[0].result["message_id"]
    # /case's answer is not a message the bot keeps track of: no note, no answer.
    m = await bot.say(bot.wg, private, "a note?", reply_to=shown)
    assert bot.texts_since(m) == []
    # The card in the unit's chat: someone without rights on the case is refused, and it is logged.
    card = bot.card(DP_CHAT, n)
    m = await bot.say(bot.supervisor, bot.sr_chat, "x", reply_to=card["message_id"])  # not that chat
    assert bot.texts_since(m) == []
    m = await bot.say(bot.other, bot.dp_chat, "I will do it", reply_to=card["message_id"])
    assert bot.texts_since(m, DP_CHAT) == ["You are not allowed to do that."]
    refusals = await bot.services.db.all("SELECT action, case_id FROM refusals")
    assert [tuple(r) for r in refusals] == [("note", n)]
    # A photo without a caption: asked for a few words, nothing recorded.
    before = len(await bot.services.cases.history(n))
    m = bot.api.mark()
    bot.api.send_photo(bot.official, bot.dp_chat, file_id="PHOTO-NOTE", reply_to_message=bot.api._strip_reply(card))
    await bot.settle()
    assert "Add a few words to the file" in bot.texts_since(m, DP_CHAT)[0]
    assert len(await bot.services.cases.history(n)) == before
    m = bot.api.mark()
    bot.api.send_photo(bot.official, bot.dp_chat, caption="The fence today", file_id="PHOTO-NOTE",
                       reply_to_message=bot.api._strip_reply(card))
    await bot.settle()
    last = (await bot.services.cases.history(n))[-1]
    assert (last.action, last.note, last.data.get("attachments")) == ("note", "The fence today", 1)


async def test_a_message_about_several_cases_names_them(bot: Bot) -> None:
    one, two = await make_case(bot), await make_case(bot)
    services = bot.services
    assert await services.outbox.about(WG_CHAT, 999) is None
    await services.db.write(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, text, payload, next_attempt_at,"
        " sent_at, message_id) VALUES('2026-01-01', 'text', ?, ?, 'x', '{}', '2026-01-01',"
        " '2026-01-01', 999)", [(WG_CHAT, one), (WG_CHAT, two)], many=True)
    assert await services.outbox.about(WG_CHAT, 999) == ({one, two}, set())
    bot.api.messages[(WG_CHAT, 999)] = {"message_id": 999, "from": bot.api.bot_user(),
                                        "chat": bot.wg_chat, "date": 0, "text": "two notices"}
    m = await bot.say(bot.wg, bot.wg_chat, "which one?", reply_to=999)
    assert bot.texts_since(m, WG_CHAT) == [
        f"That message is about several cases (#{one}, #{two}): reply to one case's card, or write "
        "/note &lt;case&gt; &lt;text&gt;."]
    # A digest shares no message with a case's notices: a message about something else too is none.
    await services.db.write(
        "INSERT INTO outbox(created_at, kind, chat_id, case_id, text, payload, next_attempt_at,"
        " sent_at, message_id) VALUES('2026-01-01', 'text', ?, NULL, 'x', '{}', '2026-01-01',"
        " '2026-01-01', 999)", (WG_CHAT,))
    assert await services.outbox.about(WG_CHAT, 999) is None
