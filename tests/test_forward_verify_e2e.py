"""Forwarding that keeps ownership, resolutions verified by a second person, bouncing, merging."""

from __future__ import annotations

from bot.domain.cases import Actor, AttachmentIn
from tests.conftest import DP_CHAT, SUPERVISOR, WG, WG_CHAT
from tests.harness import Bot
from tests.test_e2e_inputs import make_case

MLM_CHAT = -100300


async def bind_institution_chat(bot: Bot) -> dict:
    chat = bot.api.group_chat(MLM_CHAT, "Ministry of Land liaison")
    m = await bot.say(bot.admin, chat, "/bindchat mlm")
    assert bot.texts_since(m) == ["This chat is now the chat of Ministry of Land."]
    return chat


async def test_forward_acknowledge_resolve_verify(bot: Bot) -> None:
    liaison_chat = await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    wg, wg_private = bot.wg, bot.private(bot.wg)
    m = await bot.say(wg, wg_private, f"/case {n}")
    shown = bot.last_bot_message(wg["id"])
    await bot.press_button(wg, shown, "Forward to another institution")
    picker = bot.api.messages[(wg["id"], shown["message_id"])]
    assert "Forward #1 to which institution?" in picker["text"]
    await bot.press_button(wg, picker, "Ministry of Land")
    assert "why does #1 go to this institution?" in bot.last_bot_message(wg["id"])["text"]
    m = await bot.reply_to_last(wg, wg_private, "Land titles are theirs")
    assert any("#1 (Road flooded) · forwarded by Sophea → Ministry of Land: Land titles are theirs" in t
               for t in bot.texts_since(m, WG_CHAT))

    card = bot.card(MLM_CHAT, n)
    assert "Forwarded — awaiting acknowledgment" in card["text"] and "Acknowledge by" in card["text"]
    assert "Chan Lina" not in card["text"] and "099 111 222" not in card["text"]  # not the liaison's
    assert [lbl for lbl, _ in bot.api.buttons(card)] == ["📥 Acknowledge", "↩️ Decline (not ours)", "✔️ Resolved…"]

    # The case stays on the working group's books while away.
    cases, _ = await bot.services.cases.open_cases(Actor(WG, "Sophea", None), 0, bot.clock())
    assert [c.id for c in cases] == [n]

    m = await bot.say(bot.liaison, liaison_chat, f"/ack {n} MLM-2026-17")
    assert bot.texts_since(m, MLM_CHAT)[0] == f"#{n} is now: With the institution."
    assert "their reference: MLM-2026-17" in bot.card(MLM_CHAT, n)["text"]

    await bot.press_button(bot.liaison, bot.card(MLM_CHAT, n), "Resolved")
    await bot.reply_to_last(bot.liaison, liaison_chat, "Title corrected in the land registry")
    m = await bot.press_button(bot.liaison, bot.last_bot_message(MLM_CHAT), "Skip")
    case = await bot.services.cases.get(n)
    assert case.status == "resolved" and case.closed_at is None  # not closed until verified
    request = bot.last_bot_message(WG_CHAT)
    assert "Verify with the citizen" in request["text"]

    m = await bot.press_button(wg, request, "Citizen confirmed")
    case = await bot.services.cases.get(n)
    assert case.status == "closed" and case.outcome == "confirmed"
    m = await bot.say(wg, wg_private, f"/case {n}")
    shown = "\n".join(bot.texts_since(m))
    for step in ("forwarded", "acknowledged", "MLM-2026-17", "resolved", "verified",
                 "closed, citizen confirmed"):
        assert step in shown, step


async def test_decline_reassign_not_ours_is_bouncing(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    wg = bot.private(bot.wg)
    await bot.say(bot.wg, wg, f"/forward {n} mlm Land titles are theirs")
    await bot.press_button(bot.liaison, bot.card(MLM_CHAT, n), "Decline")
    m = await bot.reply_to_last(bot.liaison, bot.api.group_chat(MLM_CHAT, "x"), "Boundary disputes are local")
    assert any("declined as not theirs by Rith: Boundary disputes are local" in t
               for t in bot.texts_since(m, WG_CHAT))
    assert (await bot.services.cases.get(n)).status == "new"
    await bot.say(bot.wg, wg, f"/assign {n} pp-dp")
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Not ours")
    m = await bot.reply_to_last(bot.official, bot.dp_chat, "The plot is in Kandal")
    case = await bot.services.cases.get(n)
    assert case.handoffs == 3 and case.bouncing
    assert any("#1 is bouncing: handed off 3 times" in t for t in bot.texts_since(m, WG_CHAT))
    assert any("is bouncing" in t for t in bot.texts_since(m, SUPERVISOR))  # Phnom Penh's supervisor
    m = await bot.say(bot.wg, wg, "/bouncing")
    assert "#1" in bot.texts_since(m)[0] and "3 hand-offs" in bot.texts_since(m)[0]
    m = await bot.say(bot.other, bot.private(bot.other), "/bouncing")
    assert bot.texts_since(m) == ["No bouncing cases."]  # not in Siem Reap's scope


async def test_dispute_reopens_then_confirm_closes(bot: Bot) -> None:
    n = await make_case(bot)
    dp = bot.dp_chat
    await bot.say(bot.official, dp, f"/resolve {n} Drain cleared and road reopened")
    request = bot.last_bot_message(WG_CHAT)
    await bot.press_button(bot.wg, request, "Citizen disputes")
    m = await bot.reply_to_last(bot.wg, bot.wg_chat, "Water is still on the road")
    assert any("the citizen disputes the resolution: Water is still on the road" in t
               for t in bot.texts_since(m, DP_CHAT))
    case = await bot.services.cases.get(n)
    assert case.status == "assigned" and case.reopen_count == 1 and case.unit_key == "pp-dp"
    assert "reopened 1×" in bot.card(DP_CHAT, n)["text"]
    # The old verification buttons are stale now: the press says what became of the case (no
    # card is promised: there is none under a notice), and the buttons go.
    m = await bot.press_button(bot.wg, request, "Citizen confirmed")
    assert bot.answers_since(m) == [f"#{n} has changed meanwhile: it is Assigned — awaiting acceptance now."]
    assert bot.api.buttons(bot.api.messages[(WG_CHAT, request["message_id"])]) == []

    await bot.say(bot.official, dp, f"/resolve {n} Second drain dug, water gone")
    m = await bot.press_button(bot.supervisor, bot.last_bot_message(WG_CHAT), "Citizen confirmed")
    case = await bot.services.cases.get(n)
    assert case.status == "closed" and case.outcome == "confirmed"
    assert any(f"#{n} is closed, citizen confirmed." in t for t in bot.texts_since(m, DP_CHAT))


async def test_nobody_verifies_their_own_resolution(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.say(bot.admin, bot.private(bot.admin), f"/resolve {n} Cleared it myself yesterday")
    m = await bot.say(bot.admin, bot.private(bot.admin), f"/verify {n} confirmed")
    assert bot.texts_since(m) == ["Nobody verifies their own resolution: another member of the "
                                  "working group or a supervisor must."]
    m = await bot.press_button(bot.admin, bot.last_bot_message(WG_CHAT), "Could not reach")
    assert "Nobody verifies their own resolution" in bot.answers_since(m)[0]
    assert (await bot.services.cases.get(n)).status == "resolved"
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/verify {n} unreachable")
    case = await bot.services.cases.get(n)
    assert case.status == "closed" and case.outcome == "unreachable"


async def test_refusals_and_bad_input(bot: Bot) -> None:
    n = await make_case(bot)
    wg = bot.private(bot.wg)
    cases = [
        (f"/forward {n} pp-ck wrong place", "is a unit of the ministry: assign the case instead"),
        (f"/forward {n} mlm", "Name the institution and give the reason"),
        (f"/forward {n} mlm their matter", "has no chat here: say how it was sent"),
        (f"/resolve {n}", "Say what was done"),
        (f"/verify {n} maybe", "confirmed, unreachable or disputed"),
        (f"/verify {n} disputed", "Say what the citizen disputes"),
        (f"/merge {n}", "Name the case to merge into"),
        (f"/merge {n} {n}", "Name another case to merge into"),
        (f"/merge {n} 99", "There is no case #99"),
        (f"/ack {n}", "You are not allowed to do that."),  # the institution acknowledges
        (f"/outcome {n} they fixed it all", "cannot be done now"),  # it was never forwarded
    ]
    for text, expected in cases:
        m = await bot.say(bot.wg, wg, text)
        assert expected in bot.texts_since(m)[0], (text, bot.texts_since(m))
    assert (await bot.services.cases.get(n)).version == 2


async def test_forward_without_a_chat_records_the_channel_and_outcome(bot: Bot) -> None:
    n = await make_case(bot, unit=None)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/forward {n} mlm letter Land titles are theirs")
    line = next(t for t in bot.texts_since(m, WG_CHAT) if "forwarded" in t)
    assert "(by letter; follow up by 5 Nov 2026)" in line
    case = await bot.services.cases.get(n)
    assert case.forward_channel == "letter" and case.status == "forwarded"
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/outcome {n} The ministry corrected the title")
    assert (await bot.services.cases.get(n)).status == "resolved"
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/verify {n} confirmed")
    assert "Nobody verifies their own resolution" in bot.texts_since(m)[0]  # Sophea recorded it
    await bot.say(bot.admin, bot.private(bot.admin), f"/verify {n} confirmed")
    assert (await bot.services.cases.get(n)).outcome == "confirmed"


async def test_merge_moves_attachments_and_contacts(bot: Bot) -> None:
    a = await make_case(bot, citizen_name="Keo Dara", citizen_contact="011 222 333",
                        attachments=[AttachmentIn("photo", "DUP-PHOTO")])
    b = await make_case(bot)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/merge {a} {b}")
    dup = await bot.services.cases.get(a)
    assert dup.status == "merged" and dup.merged_into == b and dup.outcome == "merged"
    assert dup.resolved_at is None  # never counts as resolved
    assert [x.file_id for x in await bot.services.cases.attachments(b)] == ["DUP-PHOTO"]
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {b}")
    shown = "\n".join(bot.texts_since(m))
    assert "Keo Dara · 011 222 333 (#1)" in shown and "#1 merged into this case" in shown
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {a}")
    assert "Merged into another case</b> · merged as a duplicate → #2" in bot.texts_since(m)[0]
    # Merged cases leave the lists; the unit's card says where it went.
    cases, total = await bot.services.cases.open_cases(Actor(WG, "x", None), 0, bot.clock())
    assert [c.id for c in cases] == [b]
    del total


async def test_liaison_cannot_touch_a_case_not_forwarded_to_them(bot: Bot) -> None:
    n = await make_case(bot)
    before = (await bot.services.cases.get(n)).version
    for text in (f"/ack {n}", f"/decline {n} not ours at all", f"/resolve {n} did it all fine",
                 f"/case {n}"):
        m = await bot.say(bot.liaison, bot.private(bot.liaison), text)
        assert bot.texts_since(m) == ["You are not allowed to do that."], text
    assert (await bot.services.cases.get(n)).version == before
