"""Delivery under Telegram's limits and failures: the pace (30 a second, 1 a second per chat, 20 a
minute per group), 429 retry_after, 5xx and timeouts with backoff, 403 (unreachable, told once,
reachable again), and crashes between claiming, sending and recording a message. Every outbox row
ends sent (with Telegram's message id) or failed with its reason; none is lost or sent twice,
except the one resend allowed after a crash between sending and recording.

Tests assert behaviour, never wall-clock durations: the pace is checked on a clock that jumps over
the sender's waits (shared with the fake Bot API, which enforces Telegram's limits)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram.error import TimedOut

import bot.jobs.outbox as outbox_job
import tests.fakebotapi as fakebotapi
from bot.config import DeliverySettings
from bot.db import Database, from_db, to_db
from bot.domain.outbox import queue_text
from bot.jobs.outbox import MAX_ATTEMPTS
from bot.jobs.throttle import MARGIN, Throttle
from tests.conftest import DP_CHAT, OFFICIAL, SR_CHAT, WG_CHAT, Clock
from tests.fakebotapi import FakeBotAPI
from tests.harness import Bot, running_bot
from tests.test_e2e_inputs import make_case

BUTTONS = [[("Update status", "x:1")]]
REAL_LIMITS = {"overall_per_second": 30, "per_chat_per_second": 1, "group_per_minute": 20,
               "notice_seconds": 0}


# --- the throttle on its own, on a clock moved by hand -------------------------------------------

class Ticks:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_throttle_one_a_second_per_chat() -> None:
    ticks = Ticks()
    th = Throttle(DeliverySettings(), clock=ticks)
    gap = 1.0 + MARGIN  # Telegram's second, and our margin on it
    assert th.take(OFFICIAL) == 0
    assert th.take(OFFICIAL) == pytest.approx(gap)  # refused: nothing reserved
    assert th.ready_in(OFFICIAL + 1) == pytest.approx(gap / 30)  # another chat: only the spacing
    ticks.t += 0.5
    assert th.ready_in(OFFICIAL + 1) == 0
    assert th.ready_in(OFFICIAL) == pytest.approx(gap - 0.5)
    ticks.t += gap - 0.5 + 1e-9
    assert th.take(OFFICIAL) == 0


def test_throttle_spaces_messages_within_thirty_a_second() -> None:
    ticks = Ticks()
    th = Throttle(DeliverySettings(), clock=ticks)
    sent: list[float] = []
    for chat in range(1, 301):  # as fast as allowed, each to its own chat
        while (wait := th.take(chat)) > 0:
            ticks.t += wait + 1e-9
        sent.append(ticks.t)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= (1.0 + MARGIN) / 30  # evenly spaced: a second's allowance never leaves at once
    assert all(sent[i + 30] - sent[i] > 1.0 for i in range(len(sent) - 30))  # 30 in any second
    assert 300 / (sent[-1] - sent[0]) > 0.95 * 30  # and the allowance is used


def test_throttle_twenty_a_minute_per_group() -> None:
    ticks = Ticks()
    th = Throttle(DeliverySettings(), clock=ticks)
    gap = 1.0 + MARGIN
    for _ in range(20):
        assert th.take(DP_CHAT) == 0
        ticks.t += gap + 1e-9  # one a second per chat (and the margin)
    # the 21st waits for the first to age out of the minute (and its margin)
    assert th.ready_in(DP_CHAT) == pytest.approx(60.0 * (1 + MARGIN) - 20 * gap, abs=1e-6)
    assert th.ready_in(SR_CHAT) == 0                     # the limit is per group
    assert th.ready_in(OFFICIAL) == 0                    # private chats have no minute limit
    ticks.t = 1000.0 + 60.0 * (1 + MARGIN) + 1e-9
    assert th.take(DP_CHAT) == 0


# --- the pace end to end: a clock that jumps over waits ------------------------------------------

class Warp:
    """A clock that stands still except when the sender waits: then it jumps over the wait (a
    little past it, as a real sleep ends). The sender's throttle and sleeps and the fake Bot API's
    rate limits all read it, so Telegram's limits are enforced exactly, without the test waiting
    minutes and whatever the speed of the machine."""

    SLACK = 0.001

    def __init__(self) -> None:
        self.now = 10_000.0
        self.in_flight = 0  # Bot API calls under way: the network takes no time on this clock

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float, result: Any = None) -> Any:
        # Sleepers waiting side by side do not add up: each wakes at its own time. The clock does
        # not move while a call is under way, so each call reaches Telegram when it was sent.
        wake = self.now + max(0.0, seconds) + self.SLACK
        while self.in_flight:
            await asyncio.sleep(0.0005)
        self.now = max(self.now, wake)
        return await asyncio.sleep(0, result)

    def bot(self, real: Any) -> Any:
        """The sender's bot, with its calls counted while under way."""
        warp = self

        class Counted:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(real, name)
                if not asyncio.iscoroutinefunction(attr):
                    return attr

                async def call(*args: Any, **kwargs: Any) -> Any:
                    warp.in_flight += 1
                    try:
                        return await attr(*args, **kwargs)
                    finally:
                        warp.in_flight -= 1

                return call

        return Counted()


class WarpedAsyncio:
    """``asyncio`` for the sender, with the warped sleep."""

    def __init__(self, warp: Warp) -> None:
        self.sleep = warp.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def warp_rate_limits(api: FakeBotAPI, warp: Warp, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Make the fake's rate limits (only them) read the warped clock. Returns the (chat, time) of
    every call they let through."""
    local = threading.local()
    real = fakebotapi.time

    class RateTime:
        @staticmethod
        def monotonic() -> float:
            return warp.now if getattr(local, "warped", False) else real.monotonic()

        @staticmethod
        def time() -> float:
            return real.time()

    def warped(fn: Callable[[], Any]) -> Any:
        local.warped = True
        try:
            return fn()
        finally:
            local.warped = False

    check = api._check_rate
    passed: list[tuple[int, float]] = []

    def check_rate(method: str, params: dict[str, Any]) -> Callable[[], None] | None:
        commit = warped(lambda: check(method, params))
        if commit is None:
            return None

        def commit_and_note() -> None:
            warped(commit)
            passed.append((int(params.get("chat_id", 0)), warp.now))

        return commit_and_note

    monkeypatch.setattr(fakebotapi, "time", RateTime())
    monkeypatch.setattr(api, "_check_rate", check_rate)
    return passed


@pytest.fixture
def rate_limited_api() -> Iterator[FakeBotAPI]:
    api = FakeBotAPI(rate_limits=True).start()
    try:
        yield api
    finally:
        api.stop()


async def test_a_burst_keeps_within_telegrams_limits(
    tmp_path: Path, clock: Clock, rate_limited_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = rate_limited_api
    async with running_bot(tmp_path, clock, api=api, delivery=REAL_LIMITS) as bot:
        assert bot.settings.delivery == DeliverySettings(30, 1, 20, 0)  # the override won
        warp = Warp()
        passed = warp_rate_limits(api, warp, monkeypatch)
        monkeypatch.setattr(outbox_job, "asyncio", WarpedAsyncio(warp))
        sender = bot.services.sender
        sender.throttle = Throttle(bot.settings.delivery, clock=warp.monotonic)
        monkeypatch.setattr(sender, "bot", warp.bot(sender.bot))
        people = [700_001 + i for i in range(40)]
        async with bot.services.db.transaction() as conn:  # queued at once, delivered below
            for i in range(45):  # with buttons, as reminders are: each its own message
                queue_text(conn, DP_CHAT, f"group message {i:02d}", clock(), buttons=BUTTONS)
                if i < len(people):
                    queue_text(conn, people[i], f"private message {i:02d}", clock(),
                               buttons=BUTTONS)
        mark = api.mark()
        await sender.drain()

        assert api.count_429 == 0
        rows = await bot.services.db.all(
            "SELECT chat_id, text, sent_at, failed_at, message_id FROM outbox WHERE kind = 'text'"
            " AND text LIKE '% message %' ORDER BY id")
        assert len(rows) == 85 and all(r[2] and r[3] is None and r[4] for r in rows)
        calls = [c for c in api.calls[mark:] if c.method == "sendMessage" and c.error is None]
        assert len(calls) == 85  # each message once
        group = [c for c in calls if int(c.params["chat_id"]) == DP_CHAT]
        assert [c.params["text"] for c in group] == [f"group message {i:02d}" for i in range(45)]
        recorded = {r[1]: r[4] for r in rows}
        assert all(recorded[c.params["text"]] == c.result["message_id"] for c in calls)  # ids kept
        assert sorted(int(c.params["chat_id"]) for c in calls if int(c.params["chat_id"]) > 0) == people
        # On the warped clock: one a second and at most 20 a minute to the group, 30 a second.
        stamps = [t for chat, t in passed if chat == DP_CHAT]
        assert len(stamps) == 45
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(stamps))
        assert all(stamps[i + 20] - stamps[i] >= 60.0 for i in range(len(stamps) - 20))
        every = [t for _chat, t in passed]
        assert all(every[i + 30] - every[i] >= 1.0 for i in range(len(every) - 30))
        assert stamps[-1] - stamps[0] >= 120.0  # the sender did wait for the group's minutes


# --- failures ----------------------------------------------------------------------------------

async def queue(bot: Bot, chat_id: int, *texts: str, plain: bool = False) -> None:
    """Texts to a chat, queued together. With buttons (as reminders have) unless ``plain``: plain
    texts queued together share a message (see the tests of joining below)."""
    async with bot.services.db.transaction() as conn:
        for text in texts:
            queue_text(conn, chat_id, text, bot.clock(), buttons=None if plain else BUTTONS)


async def rows_to(bot: Bot, chat_id: int) -> list[tuple[str, bool, str | None, str | None, int]]:
    """(text, sent, failed reason, next attempt, attempts) of the texts to a chat."""
    rows = await bot.services.db.all(
        "SELECT text, sent_at, failed_at, last_error, next_attempt_at, attempts FROM outbox"
        " WHERE kind = 'text' AND chat_id = ? ORDER BY id", (chat_id,))
    return [(r[0], r[1] is not None, r[3] if r[2] else None, r[4], r[5]) for r in rows]


def delivered(bot: Bot, mark: int, chat_id: int) -> list[str]:
    return [str(c.params["text"]) for c in bot.api.calls[mark:]
            if c.method == "sendMessage" and c.error is None and int(c.params["chat_id"]) == chat_id]


def attempted(bot: Bot, mark: int, chat_id: int) -> int:
    return sum(1 for c in bot.api.calls[mark:]
               if c.method == "sendMessage" and int(c.params["chat_id"]) == chat_id)


async def test_retry_after_holds_the_chat_and_keeps_its_order(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Too Many Requests: retry after 30", 429,
                      parameters={"retry_after": 30}, predicate=lambda p: int(p["chat_id"]) == SR_CHAT)
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "first", "second")
    await queue(bot, WG_CHAT, "other chat")
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == []  # "second" waits behind "first"
    assert delivered(bot, mark, WG_CHAT) == ["other chat"]
    first = (await rows_to(bot, SR_CHAT))[0]
    assert from_db(first[3]) == bot.clock() + timedelta(seconds=30) and first[4] == 0
    bot.clock.advance(seconds=29)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == []
    bot.clock.advance(seconds=1)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == ["first", "second"]


async def test_server_errors_back_off_then_deliver_in_order(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Internal Server Error", 500, times=2,
                      predicate=lambda p: int(p["chat_id"]) == SR_CHAT)
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "first", "second", "third")
    await bot.settle()
    state = await rows_to(bot, SR_CHAT)
    assert [(s[1], s[4]) for s in state] == [(False, 1), (False, 0), (False, 0)]
    assert from_db(state[0][3]) == bot.clock() + timedelta(seconds=5)  # backoff: 5 s, then 20 s
    bot.clock.advance(seconds=5)
    await bot.settle()
    state = await rows_to(bot, SR_CHAT)
    assert [(s[1], s[4]) for s in state] == [(False, 2), (False, 0), (False, 0)]
    assert from_db(state[0][3]) == bot.clock() + timedelta(seconds=20)
    bot.clock.advance(seconds=20)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == ["first", "second", "third"]
    assert attempted(bot, mark, SR_CHAT) == 5
    assert [(s[1], s[2]) for s in await rows_to(bot, SR_CHAT)] == [(True, None)] * 3


async def test_a_timeout_is_retried_and_sent_once(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = bot.services.sender

    class TimesOutOnce:
        """The bot, except that the first send times out before reaching Telegram."""

        def __init__(self, real: Any) -> None:
            self.real, self.failures = real, 1

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        async def send_message(self, *args: Any, **kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise TimedOut()
            return await self.real.send_message(*args, **kwargs)

    monkeypatch.setattr(sender, "bot", TimesOutOnce(sender.bot))
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "after a timeout")
    await bot.settle()
    [(_text, sent, failed, next_at, attempts)] = await rows_to(bot, SR_CHAT)
    assert not sent and failed is None and attempts == 1
    assert from_db(next_at) == bot.clock() + timedelta(seconds=5)
    bot.clock.advance(seconds=5)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == ["after a timeout"]
    assert [(s[1], s[4]) for s in await rows_to(bot, SR_CHAT)] == [(True, 2)]


async def test_a_message_that_keeps_failing_ends_failed_with_its_reason(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Bad Gateway", 502, times=MAX_ATTEMPTS,
                      predicate=lambda p: int(p["chat_id"]) == SR_CHAT)
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "doomed", "behind it")
    await bot.settle()
    for _ in range(MAX_ATTEMPTS):
        bot.clock.advance(minutes=30)  # past any backoff
        await bot.settle()
    state = await rows_to(bot, SR_CHAT)
    assert state[0][1] is False and state[0][2] is not None and "Bad Gateway" in state[0][2]
    assert state[0][4] == MAX_ATTEMPTS
    assert state[1][1] is True  # the next message went once the first had ended
    assert delivered(bot, mark, SR_CHAT) == ["behind it"]
    assert attempted(bot, mark, SR_CHAT) == MAX_ATTEMPTS + 1


async def test_a_blocked_person_is_marked_unreachable_once_and_reachable_again(bot: Bot) -> None:
    private = bot.private(bot.official)
    await bot.say(bot.official, private, "/whoami")  # Dara writes to the bot privately
    bot.api.block(OFFICIAL)
    mark = bot.api.mark()
    await queue(bot, OFFICIAL, "first", "second", "third")
    await bot.settle()
    state = await rows_to(bot, OFFICIAL)
    assert [s[2] for s in state] == ["Forbidden: bot was blocked by the user", "unreachable", "unreachable"]
    assert attempted(bot, mark, OFFICIAL) == 1  # no call for the rest
    assert await bot.services.outbox.is_unreachable(OFFICIAL)
    notice = ("⚠️ I can no longer write to Dara: the bot was blocked or removed. Messages to it are "
              "stopped until it writes to me again or the chat is bound again.")
    assert delivered(bot, mark, WG_CHAT) == [notice]
    # Reminders no longer go to her privately but to her unit's chat.
    assert not await bot.services.people.has_private_chat(OFFICIAL)

    await queue(bot, OFFICIAL, "fourth")
    await bot.settle()
    assert (await rows_to(bot, OFFICIAL))[-1][2] == "unreachable"
    assert attempted(bot, mark, OFFICIAL) == 1 and delivered(bot, mark, WG_CHAT) == [notice]  # once

    bot.api.unblock(OFFICIAL)
    await bot.say(bot.official, private, "/whoami")  # she writes again: reachable again
    assert not await bot.services.outbox.is_unreachable(OFFICIAL)
    assert await bot.services.people.has_private_chat(OFFICIAL)
    mark = bot.api.mark()
    await queue(bot, OFFICIAL, "fifth")
    await bot.settle()
    assert delivered(bot, mark, OFFICIAL) == ["fifth"]
    assert (await rows_to(bot, OFFICIAL))[-1][1] is True


async def test_a_group_that_removed_the_bot_is_reachable_once_bound_again(bot: Bot) -> None:
    bot.api.block(DP_CHAT)
    mark = bot.api.mark()
    await make_case(bot)
    await queue(bot, DP_CHAT, "after the card")
    await bot.settle()
    failed = await bot.services.db.all(
        "SELECT kind, last_error FROM outbox WHERE chat_id = ? AND failed_at IS NOT NULL ORDER BY id",
        (DP_CHAT,))
    assert [tuple(r) for r in failed] == [
        ("card", "Forbidden: bot was kicked from the supergroup chat"), ("text", "unreachable")]
    assert [t for t in delivered(bot, mark, WG_CHAT) if "can no longer write to" in t] == [
        "⚠️ I can no longer write to Daun Penh: the bot was blocked or removed. Messages to it are "
        "stopped until it writes to me again or the chat is bound again."]
    bot.api.unblock(DP_CHAT)
    await bot.say(bot.admin, bot.dp_chat, "/bindchat pp-dp")
    assert not await bot.services.outbox.is_unreachable(DP_CHAT)
    mark = bot.api.mark()
    await queue(bot, DP_CHAT, "welcome back")
    await bot.settle()
    assert delivered(bot, mark, DP_CHAT) == ["welcome back"]


async def test_every_row_ends_sent_or_failed(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mix of Telegram's answers; in the end nothing is pending, nothing went twice."""
    api = bot.api
    api.fail_next("sendMessage", "Too Many Requests: retry after 7", 429, parameters={"retry_after": 7},
                  predicate=lambda p: int(p["chat_id"]) == SR_CHAT)
    api.fail_next("sendMessage", "Internal Server Error", 500, times=3,
                  predicate=lambda p: int(p["chat_id"]) == DP_CHAT)
    api.fail_next("sendMessage", "Bad Request: can't parse entities", 400,
                  predicate=lambda p: p.get("text") == "malformed")
    api.block(OFFICIAL)
    mark = api.mark()
    texts = {SR_CHAT: ["sr 1", "sr 2"], DP_CHAT: ["dp 1", "malformed", "dp 2"], OFFICIAL: ["dara 1", "dara 2"],
             WG_CHAT: ["wg 1"]}
    for chat, items in texts.items():
        await queue(bot, chat, *items)
    for _ in range(10):
        await bot.settle()
        bot.clock.advance(minutes=2)
    pending = await bot.services.db.one(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")
    assert pending is not None and pending[0] == 0
    assert delivered(bot, mark, SR_CHAT) == ["sr 1", "sr 2"]
    assert delivered(bot, mark, DP_CHAT) == ["dp 1", "dp 2"]
    assert delivered(bot, mark, OFFICIAL) == []
    assert [s[2] for s in await rows_to(bot, DP_CHAT)] == [None, "Can't parse entities", None]
    assert [s[2] for s in await rows_to(bot, OFFICIAL)] == [
        "Forbidden: bot was blocked by the user", "unreachable"]
    assert delivered(bot, mark, WG_CHAT)[0] == "wg 1"
    rows = await bot.services.db.all("SELECT message_id FROM outbox WHERE sent_at IS NOT NULL AND kind = 'text'")
    assert all(r[0] for r in rows)


# --- plain texts queued together share a message ----------------------------------------------

async def sent_ids(bot: Bot, chat_id: int) -> list[int | None]:
    rows = await bot.services.db.all(
        "SELECT message_id FROM outbox WHERE kind = 'text' AND chat_id = ? ORDER BY id", (chat_id,))
    return [r[0] for r in rows]


async def test_plain_texts_queued_together_go_as_one_message(bot: Bot) -> None:
    """A burst of one-line notices to the working group (20 messages a minute) is one message;
    a text with buttons goes on its own, and the order is kept."""
    mark = bot.api.mark()
    lines = [f"#{i} accepted" for i in range(1, 6)]
    await queue(bot, WG_CHAT, *lines[:2], plain=True)
    await queue(bot, WG_CHAT, "reminder with buttons")
    await queue(bot, WG_CHAT, *lines[2:], plain=True)
    await bot.settle()
    assert delivered(bot, mark, WG_CHAT) == ["#1 accepted\n#2 accepted", "reminder with buttons",
                                             "#3 accepted\n#4 accepted\n#5 accepted"]
    ids = await sent_ids(bot, WG_CHAT)
    assert all(ids) and ids[0] == ids[1] and ids[1] != ids[2] != ids[3] and ids[3] == ids[4] == ids[5]
    assert [s[1] for s in await rows_to(bot, WG_CHAT)] == [True] * 6


async def test_joined_texts_stay_within_one_message(bot: Bot) -> None:
    mark = bot.api.mark()
    lines = [f"{i:03d} " + "x" * 996 for i in range(9)]  # 1,000 characters each
    await queue(bot, WG_CHAT, *lines, plain=True)
    await bot.settle()
    messages = delivered(bot, mark, WG_CHAT)
    assert "\n".join(messages).split("\n") == lines  # each text whole, in order
    assert [len(m.split("\n")) for m in messages] == [3, 3, 3]  # as many as fit in 4,096, less room
    assert [s[1] for s in await rows_to(bot, WG_CHAT)] == [True] * 9


async def test_a_joined_message_refused_sends_each_text_alone(bot: Bot) -> None:
    """One malformed text does not take the others down with it."""
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "first", "<b>malformed", "third", plain=True)
    await bot.settle()
    bot.clock.advance(seconds=1)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == ["first", "third"]
    state = await rows_to(bot, SR_CHAT)
    assert [(s[1], s[2] is not None) for s in state] == [(True, False), (False, True), (True, False)]
    assert "parse" in (state[1][2] or "").lower()


async def test_a_joined_message_held_by_retry_after_keeps_all_its_texts(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Too Many Requests: retry after 10", 429,
                      parameters={"retry_after": 10}, predicate=lambda p: int(p["chat_id"]) == SR_CHAT)
    mark = bot.api.mark()
    await queue(bot, SR_CHAT, "one", "two", plain=True)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == []
    assert [(s[1], s[4]) for s in await rows_to(bot, SR_CHAT)] == [(False, 0), (False, 0)]
    bot.clock.advance(seconds=10)
    await bot.settle()
    assert delivered(bot, mark, SR_CHAT) == ["one\ntwo"]
    assert [s[1] for s in await rows_to(bot, SR_CHAT)] == [True, True]


def fast_delivery(notice_seconds: float) -> dict[str, float]:
    return {"overall_per_second": 10000, "per_chat_per_second": 10000,
            "group_per_minute": 100000, "notice_seconds": notice_seconds}


@asynccontextmanager
async def drained_by_hand(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
                          notice_seconds: float) -> AsyncIterator[tuple[Bot, Ticks]]:
    """A bot whose sender is drained by the test, its notices timed on a clock moved by hand."""
    async with running_bot(tmp_path, clock, delivery=fast_delivery(notice_seconds)) as bot:
        await bot.services.sender.stop()
        ticks = Ticks()
        monkeypatch.setattr(bot.services.sender, "monotonic", ticks)
        yield bot, ticks


async def test_notices_wait_for_the_rest_of_their_burst(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``notice_seconds``, a notice waits that long from when the sender first saw it, so
    that the notices of a burst go as one message; texts with buttons do not wait."""
    async with drained_by_hand(tmp_path, clock, monkeypatch, 2) as (bot, ticks):
        sender = bot.services.sender
        mark = bot.api.mark()
        await queue(bot, WG_CHAT, "#1 accepted", plain=True)
        await queue(bot, SR_CHAT, "reminder with buttons")
        await sender.drain()
        assert delivered(bot, mark, SR_CHAT) == ["reminder with buttons"]
        assert delivered(bot, mark, WG_CHAT) == []
        assert sender._release == pytest.approx(ticks.t + 2)  # the sender wakes itself then
        ticks.t += 1.5
        await queue(bot, WG_CHAT, "#2 accepted", "#3 resolved", plain=True)
        await sender.drain()
        assert delivered(bot, mark, WG_CHAT) == []
        ticks.t += 0.5
        await sender.drain()
        assert delivered(bot, mark, WG_CHAT) == ["#1 accepted\n#2 accepted\n#3 resolved"]
        assert [s[1] for s in await rows_to(bot, WG_CHAT)] == [True] * 3


async def test_a_notice_does_not_hold_up_a_card_behind_it(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with drained_by_hand(tmp_path, clock, monkeypatch, 60) as (bot, _ticks):  # time stands still
        mark = bot.api.mark()
        await queue(bot, SR_CHAT, "#1 assigned to you", "#2 assigned to you", plain=True)
        await bot.services.sender.drain()
        assert delivered(bot, mark, SR_CHAT) == []
        await queue(bot, SR_CHAT, "reminder with buttons")
        await bot.services.sender.drain()
        assert delivered(bot, mark, SR_CHAT) == ["#1 assigned to you\n#2 assigned to you",
                                                 "reminder with buttons"]


async def test_a_full_message_of_notices_does_not_wait(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with drained_by_hand(tmp_path, clock, monkeypatch, 60) as (bot, _ticks):  # time stands still
        mark = bot.api.mark()
        lines = [f"{i:03d} " + "x" * 996 for i in range(9)]  # three fill a message
        await queue(bot, WG_CHAT, *lines, plain=True)
        await bot.services.sender.drain()
        # the two full messages go at once; the last three could still take more, so they wait
        assert delivered(bot, mark, WG_CHAT) == ["\n".join(lines[0:3]), "\n".join(lines[3:6])]
        assert [s[1] for s in await rows_to(bot, WG_CHAT)] == [True] * 6 + [False] * 3


async def test_a_held_notice_goes_without_another_wake(tmp_path: Path, clock: Clock) -> None:
    """The running sender wakes by itself when a notice's wait ends (nothing else happens)."""
    async with running_bot(tmp_path, clock, delivery=fast_delivery(0.2)) as bot:
        mark = bot.api.mark()
        await queue(bot, WG_CHAT, "#1 accepted", "#2 accepted", plain=True)
        bot.services.sender.wake()
        for _ in range(500):  # up to 5 s; it takes about 0.2 s
            if delivered(bot, mark, WG_CHAT):
                break
            await asyncio.sleep(0.01)
        assert delivered(bot, mark, WG_CHAT) == ["#1 accepted\n#2 accepted"]


# --- crashes ------------------------------------------------------------------------------------

async def outbox_row(db_path: Path, text: str) -> tuple[Any, ...]:
    db = await Database.open(db_path)
    try:
        row = await db.one("SELECT sending_at, sent_at, failed_at, message_id FROM outbox WHERE text = ?",
                           (text,))
        assert row is not None
        return tuple(row)
    finally:
        await db.close()


async def test_a_row_left_sending_by_a_crash_is_sent_once_on_start(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        db_path = bot.settings.database_path
        first_api = bot.api
        await bot.services.sender.stop()  # the process dies with the row claimed, not yet sent
        async with bot.services.db.transaction() as conn:
            queue_text(conn, WG_CHAT, "Owed before the crash", clock())
            conn.add("UPDATE outbox SET sending_at = ? WHERE text = ?",
                     (to_db(clock()), "Owed before the crash"))
    sending_at, sent_at, _failed, _mid = await outbox_row(db_path, "Owed before the crash")
    assert sending_at is not None and sent_at is None
    assert "Owed before the crash" not in first_api.sent_texts(WG_CHAT)
    async with running_bot(tmp_path, clock) as bot:
        await bot.settle()
        assert bot.api.sent_texts(WG_CHAT).count("Owed before the crash") == 1
    _sending, sent_at, failed_at, message_id = await outbox_row(db_path, "Owed before the crash")
    assert sent_at is not None and failed_at is None and message_id


async def test_a_crash_between_sending_and_recording_resends_at_most_once(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Sent just before the crash"
    async with running_bot(tmp_path, clock) as bot:
        db_path = bot.settings.database_path
        first_api = bot.api
        await bot.services.sender.stop()

        async def power_cut(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("power cut")

        monkeypatch.setattr(bot.services.outbox, "mark_sent", power_cut)
        await queue(bot, WG_CHAT, text)
        with pytest.raises(RuntimeError, match="power cut"):
            await bot.services.sender.drain()
    assert first_api.sent_texts(WG_CHAT).count(text) == 1  # Telegram has it
    sending_at, sent_at, _failed, _mid = await outbox_row(db_path, text)
    assert sending_at is not None and sent_at is None      # but it was never recorded
    async with running_bot(tmp_path, clock) as bot:
        await bot.settle()
        assert bot.api.sent_texts(WG_CHAT).count(text) == 1  # the one resend allowed
        await bot.settle()
        bot.clock.advance(minutes=5)
        await bot.settle()
        assert bot.api.sent_texts(WG_CHAT).count(text) == 1
    _sending, sent_at, failed_at, message_id = await outbox_row(db_path, text)
    assert sent_at is not None and failed_at is None and message_id
