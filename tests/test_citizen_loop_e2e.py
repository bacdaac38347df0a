"""A Telegram citizen in the loop, end to end: told of their case's milestones, answering the
unit's question that the working group passed on, saying No, because… and then Yes with their
own buttons; and nothing a citizen receives names an official or carries an internal note."""

from __future__ import annotations

from typing import Any

from bot.domain.cases import Actor, Draft
from bot.domain.citizens import CitizenStore
from bot.domain.model import Change
from bot.domain.rules import Action
from tests.conftest import DP_CHAT, WG, WG_CHAT
from tests.harness import Bot

CITIZEN = 7001
NOTES = ("The contractor owes us a favour", "Call the deputy before Friday")


async def citizen_case(bot: Bot, address: str = str(CITIZEN), channel: str = "telegram",
                       name: str = "Chan Lina") -> tuple[int, int]:
    """A citizen and their request made into a case (the intake and the queue are other
    fronts'): the citizen id and the case number."""
    services = bot.services
    async with services.db.transaction() as tx:
        who = await CitizenStore(services.db).find_or_create(tx, channel, address, bot.clock(), name=name)
        request = await services.requests.receive(
            tx, f"tg:{who.id}:1", "telegram", who.id, "Water floods the street", bot.clock())
    cats = await services.units.categories()
    draft = Draft(source="telegram", category_id=cats[0].id,
                  place_unit_id=(await services.units.by_key("pp-dp")).id, summary="Street flooded",
                  citizen_name=name, citizen_contact="099 111 222", citizen_id=who.id, request_id=request)
    case = await services.cases.create(Actor(WG, "Sophea", WG_CHAT), draft, bot.clock())
    await bot.settle()
    return who.id, case.id


def to_citizen(bot: Bot, mark: int = 0) -> list[str]:
    return bot.texts_since(mark, CITIZEN)


async def test_a_telegram_citizen_follows_answers_says_no_then_yes(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "Chan Lina")
    chat = bot.private(citizen)
    cid, n = await citizen_case(bot)
    assert to_citizen(bot) == [f"We received your request. Its case number is #{n}. Send us this number "
                               "at any time to see where your case stands."]

    wg, wg_private = bot.wg, bot.private(bot.wg)
    m = await bot.say(wg, wg_private, f"/assign {n} pp-dp")
    assert to_citizen(bot, m) == [f"Your request #{n} is now with Daun Penh, which will handle it."]
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
    await bot.say(bot.official, bot.dp_chat, f"/note {n} {NOTES[0]}")
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Need info")
    await bot.reply_to_last(bot.official, bot.dp_chat, "Which house number is flooded?")

    # The working group passes the unit's question on with one button.
    notice = bot.last_bot_message(WG_CHAT)
    assert "Needed: Which house number is flooded?" in notice["text"]
    m = await bot.press_button(wg, notice, "Ask the citizen")
    assert bot.answers_since(m) == [f"#{n}: the question went to the citizen."]
    asked = bot.last_bot_message(CITIZEN)
    assert asked["text"] == (f"Daun Penh asks a question about your request #{n}:\n"
                             "Which house number is flooded?\nPlease answer in one message.")
    assert any(f"passed your question on #{n} to the citizen" in t for t in bot.texts_since(m, DP_CHAT))
    m = await bot.press_button(citizen, asked, "Answer")
    assert bot.texts_since(m, CITIZEN) == []
    m = await bot.say(citizen, chat, "House 12, street 5")
    assert bot.texts_since(m, DP_CHAT) == [f"Answer from the citizen on #{n}: House 12, street 5"]
    assert to_citizen(bot, m) == [f"Thank you: your answer about #{n} went to Daun Penh."]
    assert (await bot.services.cases.get(n)).status == "in_progress"

    # Resolved: the citizen is asked; No, because…
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Resolved")
    await bot.reply_to_last(bot.official, bot.dp_chat, "Cleaned the drain on street 5")
    m = await bot.press_button(bot.official, bot.last_bot_message(DP_CHAT), "Skip")
    resolved = bot.last_bot_message(CITIZEN)
    assert resolved["text"] == (f"Your request #{n} is resolved by Daun Penh.\n"
                                "What was done: Cleaned the drain on street 5\nWas your problem solved?")
    first_no = bot.button(resolved, "No, because")
    m = await bot.press_button(citizen, resolved, "No, because")
    assert bot.answers_since(m) == ["Thank you."]
    assert to_citizen(bot, m) == [f"What is still wrong with case #{n}? Please write it in one message."]
    m = await bot.say(citizen, chat, "The water is still knee-deep after rain")
    case = await bot.services.cases.get(n)
    assert case.status == "assigned" and case.unit_key == "pp-dp" and case.reopen_count == 1
    assert (f"#{n} is reopened: the citizen disputes the resolution: The water is still knee-deep "
            "after rain") in bot.texts_since(m, DP_CHAT)
    assert to_citizen(bot, m) == [f"Case #{n} is open again and back with Daun Penh, with what you told us."]

    # The second resolution, and Yes.
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
    await bot.say(bot.wg, bot.wg_chat, f"/note {n} {NOTES[1]}")
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Resolved")
    await bot.reply_to_last(bot.official, bot.dp_chat, "Replaced the whole pipe under street 5")
    await bot.press_button(bot.official, bot.last_bot_message(DP_CHAT), "Skip")
    resolved = bot.last_bot_message(CITIZEN)
    assert "Replaced the whole pipe under street 5" in resolved["text"]
    m = await bot.press_button(citizen, resolved, "Yes")
    case = await bot.services.cases.get(n)
    assert case.status == "closed" and case.outcome == "confirmed" and case.confirmed_via == "citizen"
    assert to_citizen(bot, m) == [f"Thank you. Case #{n} is closed: you confirmed that the problem is solved."]
    assert any("verified by citizen" in t for t in bot.texts_since(m, WG_CHAT))

    # An old button: a polite word, nothing changes.
    version = case.version
    m = await bot.press(citizen, CITIZEN, resolved["message_id"], first_no)
    assert bot.answers_since(m)[0].startswith("Thank you. This was already settled.")
    assert (await bot.services.cases.get(n)).version == version

    # The case number alone: its status.
    m = await bot.say(citizen, chat, f"#{n}")
    assert to_citizen(bot, m) == [f"Case #{n}: closed; you confirmed that the problem is solved."]
    await nothing_personal_reached_citizens(bot, cid)


async def test_a_messenger_citizen_hears_the_same_without_names(bot: Bot) -> None:
    cid, n = await citizen_case(bot, address="PSID-77", channel="messenger", name="Sok Dara")
    services = bot.services
    wg = Actor(WG, "Sophea", WG_CHAT)
    official = Actor(bot.official["id"], "Dara", DP_CHAT)
    await services.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp", assignee="@dara"), bot.clock())
    await services.cases.apply(n, Action.NOTE, official, Change(text=NOTES[0]), bot.clock())
    await services.cases.apply(n, Action.RESOLVE, official, Change(text="Cleaned the drain"), bot.clock())
    await services.cases.apply(n, Action.VERIFY, wg, Change(outcome="confirmed"), bot.clock())
    rows = await services.db.all("SELECT text, payload FROM outbox WHERE citizen_id = ? ORDER BY id", (cid,))
    texts = [str(r[0]) for r in rows]
    assert texts[-1] == f"Case #{n} is closed: you confirmed by phone that the problem is solved. Thank you."
    assert any('"quick_replies"' in str(r[1]) and f"cz:y:{n}:" in str(r[1]) for r in rows)
    await nothing_personal_reached_citizens(bot, cid)


async def nothing_personal_reached_citizens(bot: Bot, *citizens: int) -> None:
    """Everything sent to citizens (Telegram messages to their chats, outbox rows for them)
    holds no official's name (the people, a case's assignee) and no note of anyone."""
    db = bot.services.db
    sent: list[str] = []
    addresses = {int(r[0]) for r in await db.all(
        "SELECT address FROM citizens WHERE channel = 'telegram'") if str(r[0]).isdigit()}
    for call in bot.api.calls:
        if call.method in ("sendMessage", "editMessageText") and int(call.params.get("chat_id", 0)) in addresses:
            sent.append(str(call.params.get("text", "")))
            sent += [str(label) for row in _keyboard(call.params) for label in row]
    for r in await db.all("SELECT text, payload FROM outbox WHERE citizen_id IS NOT NULL OR chat_id IN"
                          f" ({','.join('?' * len(addresses)) or 'NULL'})", sorted(addresses)):
        sent += [str(r[0]), str(r[1])]
    assert sent
    names = {str(r[0]) for r in await db.all("SELECT name FROM people") if len(str(r[0])) >= 3}
    names |= {str(r[0]) for r in await db.all(
        "SELECT p.name FROM cases c JOIN people p ON p.tg_id = c.assignee_id")}
    names |= {"Sophea", "Dara", "Wg Member"}
    notes = {str(r[0]) for r in await db.all(
        "SELECT t.text FROM events e JOIN event_texts t ON t.event_id = e.id WHERE e.action = 'note'")}
    assert notes & set(NOTES)  # the notes written are there to be looked for
    for text in sent:
        for secret in names | notes:
            assert secret not in text, (secret, text)
    assert citizens


def _keyboard(params: dict[str, Any]) -> list[list[str]]:
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        import json

        markup = json.loads(markup)
    if not isinstance(markup, dict):
        return []
    return [[str(b.get("text", "")) for b in row] for row in markup.get("inline_keyboard", [])]
