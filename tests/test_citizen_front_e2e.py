"""The Telegram citizen front, end to end: a person with no role writes to the bot in a private
chat, accepts the privacy notice, submits a request (category, province, district, summary,
details, a photo, their own contact), follows it in My requests, withdraws; the limits; the same
update twice; staff and groups untouched; a walk in Khmer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.domain.cases import Actor, Draft
from bot.domain.submissions import Submissions
from tests.conftest import WG, WG_CHAT, Clock
from tests.harness import JSON, Bot, running_bot, unknown_answer

CITIZEN = 7101
OTHER = 7102
PING = "📥 New requests from citizens are waiting. /inbox lists them."
RECEIVED = "Received. The working group will give it a case number; you will be told here."


async def requests_of(bot: Bot, tg_id: int = CITIZEN) -> list[Any]:
    who = await bot.services.citizens.by_address("telegram", str(tg_id))
    return [] if who is None else await bot.services.requests.of_citizen(who.id)


async def counts(bot: Bot) -> tuple[int, ...]:
    db = bot.services.db
    return tuple([int((await db.one(f"SELECT count(*) FROM {t}"))[0])  # type: ignore[index]
                  for t in ("citizens", "requests", "cases", "events", "citizen_asks")])


def last(bot: Bot, user: JSON) -> JSON:
    return bot.last_bot_message(user["id"])


async def tap(bot: Bot, user: JSON, label: str) -> int:
    """Press the button whose label holds ``label`` on the last message holding one."""
    for (chat, _mid), msg in reversed(list(bot.api.messages.items())):
        if chat == user["id"] and any(label in text for text, _data in bot.api.buttons(msg)):
            return await bot.press_button(user, msg, label)
    raise AssertionError(f"no button {label!r} in the chat of {user['id']}")


async def submit(bot: Bot, user: JSON, summary: str = "The road is flooded", *, agree: bool = True) -> int:
    """The shortest walk: a category, a province without districts, a summary, the rest skipped.
    Returns the mark before Send."""
    chat = bot.private(user)
    await bot.say(user, chat, "/start")
    await tap(bot, user, "Submit a request")
    if agree:
        await tap(bot, user, "I agree")
    await tap(bot, user, "Civil documents")
    await tap(bot, user, "Siem Reap")
    await bot.say(user, chat, summary)
    await tap(bot, user, "Skip")
    await tap(bot, user, "Skip")
    await bot.say(user, chat, "Skip")
    return await tap(bot, user, "Send")


async def test_a_citizen_submits_a_request_with_everything(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "Chan", last_name="Lina")
    chat = bot.private(citizen)
    m = await bot.say(citizen, chat, "/start")
    welcome = last(bot, citizen)
    assert bot.texts_since(m) == [
        "Hello! Here you can send a request to the ministry's working group for public requests, and "
        "follow it until your problem is solved.\n\nStaff: ask your administrator for an invitation; "
        f"your Telegram id is <code>{CITIZEN}</code>."]
    assert [t for t, _d in bot.api.buttons(welcome)] == ["📝 Submit a request", "📋 My requests", "🌐 ភាសាខ្មែរ"]
    assert await counts(bot) == (0, 0, 0, 0, 0)  # reading the welcome stores nothing about them

    m = await bot.press_button(citizen, welcome, "Submit a request")
    assert "we keep what you send" in bot.texts_since(m)[0]
    m = await tap(bot, citizen, "I agree")
    assert bot.texts_since(m) == ["What is your request about?"]
    who = await bot.services.citizens.by_address("telegram", str(CITIZEN))
    assert who is not None and who.privacy_accepted_at == bot.clock()
    await bot.say(citizen, chat, "land")  # words where a button is expected: the question stays
    assert last(bot, citizen)["text"] == "Please choose with the buttons above, or tap Cancel."
    await tap(bot, citizen, "Land dispute")
    m = await tap(bot, citizen, "Phnom Penh")
    districts = last(bot, citizen)
    assert districts["text"] == "Which district of Phnom Penh?"
    assert [t for t, _d in bot.api.buttons(districts)] == [
        "Daun Penh", "Chamkar Mon", "The whole province / not sure", "✖️ Cancel"]
    await bot.press_button(citizen, districts, "Daun Penh")
    await bot.say(citizen, chat, "The road to the school is flooded")
    await bot.say(citizen, chat, "Since Monday; <b>twenty</b> families cannot get out.")
    bot.api.send_photo(citizen, chat, file_id="PHOTO-1")
    await bot.settle()
    assert last(bot, citizen)["text"] == "Photo received (1). Send more, or tap Done."
    m = await tap(bot, citizen, "Done")
    asked = bot.api.messages[(CITIZEN, max(k[1] for k in bot.api.messages if k[0] == CITIZEN))]
    assert asked["reply_markup"]["keyboard"][0][0] == {"text": "📱 Share my phone number", "request_contact": True}
    # Someone else's contact card is not theirs to give.
    bot.api.send_contact(citizen, chat, "+855 12 999 999", "Neighbour", user_id=OTHER)
    await bot.settle()
    assert last(bot, citizen)["text"] == "Please share your own number, with the button below."
    m = bot.api.mark()
    bot.api.send_contact(citizen, chat, "+855 12 345 678", "Chan", "Lina", user_id=CITIZEN)
    await bot.settle()
    thanks, check = bot.texts_since(m)
    assert thanks == "Thank you: your number is +855 12 345 678."
    assert check == ("<b>Please check your request</b>\nAbout: Land dispute\nWhere: Daun Penh, Phnom Penh\n"
                     "Problem: The road to the school is flooded\n"
                     "Details: Since Monday; &lt;b&gt;twenty&lt;/b&gt; families cannot get out.\n"
                     "Photos: 1\nPhone: +855 12 345 678")
    confirm = last(bot, citizen)
    send_data = bot.button(confirm, "Send")
    sent = bot.api.press(citizen, CITIZEN, confirm["message_id"], send_data)
    m = bot.api.mark()
    await bot.settle()
    assert bot.texts_since(m, CITIZEN) == [RECEIVED]
    assert bot.texts_since(m, WG_CHAT) == [PING]

    [request] = await requests_of(bot)
    who = await bot.services.citizens.by_address("telegram", str(CITIZEN))
    assert who is not None
    pp_dp = await bot.services.units.by_key("pp-dp")
    land = next(c for c in await bot.services.units.categories() if c.key == "land")
    assert request.key == f"tg:{who.id}:{sent['update_id']}"
    assert request.source == "telegram" and request.status == "pending"
    assert request.text == ("The road to the school is flooded\n\n"
                            "Since Monday; <b>twenty</b> families cannot get out.")
    assert request.data == {
        "category_id": land.id, "place_unit_id": pp_dp.id, "summary": "The road to the school is flooded",
        "details": "Since Monday; <b>twenty</b> families cannot get out.",
        "files": [{"kind": "photo", "file_id": "PHOTO-1"}], "contact": "+855 12 345 678"}
    assert (who.name, who.contact, who.language) == ("Chan Lina", "+855 12 345 678", "en")

    # The same update delivered again: nothing stored twice, nothing said twice.
    m = bot.api.mark()
    bot.api.inject(sent)
    await bot.settle()
    assert len(await requests_of(bot)) == 1
    assert bot.texts_since(m) == []
    # The old Send button pressed again: a stale button, nothing stored.
    m = await bot.press(citizen, CITIZEN, confirm["message_id"], send_data)
    assert bot.answers_since(m) == ["That button is not valid any more."]
    assert len(await requests_of(bot)) == 1


async def test_the_same_send_handled_again_stores_one_request(bot: Bot) -> None:
    """A crash between the commit and the reply: the same update handled again finds its request."""
    services = bot.services
    desk = Submissions(services.db, services.citizens, services.requests, services.settings.citizens)
    now = bot.clock()
    args: dict[str, Any] = {"name": "Sok", "language": "en", "contact": "", "text": "Broken well",
                            "data": {"summary": "Broken well"}}
    first = await desk.submit(CITIZEN, 42, now, **args)
    again = await desk.submit(CITIZEN, 42, now, **args)
    assert first.new and not again.new and again.request_id == first.request_id
    assert len(await requests_of(bot)) == 1


async def test_cancel_at_a_step_sends_nothing_and_a_second_request_skips_the_notice(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "Chan")
    chat = bot.private(citizen)
    await bot.say(citizen, chat, "/start")
    await tap(bot, citizen, "Submit a request")
    await tap(bot, citizen, "I agree")
    await tap(bot, citizen, "Land dispute")
    m = await tap(bot, citizen, "Cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was sent."]
    # At the contact step the keyboard goes away too; /cancel works as the button does.
    await tap(bot, citizen, "Submit a request")
    assert last(bot, citizen)["text"] == "What is your request about?"  # asked once only
    await tap(bot, citizen, "Land dispute")
    await tap(bot, citizen, "Siem Reap")
    await bot.say(citizen, chat, "Broken bridge")
    await tap(bot, citizen, "Skip")
    await tap(bot, citizen, "Skip")
    m = await bot.say(citizen, chat, "Cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was sent.", "What would you like to do?"]
    assert "remove_keyboard" in str(bot.sent_since(m)[0].params["reply_markup"])
    await tap(bot, citizen, "Submit a request")
    m = await bot.say(citizen, chat, "/cancel")
    assert bot.texts_since(m) == ["Cancelled. Nothing was sent."]
    assert await requests_of(bot) == []
    # Without a phone number: said plainly, and the request goes all the same.
    m = await submit(bot, citizen, agree=False)
    assert "No phone number: the working group may not be able to call you." in bot.api.sent_texts(CITIZEN)
    assert bot.texts_since(m, CITIZEN) == [RECEIVED]
    [request] = await requests_of(bot)
    assert request.data["contact"] == "" and request.data["files"] == [] and request.data["category_id"]


async def test_limits_are_answered_politely_with_what_to_do(tmp_path: Path, clock: Clock) -> None:
    limits = {"max_open_requests": 2, "max_requests": 3, "per_hours": 24}
    async with running_bot(tmp_path, clock, citizens=limits) as bot:
        citizen = bot.api.user(CITIZEN, "Chan")
        await submit(bot, citizen, "First problem")
        clock.advance(hours=1)
        await submit(bot, citizen, "Second problem", agree=False)
        m = await tap(bot, citizen, "Submit a request")
        assert bot.texts_since(m) == [
            "You have 2 requests still open, the most one person can have at a time. The working group "
            "handles them first. You can follow them, or withdraw one you no longer need, in My "
            "requests; then you can send a new one."]
        # One withdrawn: room for one more.
        await tap(bot, citizen, "My requests")
        await tap(bot, citizen, "Withdraw (1)")
        await tap(bot, citizen, "Yes, withdraw it")
        clock.advance(hours=1)
        m = await submit(bot, citizen, "Third problem", agree=False)
        assert bot.texts_since(m, CITIZEN) == [RECEIVED]
        await tap(bot, citizen, "My requests")
        await tap(bot, citizen, "Withdraw (1)")
        await tap(bot, citizen, "Yes, withdraw it")
        # Three in 24 hours: the next from 24 hours after the first (09:00 in Phnom Penh).
        m = await tap(bot, citizen, "Submit a request")
        assert bot.texts_since(m) == [
            "You have sent 3 requests in the last 24 hours, the most one person can send in that "
            "time. You can send a new one from 3 Nov 2026, 09:00. Your requests already sent are in "
            "My requests."]
        assert len(await requests_of(bot)) == 3
        clock.advance(hours=22, minutes=1)
        m = await submit(bot, citizen, "Fourth problem", agree=False)
        assert bot.texts_since(m, CITIZEN) == [RECEIVED]
        # Another citizen is not touched by the first one's limits.
        other = bot.api.user(OTHER, "Sok")
        m = await submit(bot, other, "Their own problem")
        assert bot.texts_since(m, OTHER) == [RECEIVED]


async def test_my_requests_status_and_withdraw(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "Chan")
    chat = bot.private(citizen)
    m = await bot.say(citizen, chat, "/start")
    m = await tap(bot, citizen, "My requests")
    assert bot.texts_since(m) == ["You have not sent any request yet."]
    await submit(bot, citizen, "Water pipe broken")
    await submit(bot, citizen, "No electricity", agree=False)
    services = bot.services
    [second, first] = await requests_of(bot)
    who = await services.citizens.by_address("telegram", str(CITIZEN))
    assert who is not None
    # The working group makes a case of the first (the queue's part, done here by hand).
    draft = Draft(source="telegram", category_id=first.data["category_id"],
                  place_unit_id=first.data["place_unit_id"], summary=first.data["summary"],
                  citizen_name=who.name, citizen_id=who.id, request_id=first.id)
    case = await services.cases.create(Actor(WG, "Sophea", WG_CHAT), draft, bot.clock())
    await services.db.write("UPDATE requests SET status = 'case', case_id = ? WHERE id = ?", (case.id, first.id))
    await bot.settle()
    n = case.id

    m = await tap(bot, citizen, "My requests")
    [listing] = bot.texts_since(m)
    assert listing == (
        "<b>Your requests</b>\n\n"
        "<b>(1)</b> · 2 Nov 2026 · No electricity\n"
        "Received; waiting for the working group to register it.\n\n"
        f"<b>#{n}</b> · 2 Nov 2026 · Water pipe broken\n"
        f"Case #{n}: registered; the working group is choosing the unit to handle it.")
    assert [t for t, _d in bot.api.buttons(last(bot, citizen))] == [
        "↩️ Withdraw (1)", f"🔎 #{n}", f"↩️ Withdraw #{n}", "📝 Submit a request", "🗑 Erase my data"]
    m = await tap(bot, citizen, f"🔎 #{n}")
    assert bot.texts_since(m) == [f"Case #{n}: registered; the working group is choosing the unit to handle it."]
    # A case number typed, in ASCII or Khmer digits; another's number is not found.
    for typed in (f"#{n}", str(n), str(n).translate(str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩"))):
        m = await bot.say(citizen, chat, typed)
        assert bot.texts_since(m) == [f"Case #{n}: registered; the working group is choosing the unit to "
                                      "handle it."], typed
    other_case = await services.cases.create(Actor(WG, "Sophea", WG_CHAT), Draft(
        source="phone", category_id=first.data["category_id"], place_unit_id=first.data["place_unit_id"],
        summary="Someone else's problem", citizen_name="Another"), bot.clock())
    await bot.settle()
    m = await bot.say(citizen, chat, f"#{other_case.id}")
    assert bot.texts_since(m) == [f"I find no request of yours with the number #{other_case.id}."]
    # Withdraw the case: asked first; "No, keep it" changes nothing.
    await tap(bot, citizen, "My requests")
    m = await tap(bot, citizen, f"Withdraw #{n}")
    assert bot.texts_since(m) == [f"Withdraw case #{n}? The work on it stops and the case is closed as "
                                  "withdrawn. You can send a new request at any time."]
    m = await tap(bot, citizen, "No, keep it")
    assert bot.answers_since(m) == ["Nothing was changed."]
    assert (await services.cases.get(n)).status == "new"
    await tap(bot, citizen, "My requests")
    await tap(bot, citizen, f"Withdraw #{n}")
    m = await tap(bot, citizen, "Yes, withdraw it")
    closed = await services.cases.get(n)
    assert closed.status == "closed" and closed.outcome == "withdrawn"
    assert bot.texts_since(m, CITIZEN) == [f"Your request #{n} is withdrawn, as you asked. Thank you for "
                                           "telling us."]
    # Someone else pressing the citizen's buttons (forged): nothing.
    other = bot.api.user(OTHER, "Sok")
    await bot.say(other, bot.private(other), "/start")
    welcome = last(bot, other)
    for data in (f"ct:wr:{second.id}", f"ct:wry:{second.id}", f"ct:wy:{other_case.id}", f"ct:s:{n}"):
        m = await bot.press(other, OTHER, welcome["message_id"], data)
        assert bot.answers_since(m) == ["That button is not valid any more."], data
    # Nor by a citizen with requests of their own: asked about another's, they are refused first.
    await submit(bot, other, "Their own problem")
    for data in (f"ct:wr:{second.id}", f"ct:w:{other_case.id}"):
        m = await bot.press(other, OTHER, welcome["message_id"], data)
        assert bot.answers_since(m) == ["That button is not valid any more."], data
        assert bot.texts_since(m, OTHER) == [], data
    m = await bot.press(other, OTHER, welcome["message_id"], f"ct:wry:{second.id}")
    assert bot.texts_since(m, OTHER) == ["I find no request of yours with that number."]
    assert (await requests_of(bot))[0].status == "pending"


async def test_staff_keep_their_answers_and_groups_have_no_citizens(bot: Bot) -> None:
    m = await bot.say(bot.wg, bot.private(bot.wg), "/start")
    assert bot.texts_since(m)[0].startswith("Hello! I coordinate the public-requests working group's cases.")
    assert not any("Submit a request" in t for t, _d in bot.api.buttons(last(bot, bot.wg)))
    m = await bot.say(bot.official, bot.private(bot.official), "My street is flooded")
    assert not any("Submit a request" in t for t in bot.texts_since(m))
    # A citizen's button pressed by staff (forged): not theirs.
    m = await bot.press(bot.wg, bot.wg["id"], last(bot, bot.wg)["message_id"], "ct:new")
    assert bot.answers_since(m) == ["That button is not valid any more."]
    # A staff command from someone without a role: the answer for strangers, as before.
    stranger = bot.stranger
    m = await bot.say(stranger, bot.private(stranger), "/new")
    assert bot.texts_since(m) == [unknown_answer(stranger["id"])]
    m = await bot.say(stranger, bot.private(stranger), "/start not-a-code")
    assert bot.texts_since(m) == ["This invitation link is not valid. Ask for a new one."]
    # In a group: no citizen menu, nothing stored; a group bound to no unit hears nothing at all.
    before = await counts(bot)
    unbound = bot.api.group_chat(-100555, "Village group")
    for text in ("/start", "My street is flooded", "#1"):
        m = await bot.say(stranger, unbound, text)
        assert bot.api.calls[m:] == [] or all(c.method == "getUpdates" for c in bot.api.calls[m:]), text
        m = await bot.say(stranger, bot.dp_chat, text)
        assert not any("Submit a request" in t or "Hello!" in t for t in bot.texts_since(m)), text
    assert await counts(bot) == before


async def test_a_khmer_walk(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "ចាន់", language_code="km")
    chat = bot.private(citizen)
    await bot.say(citizen, chat, "/start")
    welcome = last(bot, citizen)
    labels = [t for t, _d in bot.api.buttons(welcome)]
    assert labels[-1] == "🌐 English" and "Hello" not in welcome["text"]
    data = [d for _t, d in bot.api.buttons(welcome)]
    await bot.press(citizen, CITIZEN, welcome["message_id"], data[0])  # Submit a request
    for step in ("ct:agree", "ct:c:", "ct:p:", "ct:d:"):
        msg = last(bot, citizen)
        await bot.press(citizen, CITIZEN, msg["message_id"],
                        next(d for _t, d in bot.api.buttons(msg) if d and d.startswith(step)))
    await bot.say(citizen, chat, "ផ្លូវលិចទឹក")
    for step in ("ct:skip", "ct:done"):
        msg = last(bot, citizen)
        await bot.press(citizen, CITIZEN, msg["message_id"], step)
    bot.api.send_contact(citizen, chat, "012345678", "ចាន់", user_id=CITIZEN)
    await bot.settle()
    check = last(bot, citizen)
    assert "ផ្លូវលិចទឹក" in check["text"] and "Please check" not in check["text"]
    m = await bot.press(citizen, CITIZEN, check["message_id"], "ct:send")
    [received] = bot.texts_since(m, CITIZEN)
    assert received != RECEIVED and "#" not in received
    [request] = await requests_of(bot)
    assert request.text == "ផ្លូវលិចទឹក" and request.data["contact"] == "012345678"
    who = await bot.services.citizens.by_address("telegram", str(CITIZEN))
    assert who is not None and who.language == "km"
    # The switch: English from now on, for this citizen.
    await bot.say(citizen, chat, "/start")
    m = await bot.press_button(citizen, last(bot, citizen), "English")
    assert bot.api.calls[m:] and last(bot, citizen)["text"].startswith("Hello! Here you can send")
    who = await bot.services.citizens.by_address("telegram", str(CITIZEN))
    assert who is not None and who.language == "en"
    m = await bot.say(citizen, chat, "hello")
    assert bot.texts_since(m) == ["To send a new request, tap Submit a request. To see where your requests "
                                  "stand, tap My requests, or send a case number."]


async def test_erase_my_data(bot: Bot) -> None:
    citizen = bot.api.user(CITIZEN, "Chan", last_name="Lina")
    chat = bot.private(citizen)
    await bot.say(citizen, chat, "/start")
    await tap(bot, citizen, "Submit a request")
    await tap(bot, citizen, "I agree")
    await tap(bot, citizen, "Land dispute")
    await tap(bot, citizen, "Siem Reap")
    await bot.say(citizen, chat, "My neighbour took my land")
    await bot.say(citizen, chat, "The fence moved 3 metres")
    await tap(bot, citizen, "Skip")
    bot.api.send_contact(citizen, chat, "+855 12 345 678", "Chan", "Lina", user_id=CITIZEN)
    await bot.settle()
    await tap(bot, citizen, "Send")
    services = bot.services
    [request] = await requests_of(bot)
    assert request.citizen_id is not None
    case = await services.cases.create(Actor(WG, "Sophea", WG_CHAT), Draft(
        source="telegram", category_id=request.data["category_id"],
        place_unit_id=request.data["place_unit_id"], summary=request.data["summary"],
        citizen_name="Chan Lina", citizen_contact="+855 12 345 678", citizen_id=request.citizen_id,
        request_id=request.id), bot.clock())
    await services.db.write("UPDATE requests SET status = 'case', case_id = ? WHERE id = ?", (case.id, request.id))
    await bot.settle()

    await tap(bot, citizen, "My requests")
    m = await tap(bot, citizen, "Erase my data")
    [explained] = bot.texts_since(m)
    assert explained.startswith("Erase your data? I erase your name, your phone number") and "cannot be undone" in explained
    m = await tap(bot, citizen, "No, keep it")
    assert bot.answers_since(m) == ["Nothing was changed."]
    assert await services.citizens.by_address("telegram", str(CITIZEN)) is not None
    await tap(bot, citizen, "My requests")
    await tap(bot, citizen, "Erase my data")
    m = await tap(bot, citizen, "Yes, erase my data")
    assert bot.texts_since(m, CITIZEN) == [
        "Your personal data is erased: your name, your contact and what you wrote to us. The case numbers "
        "stay in the ministry's figures, without anything about you."]
    who = await services.citizens.get(request.citizen_id)
    assert who is not None and who.erased_at is not None and (who.name, who.contact) == ("", "")
    stored = await services.requests.get(request.id)
    assert stored is not None and stored.text == "" and stored.data == {}
    erased = await services.cases.get(case.id)
    assert "Chan" not in erased.citizen_name and "345" not in erased.citizen_contact
    assert (erased.status, erased.id) == (case.status, case.id)  # the work and the figures go on
    # The bot knows them no more: a fresh start, nothing of theirs to show.
    m = await tap(bot, citizen, "My requests")
    assert bot.texts_since(m) == ["You have not sent any request yet."]
    m = await bot.say(citizen, chat, f"#{case.id}")
    assert bot.texts_since(m) == [f"I find no request of yours with the number #{case.id}."]
