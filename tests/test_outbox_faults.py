"""Telegram's failures on the outbox's sends and card edits (429 with retry_after, 5xx, a request
lost on its way, a late answer, 403): every row ends sent or failed with its reason, each chat's
messages in order, at most one duplicate per late answer. The logs of a handled 429; what the
admins hear when a working-group member blocks the bot; what a user is told when their reply
fails after their change was recorded."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.domain.cases import Actor, Change
from bot.domain.rules import Action
from bot.inbox import MAX_ATTEMPTS
from tests.conftest import ADMIN, DP_CHAT, OFFICIAL, SR_CHAT, WG, WG_CHAT
from tests.harness import Bot
from tests.test_delivery_limits import delivered, queue, rows_to
from tests.test_e2e_inputs import make_case
from tests.test_outbox_lanes import card_now, edits

SOPHEA = Actor(WG, "Sophea", WG_CHAT)
DARA = Actor(OFFICIAL, "Dara", DP_CHAT)
PATIENCE = 0.3  # seconds the sender waits for an answer here (Telegram's late ones take longer)
LATE = 1.0
HONEST = ("Sorry, I could not reply, but your change may have been recorded. Check with /case "
          "before trying again.")
NOTHING_CHANGED = "Sorry, something went wrong. Nothing was changed; please try again."
ALREADY = "This was already done: I had recorded it before."


def impatient(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender gives up on an answer after ``PATIENCE`` seconds (a TimedOut), as it does on
    a slow network after its read timeout."""
    real = bot.services.sender.bot

    class Impatient:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(real, name)
            if name not in ("send_message", "edit_message_text"):
                return attr

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await attr(*args, read_timeout=PATIENCE, **kwargs)

            return call

    monkeypatch.setattr(bot.services.sender, "bot", Impatient())


def to(chat: int) -> Any:
    return lambda p: int(p["chat_id"]) == chat


async def test_every_row_ends_sent_or_failed_in_order_under_every_fault(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = bot.api
    n = await make_case(bot)  # its card in Daun Penh's chat
    impatient(bot, monkeypatch)
    a, b, c, blocked = 700_001, 700_002, 700_003, 700_004
    api.fail_next("sendMessage", "Too Many Requests: retry after 7", 429,
                  parameters={"retry_after": 7}, predicate=to(a))
    api.fail_next("sendMessage", "Internal Server Error", 500, times=2, predicate=to(b))
    api.delay_next("sendMessage", LATE, deliver=False, predicate=to(c))  # lost on its way
    api.delay_next("sendMessage", LATE, predicate=to(c))                 # then a late answer
    api.delay_next("sendMessage", LATE, predicate=to(SR_CHAT))           # a late answer
    api.fail_next("sendMessage", "Bad Gateway", 502, predicate=lambda p: p["text"] == "s2")
    api.block(blocked)
    # The card's edit: 429, then 502, lost, a late answer; meanwhile another change.
    api.fail_next("editMessageText", "Too Many Requests: retry after 7", 429,
                  parameters={"retry_after": 7}, predicate=to(DP_CHAT))
    api.fail_next("editMessageText", "Bad Gateway", 502, predicate=to(DP_CHAT))
    api.delay_next("editMessageText", LATE, deliver=False, predicate=to(DP_CHAT))
    api.delay_next("editMessageText", LATE, predicate=to(DP_CHAT))
    mark = api.mark()
    chats = {a: "a", b: "b", c: "c", blocked: "x", SR_CHAT: "s"}
    for chat, name in chats.items():
        await queue(bot, chat, *(f"{name}{i}" for i in range(1, 4)))
    await bot.services.cases.apply(n, Action.ACCEPT, DARA, Change(), bot.clock())
    await bot.settle()
    await bot.services.cases.apply(n, Action.NOTE, SOPHEA, Change(text="while it waits"),
                                   bot.clock())
    for _ in range(12):
        bot.clock.advance(minutes=2)  # past any retry_after and backoff
        await bot.settle()

    assert await bot.services.outbox.pending() == 0
    rows = await bot.services.db.all("SELECT sent_at, failed_at, last_error FROM outbox")
    assert all((r[0] is None) != (r[1] is None) for r in rows)  # sent, or failed …
    assert all(r[2] for r in rows if r[1] is not None)           # … with its reason

    assert delivered(bot, mark, a) == ["a1", "a2", "a3"]
    assert delivered(bot, mark, b) == ["b1", "b2", "b3"]
    assert delivered(bot, mark, c) == ["c1", "c1", "c2", "c3"]  # one duplicate: the late answer
    assert delivered(bot, mark, SR_CHAT) == ["s1", "s1", "s2", "s3"]  # the same
    assert delivered(bot, mark, blocked) == []
    assert [s[2] for s in await rows_to(bot, blocked)] == [
        "Forbidden: bot was blocked by the user", "unreachable", "unreachable"]
    # The card went through its faults and shows the latest state; the late edit's retry found
    # it already done ("not modified"): no edit failed.
    assert edits(bot, mark, DP_CHAT)[-1] == await card_now(bot, n, DP_CHAT)
    failed_edits = await bot.services.db.one(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'edit' AND failed_at IS NOT NULL")
    assert failed_edits is not None and failed_edits[0] == 0


# --- logs -----------------------------------------------------------------------------------------

async def test_a_handled_429_is_one_warning_line(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bot.api.fail_next("sendMessage", "Too Many Requests: retry after 30", 429,
                      parameters={"retry_after": 30}, predicate=to(SR_CHAT))
    await queue(bot, SR_CHAT, "reminder")
    await bot.settle()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    [line] = [r for r in caplog.records if "429" in r.getMessage()]
    assert line.levelno == logging.WARNING and "\n" not in line.getMessage()
    assert "wait 30 s" in line.getMessage()


# --- a working-group member blocks the bot ---------------------------------------------------------

NOTICE = ("⚠️ I can no longer write to Sophea: the bot was blocked or removed. Messages to it "
          "are stopped until it writes to me again or the chat is bound again.")


async def test_the_admins_are_told_once_when_a_working_group_member_blocks_the_bot(bot: Bot) -> None:
    await bot.say(bot.admin, bot.private(bot.admin), "/start")  # both wrote to the bot
    await bot.say(bot.wg, bot.private(bot.wg), "/start")
    bot.api.block(WG)  # Sophea, of the working group, blocks it
    mark = bot.api.mark()
    await queue(bot, WG, "first", "second")
    await bot.settle()
    await queue(bot, WG, "third")
    await bot.settle()
    assert delivered(bot, mark, ADMIN) == [NOTICE]
    assert delivered(bot, mark, WG_CHAT) == [NOTICE]
    assert [s[2] for s in await rows_to(bot, WG)] == [
        "Forbidden: bot was blocked by the user", "unreachable", "unreachable"]


# --- what a user is told when something fails -------------------------------------------------------

async def test_a_reply_refused_after_the_change_does_not_say_nothing_changed(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    n = await make_case(bot, unit=None)
    chat = bot.private(bot.wg)
    bot.api.fail_next("sendMessage", "Too Many Requests: retry after 5", 429,
                      parameters={"retry_after": 5}, predicate=to(WG))
    m = await bot.say(bot.wg, chat, f"/assign {n} pp-dp")
    assert (await bot.services.cases.get(n)).unit_key == "pp-dp"  # the change stands
    # The inbox tries the update again: the change is found made, and the user is told so.
    assert bot.texts_since(m, WG) == [f"Case <b>#{n}</b> assigned to Daun Penh.", ALREADY]
    assert [r.params["text"] for r in bot.sent_since(m, WG) if r.ok] == [ALREADY]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.levelno for r in caplog.records if "429" in r.getMessage()] == [logging.WARNING]


async def test_a_reply_refused_on_every_try_after_the_change_gets_the_honest_message(
    bot: Bot,
) -> None:
    n = await make_case(bot, unit=None)
    bot.api.fail_next("sendMessage", "Bad Gateway", 502, predicate=to(WG), times=MAX_ATTEMPTS)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-dp", timeout=30)
    assert (await bot.services.cases.get(n)).unit_key == "pp-dp"
    assert [r.params["text"] for r in bot.sent_since(m, WG) if r.ok] == [HONEST]


async def test_our_error_after_the_change_does_not_say_nothing_changed(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = await make_case(bot, unit=None)
    real = bot.services.cases.apply

    async def then_fails(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise RuntimeError("a bug after the commit")

    monkeypatch.setattr(bot.services.cases, "apply", then_fails)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-dp")
    assert (await bot.services.cases.get(n)).unit_key == "pp-dp"
    assert bot.texts_since(m, WG) == [ALREADY]  # tried again: the change is found made


async def test_our_error_before_any_change_says_nothing_changed(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = await make_case(bot, unit=None)

    async def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug before the change")

    monkeypatch.setattr(bot.services.cases, "apply", fails)
    m = await bot.say(bot.wg, bot.private(bot.wg), f"/assign {n} pp-dp")
    assert (await bot.services.cases.get(n)).unit_key is None
    assert bot.texts_since(m, WG) == [NOTHING_CHANGED]


async def test_a_press_whose_answer_fails_after_the_change_gets_the_honest_alert(bot: Bot) -> None:
    n = await make_case(bot)
    bot.api.fail_next("answerCallbackQuery", "Bad Gateway", 502,
                      predicate=lambda p: "accepted" in str(p.get("text")))
    m = await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
    assert (await bot.services.cases.get(n)).status == "in_progress"
    assert bot.answers_since(m)[-1] == ALREADY  # tried again: the change is found made
