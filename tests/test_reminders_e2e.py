"""The reminder ladder end to end: the real Application against the fake Bot API, the repeating job
run by hand (``run_once``) after moving the injected clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.jobs.reminders import run_once
from tests.conftest import DP_CHAT, OFFICIAL, SUPERVISOR, WG_CHAT, Clock
from tests.harness import Bot, running_bot
from tests.test_e2e_inputs import make_case
from tests.test_forward_verify_e2e import MLM_CHAT, bind_institution_chat

JSON = dict[str, Any]
TZ = ZoneInfo("Asia/Phnom_Penh")
REMINDER_BUTTONS = ["🔄 Update status", "😴 Snooze 1 day", "🆘 Ask for help"]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time in Phnom Penh, November 2026 (2 Nov is a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


async def tick(bot: Bot, now: datetime) -> int:
    """Move the clock, run the repeating job once and deliver what it queued; returns the mark
    from which the messages it caused can be read."""
    bot.clock.now = now
    mark = bot.api.mark()
    await run_once(bot.services)
    await bot.settle()
    return mark


def starting(bot: Bot, mark: int, prefix: str, chat_id: int | None = None) -> list[str]:
    return [t for t in bot.texts_since(mark, chat_id) if t.startswith(prefix)]


def chats_with(bot: Bot, mark: int, prefix: str) -> list[int]:
    return [int(c.params["chat_id"]) for c in bot.sent_since(mark)
            if str(c.params.get("text", "")).startswith(prefix)]


def last_starting(bot: Bot, chat_id: int, prefix: str) -> JSON:
    for (chat, _mid), msg in reversed(list(bot.api.messages.items())):
        if chat == chat_id and str(msg.get("text", "")).startswith(prefix):
            return msg
    raise AssertionError(f"no message starting {prefix!r} in chat {chat_id}")


async def history(bot: Bot, n: int) -> list[str]:
    return [e.action for e in await bot.services.cases.history(n)]


async def accepted(bot: Bot, **draft: object) -> int:
    """A case assigned to Daun Penh on Monday 2 November 09:00 and accepted by Dara."""
    n = await make_case(bot, **draft)
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
    return n


async def test_reminder_goes_to_the_unit_chat_then_privately(bot: Bot) -> None:
    n = await accepted(bot)
    # Dara registered before the bot noted who writes to it privately (private_chat came with
    # migration 0004): it does not know it may write to her.
    async with bot.services.db.transaction() as conn:
        conn.add("UPDATE people SET private_chat = 0 WHERE tg_id = ?", (OFFICIAL,))

    m = await tick(bot, at(17, 8, 59))
    assert starting(bot, m, "⏰") == []
    m = await tick(bot, at(17, 9))
    assert starting(bot, m, "⏰") == [f"⏰ #{n} (Daun Penh) is overdue by 1 day: Road flooded"]
    reminder = last_starting(bot, DP_CHAT, "⏰")
    assert [label for label, _d in bot.api.buttons(reminder)] == REMINDER_BUTTONS

    await bot.say(bot.official, bot.private(bot.official), "/mycases")  # she writes to the bot
    m = await tick(bot, at(18, 9))
    assert chats_with(bot, m, "⏰") == [OFFICIAL]
    reminder = last_starting(bot, OFFICIAL, "⏰")
    assert [label for label, _d in bot.api.buttons(reminder)] == REMINDER_BUTTONS
    # The warning (a day before the deadline) came with the first run after it.
    assert await history(bot, n) == ["create", "assign", "accept", "warn", "remind", "remind"]


async def test_snooze_asks_a_reason_holds_a_day_and_is_limited(bot: Bot) -> None:
    n = await accepted(bot)
    await tick(bot, at(17, 9))
    chat = bot.private(bot.official)
    reminder = last_starting(bot, OFFICIAL, "⏰")
    bot.clock.now = at(17, 10)
    await bot.press_button(bot.official, reminder, "Snooze")
    assert f"why should reminders about #{n} wait a day?" in bot.last_bot_message(OFFICIAL)["text"]
    m = await bot.reply_to_last(bot.official, chat, "ok")  # too short: asked again
    assert "at least 3 characters" in bot.texts_since(m)[-1]
    m = await bot.reply_to_last(bot.official, chat, "The surveyor comes tomorrow")
    assert bot.texts_since(m, OFFICIAL) == [f"✅ #{n}: no reminder until tomorrow."]

    m = await tick(bot, at(18, 9))  # the daily reminder is held a day from the snooze
    assert starting(bot, m, "⏰") == []
    m = await tick(bot, at(18, 10))
    assert chats_with(bot, m, "⏰") == [OFFICIAL]

    await bot.press_button(bot.official, last_starting(bot, OFFICIAL, "⏰"), "Snooze")
    await bot.reply_to_last(bot.official, chat, "The surveyor was ill")
    await tick(bot, at(19, 10))
    m = await bot.press_button(bot.official, last_starting(bot, OFFICIAL, "⏰"), "Snooze")
    # The limit (max_snoozes = 2) is said at once, before any reason is asked for.
    assert bot.answers_since(m) == [
        f"#{n} was already snoozed 2 times: update its status or ask for help."]
    assert bot.texts_since(m) == []
    events = await bot.services.cases.history(n)
    assert [e.note for e in events if e.action == "snooze"] == [
        "The surveyor comes tomorrow", "The surveyor was ill"]


async def test_ask_for_help_reaches_the_supervisor_privately(bot: Bot) -> None:
    n = await accepted(bot)
    await tick(bot, at(17, 9))
    await bot.press_button(bot.official, last_starting(bot, OFFICIAL, "⏰"), "Ask for help")
    assert f"what help do you need with #{n}?" in bot.last_bot_message(OFFICIAL)["text"]
    m = await bot.reply_to_last(bot.official, bot.private(bot.official),
                                "The landowner refuses to meet us")
    assert bot.texts_since(m, OFFICIAL) == [f"✅ #{n}: your request went to the supervisors."]
    text = f"🆘 Dara asks for help with #{n} (Daun Penh): The landowner refuses to meet us"
    assert bot.texts_since(m, SUPERVISOR) == [text]
    assert text in bot.texts_since(m, WG_CHAT)
    assert (await history(bot, n))[-1] == "help"


async def test_update_status_posts_the_card_where_it_was_pressed(bot: Bot) -> None:
    n = await accepted(bot)
    await tick(bot, at(17, 9))
    await bot.press_button(bot.official, last_starting(bot, OFFICIAL, "⏰"), "Update status")
    card = bot.card(OFFICIAL, n)
    assert "In progress" in card["text"] and "Chan Lina" in card["text"]
    await bot.press_button(bot.official, card, "Resolved")
    await bot.reply_to_last(bot.official, bot.private(bot.official), "Drain cleared and road reopened")
    await bot.press_button(bot.official, bot.last_bot_message(OFFICIAL), "Skip")
    assert (await bot.services.cases.get(n)).status == "resolved"


async def test_escalation_to_the_supervisor_then_the_working_group(bot: Bot) -> None:
    n = await accepted(bot)
    for day in (17, 18):
        m = await tick(bot, at(day, 9))
        assert chats_with(bot, m, "⬆️") == []
    # E1 (2 days): Daun Penh has no supervisor of its own; the nearest up the tree is Phnom
    # Penh's, Sokha, who hears privately.
    m = await tick(bot, at(19, 9))
    assert starting(bot, m, "⬆️", SUPERVISOR) == [
        f"⬆️ #{n} (Daun Penh) is overdue by 2 days: Road flooded\nEscalated to you. /case {n} shows it."]
    assert chats_with(bot, m, "⬆️") == [SUPERVISOR]
    for day in (20, 21):
        m = await tick(bot, at(day, 9))
        assert chats_with(bot, m, "⬆️") == [] and chats_with(bot, m, "⏰") == [OFFICIAL]
    # E2 (5 days): the supervisors above Phnom Penh's (there are none) and the working group.
    m = await tick(bot, at(22, 9))
    assert chats_with(bot, m, "⬆️") == [WG_CHAT]
    assert starting(bot, m, "⬆️", WG_CHAT)[0].startswith(f"⬆️ #{n} (Daun Penh) is overdue by 5 days")
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    shown = "\n".join(bot.texts_since(m))
    assert shown.count("casebot · reminder sent") == 6 and shown.count("casebot · escalated") == 2


async def test_nothing_at_night_at_the_weekend_or_on_a_holiday_then_tuesday_morning(
        tmp_path: Path, clock: Clock) -> None:
    clock.now = at(5, 21)  # Thursday evening
    async with running_bot(tmp_path, clock, deadlines={
            "working_days": ["mon", "tue", "wed", "thu", "fri"]}) as bot:
        n = await make_case(bot)  # to be accepted by Friday 21:00
        # Monday 9 November is Independence Day: Cambodia's calendar, not listed in the config.
        for now in (at(6, 21), at(6, 23), at(7, 10), at(8, 18), at(9, 7), at(9, 12), at(10, 6, 59)):
            m = await tick(bot, now)
            assert starting(bot, m, "⏰") == [], now
        m = await tick(bot, at(10, 7))
        # An unaccepted assignment: the unit's chat, with the reminder's buttons.
        assert chats_with(bot, m, "⏰") == [DP_CHAT]
        assert starting(bot, m, "⏰") == [
            f"⏰ #{n} (Daun Penh) is still not accepted, 1 day after the deadline: Road flooded"]
        reminder = last_starting(bot, DP_CHAT, "⏰")
        assert [label for label, _d in bot.api.buttons(reminder)] == REMINDER_BUTTONS
        # Update status in the group: the card, with Accept, in that group.
        await bot.press_button(bot.official, reminder, "Update status")
        card = bot.card(DP_CHAT, n)
        assert card["message_id"] > reminder["message_id"]
        await bot.press_button(bot.official, card, "Accept")
        assert (await bot.services.cases.get(n)).status == "in_progress"


async def test_unacknowledged_forward_reminds_the_liaisons_and_the_working_group(bot: Bot) -> None:
    await bind_institution_chat(bot)
    n = await make_case(bot, unit=None)
    await bot.say(bot.wg, bot.private(bot.wg), f"/forward {n} mlm Land titles are theirs")
    m = await tick(bot, at(5, 8, 59))
    assert starting(bot, m, "⏰") == []
    m = await tick(bot, at(5, 9))
    text = f"⏰ #{n} is not acknowledged by Ministry of Land, 1 day after the deadline: Road flooded"
    assert sorted(chats_with(bot, m, "⏰")) == sorted([WG_CHAT, MLM_CHAT])
    assert starting(bot, m, "⏰", MLM_CHAT) == [text] and starting(bot, m, "⏰", WG_CHAT) == [text]
    reminder = last_starting(bot, MLM_CHAT, "⏰")
    assert [label for label, _d in bot.api.buttons(reminder)] == REMINDER_BUTTONS
    # The liaison's Update status: the card (without the citizen's name) in their chat.
    m = await bot.press_button(bot.liaison, reminder, "Update status")
    assert not any(bot.answers_since(m))  # answered without a refusal
    card = bot.card(MLM_CHAT, n)
    assert card["message_id"] > reminder["message_id"] and "Chan Lina" not in card["text"]
    await bot.press_button(bot.liaison, card, "Acknowledge")
    await bot.reply_to_last(bot.liaison, bot.api.group_chat(MLM_CHAT, "x"), "-")  # no reference
    assert (await bot.services.cases.get(n)).status == "acknowledged"


async def test_unverified_resolution_reminds_the_working_group_with_the_verify_buttons(bot: Bot) -> None:
    n = await make_case(bot)
    await bot.say(bot.official, bot.dp_chat, f"/resolve {n} Drain cleared and road reopened")
    m = await tick(bot, at(9, 9))
    assert chats_with(bot, m, "⏰") == [WG_CHAT]
    reminder = last_starting(bot, WG_CHAT, "⏰")
    assert reminder["text"] == (f"⏰ #{n} (Daun Penh) is resolved but not verified, 1 day after the "
                                "deadline: Road flooded")
    assert [label for label, _d in bot.api.buttons(reminder)] == [
        "✅ Citizen confirmed", "📵 Could not reach", "⚠️ Citizen disputes…", "↩️ Reopen…"]
    await bot.press_button(bot.wg, reminder, "Citizen confirmed")
    case = await bot.services.cases.get(n)
    assert case.status == "closed" and case.next_action_at is None


async def test_deadline_by_hand_is_recorded_and_only_for_the_working_group(bot: Bot) -> None:
    n = await accepted(bot)
    m = await bot.say(bot.official, bot.dp_chat, f"/due {n} 2026-11-30")
    assert bot.texts_since(m) == ["You are not allowed to do that."]
    assert (await bot.services.cases.get(n)).due_at == at(17, 9)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/due {n} 2026-11-30")
    assert f"New deadline for #{n}: 30 Nov 2026." in bot.texts_since(m, DP_CHAT)
    case = await bot.services.cases.get(n)
    assert case.due_at == at(30, 17) and case.next_action_at == at(29, 17)  # warned a day before
    event = (await bot.services.cases.history(n))[-1]
    assert event.action == "set_due" and event.actor_name == "Sophea"
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    assert "deadline set" in "\n".join(bot.texts_since(m))
    m = await tick(bot, at(30, 16, 59))
    assert starting(bot, m, "⏰") == []
    m = await tick(bot, at(30, 17))
    assert chats_with(bot, m, "⏰") == [OFFICIAL]


async def test_waiting_for_information_pauses_reminders_and_the_deadline(bot: Bot) -> None:
    n = await accepted(bot, priority="urgent")  # due Thursday 5 November, 09:00
    assert (await bot.services.cases.get(n)).due_at == at(5, 9)
    bot.clock.now = at(3, 9)
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Need info")
    await bot.reply_to_last(bot.official, bot.dp_chat, "Which plot number?")
    assert (await bot.services.cases.get(n)).status == "waiting_info"
    for now in (at(5, 9), at(5, 12), at(6, 9)):
        m = await tick(bot, now)
        assert starting(bot, m, "⏰") == [], now
    request = last_starting(bot, WG_CHAT, f"#{n} (Road flooded) · asked for information")
    await bot.press_button(bot.wg, request, "Answer")
    await bot.reply_to_last(bot.wg, bot.wg_chat, "Plot 112, next to the pagoda")
    case = await bot.services.cases.get(n)
    assert case.status == "in_progress" and case.due_at == at(8, 9)  # three days later
    events = await bot.services.cases.history(n)
    assert [e.action for e in events][-2:] == ["need_info", "provide_info"]
    m = await tick(bot, at(8, 8, 59))
    assert starting(bot, m, "⏰") == []
    m = await tick(bot, at(8, 9))
    assert chats_with(bot, m, "⏰") == [OFFICIAL]
