"""The small things that confused officials and the working group, each as they met it; and the
buttons (and Khmer words) that replace the English keywords."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime

from bot.domain.access import VIA_NOTICE
from bot.domain.cases import CaseService
from bot.domain.model import Actor, Change, ImportedCase
from bot.domain.rules import Action, Status
from bot.domain.units import UnitService
from tests.conftest import ADMIN, DP_CHAT, LIAISON, OFFICIAL, SUPERVISOR, WG, WG_CHAT, Clock, Domain
from tests.harness import Bot
from tests.test_e2e_inputs import make_case
from tests.test_forward_verify_e2e import MLM_CHAT, bind_institution_chat

SOPHEA = Actor(WG, "Sophea", WG_CHAT)


async def test_bouncing_lists_what_the_notice_announced(bot: Bot) -> None:
    """The supervisor of Phnom Penh hears "#1 is bouncing" (the case concerns Daun Penh) while it
    is with another institution; their /bouncing lists it."""
    n = await make_case(bot, unit=None)
    cases, liaison = bot.services.cases, Actor(LIAISON, "Rith", None)
    await cases.apply(n, Action.FORWARD, SOPHEA, Change(text="Theirs", unit_key="mlm", channel="letter"),
                      bot.clock())
    await cases.apply(n, Action.DECLINE, liaison, Change(text="Not ours"), bot.clock())
    m = bot.api.mark()
    await cases.apply(n, Action.FORWARD, SOPHEA, Change(text="Theirs after all", unit_key="mlm",
                                                        channel="letter"), bot.clock())
    await bot.settle()
    assert any("is bouncing" in t for t in bot.texts_since(m, SUPERVISOR))
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/bouncing")
    [text] = bot.texts_since(m)
    assert text.startswith("<b>Bouncing cases</b>") and f"<b>#{n}</b>" in text


async def test_a_late_citizen_confirmed_says_what_happened(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.services.cases.apply(n, Action.RESOLVE, Actor(OFFICIAL, "Dara", DP_CHAT),
                                   Change(text="Drain cleared, road dry again"), bot.clock())
    await bot.settle()
    request = bot.last_bot_message(WG_CHAT)
    assert "Verify with the citizen: Chan Lina · 099 111 222" in request["text"]
    await bot.say(bot.wg, bot.private(bot.wg), f"/verify {n} confirmed")
    m = await bot.press_button(bot.admin, request, "Citizen confirmed")
    assert bot.answers_since(m) == [f"#{n} is already closed, citizen confirmed, by Sophea."]
    assert bot.api.buttons(bot.api.messages[(WG_CHAT, request["message_id"])]) == []
    assert bot.texts_since(m) == []  # no card promised, none sent


async def test_a_press_under_a_notice_after_a_change_brings_the_buttons_up_to_date(bot: Bot) -> None:
    n = await make_case(bot)
    cases, dara = bot.services.cases, Actor(OFFICIAL, "Dara", DP_CHAT)
    await cases.apply(n, Action.RESOLVE, dara, Change(text="Drain cleared, road dry again"), bot.clock())
    await bot.settle()
    request = bot.last_bot_message(WG_CHAT)
    await cases.apply(n, Action.NOTE, SOPHEA, Change(text="called, no answer"), bot.clock())
    await cases.apply(n, Action.REOPEN, SOPHEA, Change(text="Still flooded"), bot.clock())
    await cases.apply(n, Action.RESOLVE, dara, Change(text="Drain cleared again, dry"), bot.clock())
    await bot.settle()
    m = await bot.press_button(bot.admin, request, "Citizen confirmed")
    assert bot.answers_since(m) == [
        f"#{n} has changed meanwhile: it is Resolved — awaiting verification now."]
    version = (await cases.get(n)).version
    pressed = bot.api.messages[(WG_CHAT, request["message_id"])]
    assert bot.button(pressed, "Citizen confirmed") == f"c:{n}:{version}:cfm"


async def test_acknowledge_asks_for_their_reference(bot: Bot) -> None:
    chat = await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    await bot.services.cases.apply(n, Action.FORWARD, SOPHEA, Change(text="Theirs", unit_key="mlm"),
                                   bot.clock())
    await bot.settle()
    await bot.press_button(bot.liaison, bot.card(MLM_CHAT, n), "Acknowledge")
    question = bot.last_bot_message(MLM_CHAT)
    assert "your institution's reference for #1?" in question["text"]
    assert question["reply_markup"].get("force_reply") is True
    await bot.reply_to_last(bot.liaison, chat, "MLM-2026-17")
    case = await bot.services.cases.get(n)
    assert case.status is Status.ACKNOWLEDGED and case.their_reference == "MLM-2026-17"
    assert "their reference: MLM-2026-17" in bot.card(MLM_CHAT, n)["text"]
    # "-": there is none.
    m2 = await make_case(bot, unit=None)
    await bot.services.cases.apply(m2, Action.FORWARD, SOPHEA, Change(text="Theirs", unit_key="mlm"),
                                   bot.clock())
    await bot.settle()
    await bot.press_button(bot.liaison, bot.card(MLM_CHAT, m2), "Acknowledge")
    await bot.reply_to_last(bot.liaison, chat, "-")
    case = await bot.services.cases.get(m2)
    assert case.status is Status.ACKNOWLEDGED and case.their_reference is None


async def test_whoever_recorded_an_outcome_gets_no_verification_buttons(domain: Domain, clock: Clock) -> None:
    """Without a working group chat each member is told privately: the one who recorded what the
    institution reported may not verify it, so their copy has no buttons; the others' has them.
    The name and phone in it are views, recorded."""
    settings = dataclasses.replace(domain.settings, working_group_chat_id=None)
    units = UnitService(domain.db, settings)
    await units.load_tree()
    cases = CaseService(domain.db, settings, units, domain.people, clock)
    another = 1003
    token = await domain.people.invite(ADMIN, "-", "working_group", clock())
    await domain.people.redeem(token, another, "Another", None, "en", clock())
    n = await domain.new_case(clock)
    sophea = Actor(WG, "Sophea", WG)
    await cases.apply(n, Action.FORWARD, sophea, Change(text="Theirs", unit_key="mlm", channel="letter"),
                      clock())
    await cases.apply(n, Action.OUTCOME, sophea, Change(text="Title corrected in the registry"), clock())
    rows = await domain.db.all(
        "SELECT chat_id, text, payload FROM outbox WHERE kind = 'text' AND text LIKE '%outcome reported%'")
    by_chat = {int(r[0]): (str(r[1]), json.loads(r[2]).get("buttons")) for r in rows}
    assert set(by_chat) == {WG, another}
    assert by_chat[WG][1] is None and by_chat[another][1]
    assert "Verify with the citizen: Sok Dara · 012 345 678" in by_chat[another][0]
    seen = await domain.db.all("SELECT who_id FROM data_access WHERE via = ? ORDER BY who_id", (VIA_NOTICE,))
    assert [int(r[0]) for r in seen] == [WG, another]


async def test_a_second_forward_leaves_the_first_card_without_buttons(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    cases = bot.services.cases
    await cases.apply(n, Action.FORWARD, SOPHEA, Change(text="Theirs", unit_key="mlm"), bot.clock())
    await bot.settle()
    first = bot.card(MLM_CHAT, n)
    await cases.apply(n, Action.DECLINE, Actor(LIAISON, "Rith", MLM_CHAT), Change(text="Not ours"),
                      bot.clock())
    await cases.apply(n, Action.FORWARD, SOPHEA, Change(text="Theirs after all", unit_key="mlm"),
                      bot.clock())
    await bot.settle()
    second = bot.card(MLM_CHAT, n)
    assert second["message_id"] != first["message_id"]
    assert bot.api.buttons(second)
    old = bot.api.messages[(MLM_CHAT, first["message_id"])]
    assert bot.api.buttons(old) == []
    assert old["text"].endswith("A newer card of this case is further down.")
    # Later changes keep it so.
    await cases.apply(n, Action.NOTE, SOPHEA, Change(text="called them"), bot.clock())
    await cases.apply(n, Action.ACKNOWLEDGE, Actor(LIAISON, "Rith", MLM_CHAT), Change(), bot.clock())
    await bot.settle()
    assert bot.api.buttons(bot.api.messages[(MLM_CHAT, first["message_id"])]) == []


async def test_note_confirms_the_note(bot: Bot) -> None:
    n = await make_case(bot)
    m = await bot.say(bot.official, bot.dp_chat, f"/note {n} Called the village chief")
    assert bot.texts_since(m, DP_CHAT) == [f"📝 Note added to #{n}."]


async def test_the_card_names_the_place_once(bot: Bot) -> None:
    n = await make_case(bot)  # about Daun Penh, assigned to Daun Penh
    text = bot.card(DP_CHAT, n)["text"]
    assert "📍 Daun Penh\n" in text and "assigned to" not in text
    other = await make_case(bot, unit="sr")  # about Daun Penh, assigned to Siem Reap
    assert "📍 Daun Penh → assigned to Siem Reap" in bot.card(bot.sr_chat["id"], other)["text"]


async def test_the_digest_leaves_out_empty_statuses_and_the_imported_backlog(bot: Bot) -> None:
    await make_case(bot)
    services = bot.services
    cats = await services.units.categories()
    dp = await services.units.by_key("pp-dp")
    await services.cases.import_cases(Actor(WG, "Sophea"), [ImportedCase(
        f"2021-{i:04}", datetime(2021, 3, 15, 5, tzinfo=bot.clock().tzinfo), "letter", cats[0].id,
        dp.id, "Old case", "", "Meas Sophal", "", Status.IN_PROGRESS) for i in range(3)], bot.clock())
    m = await bot.say(bot.wg, bot.private(bot.wg), "/digest")
    [text] = bot.texts_since(m)
    assert "Last 24 hours: 1 new · 0 resolved · 0 closed" in text
    assert "• Assigned — awaiting acceptance: 1" in text and "• In progress: 3" in text
    assert not re.search(r"^• [^\n]*: 0$", text, re.M) and "Waiting for information" not in text


async def test_refusals_say_what_was_tried(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.say(bot.other, bot.private(bot.other), f"/note {n} mine now")
    await bot.say(bot.other, bot.private(bot.other), f"/case {n}")
    m = await bot.say(bot.admin, bot.private(bot.admin), "/refusals")
    [text] = bot.texts_since(m)
    assert f"Vanna · add a note #{n}" in text and f"Vanna · read a case #{n}" in text


# --- buttons, and Khmer words for the typed keywords --------------------------------------------

async def test_status_without_a_status_offers_buttons(bot: Bot) -> None:
    n = await make_case(bot)
    m = await bot.say(bot.official, bot.dp_chat, f"/status {n}")
    [text] = bot.texts_since(m, DP_CHAT)
    assert text == f"#{n} is Assigned — awaiting acceptance. The new status?"
    offer = bot.last_bot_message(DP_CHAT)
    assert [label for label, _ in bot.api.buttons(offer)] == ["▶️ In progress", "❓ Waiting for information…"]
    await bot.press_button(bot.official, offer, "In progress")
    assert (await bot.services.cases.get(n)).status is Status.IN_PROGRESS
    # Waiting for information, then back to work by a button.
    await bot.services.cases.apply(n, Action.NEED_INFO, Actor(OFFICIAL, "Dara", DP_CHAT),
                                   Change(text="The title number"), bot.clock())
    await bot.say(bot.official, bot.dp_chat, f"/status {n}")
    offer = bot.last_bot_message(DP_CHAT)
    assert [label for label, _ in bot.api.buttons(offer)] == ["▶️ In progress"]
    await bot.press_button(bot.official, offer, "In progress")
    assert (await bot.services.cases.get(n)).status is Status.IN_PROGRESS
    # Someone of another unit: refused, as the buttons would be.
    m = await bot.say(bot.other, bot.private(bot.other), f"/status {n}")
    assert bot.texts_since(m) == ["You are not allowed to do that."]


async def test_typed_keywords_in_khmer(bot: Bot) -> None:
    n = await make_case(bot)
    m = await bot.say(bot.official, bot.dp_chat, f"/status {n} កំពុងដោះស្រាយ")
    assert bot.texts_since(m, DP_CHAT) == [f"#{n} is now: In progress."]
    m = await bot.say(bot.official, bot.dp_chat, f"/status {n} រង់ចាំព័ត៌មាន The title number")
    assert (await bot.services.cases.get(n)).status is Status.WAITING_INFO
    await bot.services.cases.apply(n, Action.RESOLVE, Actor(OFFICIAL, "Dara", DP_CHAT),
                                   Change(text="Drain cleared, road dry again"), bot.clock())
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/verify {n} បានបញ្ជាក់")
    case = await bot.services.cases.get(n)
    assert case.status is Status.CLOSED and case.outcome == "confirmed"
    other = await make_case(bot, unit=None)
    await bot.say(bot.wg, bot.private(bot.wg), f"/forward {other} mlm លិខិត land titles are theirs")
    forwarded = await bot.services.cases.get(other)
    assert forwarded.status is Status.FORWARDED and forwarded.forward_channel == "letter"
    m = await bot.say(bot.supervisor, bot.private(bot.supervisor), "/digest បិទ")
    assert await bot.services.digests.is_muted(SUPERVISOR)


async def test_verify_without_an_outcome_offers_buttons(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.services.cases.apply(n, Action.RESOLVE, Actor(OFFICIAL, "Dara", DP_CHAT),
                                   Change(text="Drain cleared, road dry again"), bot.clock())
    chat = bot.private(bot.wg)
    m = await bot.say(bot.wg, chat, f"/verify {n}")
    assert bot.texts_since(m, chat["id"]) == [f"#{n}: how did the call with the citizen end?"]
    offer = bot.last_bot_message(chat["id"])
    await bot.press_button(bot.wg, offer, "Could not reach")
    case = await bot.services.cases.get(n)
    assert case.status is Status.CLOSED and case.outcome == "unreachable"
    m = await bot.say(bot.wg, chat, f"/verify {n}")
    assert bot.texts_since(m, chat["id"]) == [
        f"That cannot be done now: case #{n} is Closed."]


async def test_an_officials_help_is_short(bot: Bot) -> None:
    m = await bot.say(bot.official, bot.private(bot.official), "/help")
    [text] = bot.texts_since(m)
    assert len(text.splitlines()) <= 5
    assert "in_progress" not in text and "Reply to a card to add a note" in text
    m = await bot.say(bot.official, bot.private(bot.official), "/help all")
    [full] = bot.texts_since(m)
    assert len(full.splitlines()) > 10 and "/status" in full
    m = await bot.say(bot.wg, bot.private(bot.wg), "/help")
    assert "/assign" in bot.texts_since(m)[0]
