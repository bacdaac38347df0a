"""The sender's lanes: one chat waiting on its limit never holds up another chat; a card's
pending edits collapse into one showing the latest state; a stop returns while chats wait on
their limits and leaves nothing "sending"; a restart picks up what was left, once.

Order is asserted by the fake Bot API's record of calls, never by elapsed time."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.jobs.outbox as outbox_job
from bot.config import DeliverySettings
from bot.db import Database, to_db
from bot.domain.cases import Actor, Change
from bot.domain.outbox import queue_text
from bot.domain.rules import Action
from bot.i18n import use_locale
from bot.jobs.throttle import MARGIN, Throttle
from tests.conftest import DP_CHAT, OFFICIAL, WG, WG_CHAT, Clock
from tests.fakebotapi import FakeBotAPI
from tests.harness import Bot, running_bot
from tests.test_delivery_limits import (
    BUTTONS,
    REAL_LIMITS,
    Ticks,
    Warp,
    WarpedAsyncio,
    delivered,
    warp_rate_limits,
)
from tests.test_e2e_inputs import make_case

SOPHEA = Actor(WG, "Sophea", WG_CHAT)
DARA = Actor(OFFICIAL, "Dara", DP_CHAT)


def edits(bot: Bot, mark: int, chat_id: int) -> list[str]:
    return [str(c.params["text"]) for c in bot.api.calls[mark:]
            if c.method == "editMessageText" and c.ok and int(c.params["chat_id"]) == chat_id]


async def card_now(bot: Bot, case_id: int, chat_id: int) -> str:
    """The card as the sender draws it now for that chat: the latest state."""
    ref = next(r for r in await bot.services.outbox.cards(case_id) if r.chat_id == chat_id)
    sender = bot.services.sender
    with use_locale(await bot.services.units.language_of(chat_id)):
        text, _buttons = sender._render(await bot.services.cases.get(case_id), ref.unit_id)
    return text


async def pending_edits(bot: Bot) -> int:
    row = await bot.services.db.one(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'edit' AND sent_at IS NULL AND failed_at IS NULL")
    assert row is not None
    return int(row[0])


# --- the throttle counts a call held up on its way as sent later ----------------------------------

def test_a_call_answered_late_counts_as_sent_that_much_later() -> None:
    """Telegram counts a message when it arrives. A call answered 40 ms after it left, when the
    quickest lately took 2 ms, may have arrived up to 38 ms late: the limits count it from then."""
    ticks = Ticks()
    th = Throttle(DeliverySettings(), clock=ticks)
    for chat in range(1, 6):  # quick calls
        assert th.take(chat) == 0
        ticks.t += 0.002
        th.done(chat)
        ticks.t += 0.1
    left = ticks.t
    assert th.take(OFFICIAL) == 0
    ticks.t += 0.040
    th.done(OFFICIAL)
    assert th.chat_ready_at(OFFICIAL) == pytest.approx(left + 0.038 + 1.0 * (1 + MARGIN))
    assert th.overall_ready_in() == 0  # our even pace runs from when it left
    ticks.t += 1.0
    assert th.take(OFFICIAL) > 0  # Telegram's second since it arrived is not over yet


# --- a card's edits collapse ----------------------------------------------------------------------

async def test_fifty_changes_to_a_case_make_one_edit_showing_the_last(bot: Bot) -> None:
    n = await make_case(bot)  # its card is in Daun Penh's chat
    before = await card_now(bot, n, DP_CHAT)
    await bot.services.sender.stop()  # the changes come faster than the sender: they pile up
    for i in range(49):
        await bot.services.cases.apply(n, Action.NOTE, SOPHEA, Change(text=f"note {i:02d}"),
                                       bot.clock())
    await bot.services.cases.apply(n, Action.ACCEPT, DARA, Change(), bot.clock())
    assert await pending_edits(bot) == 1  # fifty changes, one edit waiting for the card

    mark = bot.api.mark()
    await bot.settle()
    latest = await card_now(bot, n, DP_CHAT)
    assert latest != before
    assert edits(bot, mark, DP_CHAT) == [latest]  # one edit, and it shows the acceptance
    notes = [t for t in delivered(bot, mark, DP_CHAT) for t in t.split("\n") if "note " in t]
    assert notes == sorted(notes) and len(notes) == len(set(notes))  # notices in order, once


async def test_a_change_while_its_card_is_being_edited_gets_an_edit_of_its_own(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The edit taken in hand was drawn before the change: the change does not join it but
    queues the next one, so the card ends showing it."""
    n = await make_case(bot)
    sender = bot.services.sender
    await sender.stop()
    real = sender.bot

    class ChangesMidEdit:
        def __init__(self) -> None:
            self.first = True

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def edit_message_text(self, *args: Any, **kwargs: Any) -> Any:
            if self.first:
                self.first = False
                await bot.services.cases.apply(n, Action.ACCEPT, DARA, Change(), bot.clock())
            return await real.edit_message_text(*args, **kwargs)

    monkeypatch.setattr(sender, "bot", ChangesMidEdit())
    await bot.services.cases.apply(n, Action.NOTE, SOPHEA, Change(text="a note"), bot.clock())
    mark = bot.api.mark()
    await bot.settle()
    shown = edits(bot, mark, DP_CHAT)
    assert len(shown) == 2 and shown[-1] == await card_now(bot, n, DP_CHAT)
    assert await pending_edits(bot) == 0


async def test_a_change_while_its_card_is_being_posted_is_not_lost(
    bot: Bot, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The card was drawn before the change and recorded after it: the change found no card to
    edit, so recording the card queues the edit."""
    sender = bot.services.sender
    real = sender.bot
    changed: list[int] = []

    class ChangesMidPost:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
            message = await real.send_message(chat_id, text, **kwargs)
            card = re.match(r"<b>#(\d+)</b> · ", text)
            if chat_id == DP_CHAT and card and not changed:  # the card, now out
                changed.append(int(card[1]))
                await bot.services.cases.apply(changed[0], Action.ACCEPT, DARA, Change(),
                                               bot.clock())
            return message

    monkeypatch.setattr(sender, "bot", ChangesMidPost())
    n = await make_case(bot)
    assert changed == [n]
    [edit] = [c for c in bot.api.calls if c.method == "editMessageText" and c.ok]
    assert edit.params["text"] == await card_now(bot, n, DP_CHAT)
    assert "Accept" not in str(bot.api.buttons(bot.card(DP_CHAT, n)))


# --- one chat waiting never holds up another -----------------------------------------------------

async def test_a_group_waiting_on_its_minute_does_not_hold_up_other_chats(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stall: Daun Penh's chat has used its 20 messages of the minute with 40 more queued.
    A private message and the group's card edit queued then: the private message goes before
    the group's next message (and before its card edit, which waits on the group's limit too);
    the edit goes before the group's queued notices; everything arrives, in order, without 429."""
    api = FakeBotAPI(rate_limits=True).start()
    try:
        async with running_bot(tmp_path, clock, api=api, delivery=REAL_LIMITS) as bot:
            warp = Warp()
            warp_rate_limits(api, warp, monkeypatch)
            monkeypatch.setattr(outbox_job, "asyncio", WarpedAsyncio(warp))
            sender = bot.services.sender
            sender.throttle = Throttle(bot.settings.delivery, clock=warp.monotonic)
            counted = warp.bot(sender.bot)
            n = await make_case(bot)
            private = 700_001
            fired: list[bool] = []

            class WhenTheGroupIsFull:
                """Once the group's minute is used up: a change to the case (its card is in
                the group) and a private message, as people keep working meanwhile."""

                def __getattr__(self, name: str) -> Any:
                    return getattr(counted, name)

                async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
                    message = await counted.send_message(chat_id, text, **kwargs)
                    window = sender.throttle._groups.get(DP_CHAT) or ()
                    if chat_id == DP_CHAT and len(window) >= 20 and not fired:
                        fired.append(True)
                        await bot.services.cases.apply(n, Action.ACCEPT, DARA, Change(),
                                                       bot.clock())
                        async with bot.services.db.transaction() as conn:
                            queue_text(conn, private, "private while the group waits",
                                       bot.clock(), buttons=BUTTONS)
                        sender.wake()
                    return message

            monkeypatch.setattr(sender, "bot", WhenTheGroupIsFull())
            async with bot.services.db.transaction() as conn:
                for i in range(45):
                    queue_text(conn, DP_CHAT, f"group message {i:02d}", bot.clock(), buttons=BUTTONS)
            mark = api.mark()
            await bot.settle()

            assert fired and api.count_429 == 0
            calls = [c for c in api.calls[mark:] if c.ok and c.method in (
                "sendMessage", "editMessageText")]
            group = [i for i, c in enumerate(calls)
                     if c.method == "sendMessage" and int(c.params["chat_id"]) == DP_CHAT]
            [private_at] = [i for i, c in enumerate(calls) if int(c.params["chat_id"]) == private]
            [edit_at] = [i for i, c in enumerate(calls) if c.method == "editMessageText"]
            sent_before = sum(1 for i in group if i < private_at)
            assert sent_before < 45                     # before the group's backlog drained,
            assert private_at < group[sent_before]      # before the group's next message,
            assert private_at < edit_at                 # and before the group's card edit
            assert edit_at < group[-1]                  # which did not wait for the backlog
            assert [calls[i].params["text"] for i in group] == [
                f"group message {i:02d}" for i in range(45)]
            assert calls[edit_at].params["text"] == await card_now(bot, n, DP_CHAT)
            assert await bot.services.outbox.pending() == 0
    finally:
        api.stop()


async def test_a_message_whose_wait_ends_while_a_group_waits_goes_before_the_group(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the group's minute is used up, a person's message backing off becomes due 10 s
    later, with nothing else happening: it goes then (on the warped clock), not when the group's
    next message may."""
    api = FakeBotAPI(rate_limits=True).start()
    try:
        async with running_bot(tmp_path, clock, api=api, delivery=REAL_LIMITS) as bot:
            warp = Warp()
            passed = warp_rate_limits(api, warp, monkeypatch)
            monkeypatch.setattr(outbox_job, "asyncio", WarpedAsyncio(warp))
            sender = bot.services.sender
            sender.throttle = Throttle(bot.settings.delivery, clock=warp.monotonic)
            start, t0 = clock(), warp.now
            monkeypatch.setattr(sender, "clock", lambda: start + timedelta(seconds=warp.now - t0))
            counted = warp.bot(sender.bot)
            due: list[float] = []

            class WhenTheGroupIsFull:
                def __getattr__(self, name: str) -> Any:
                    return getattr(counted, name)

                async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
                    message = await counted.send_message(chat_id, text, **kwargs)
                    window = sender.throttle._groups.get(DP_CHAT) or ()
                    if chat_id == DP_CHAT and len(window) >= 20 and not due:
                        due.append(warp.now + 10)
                        await bot.services.db.write(  # no wake: nothing else happens
                            "UPDATE outbox SET next_attempt_at = ? WHERE text = 'after its backoff'",
                            (to_db(sender.clock() + timedelta(seconds=10)),))
                    return message

            monkeypatch.setattr(sender, "bot", WhenTheGroupIsFull())
            async with bot.services.db.transaction() as conn:
                for i in range(25):
                    queue_text(conn, DP_CHAT, f"group message {i:02d}", start, buttons=BUTTONS)
                queue_text(conn, 700_001, "after its backoff", start, buttons=BUTTONS)
                conn.add("UPDATE outbox SET next_attempt_at = ? WHERE text = 'after its backoff'",
                         (to_db(start + timedelta(hours=1)),))
            await bot.settle()
            group = [t for chat, t in passed if chat == DP_CHAT]
            [private] = [t for chat, t in passed if chat == 700_001]
            assert len(group) == 25 and api.count_429 == 0
            assert due[0] <= private < group[20]  # when due, before the group's next message
    finally:
        api.stop()


class HeldWaits:
    """``asyncio`` for the sender, on a clock of its own: a short wait (the overall 30 a second)
    jumps the clock at once; a wait of a second or more (a chat's own limit) lasts until the
    test lets time pass. What goes while a chat waits is then up to the sender alone."""

    def __init__(self, ticks: Ticks) -> None:
        self.ticks = ticks
        self.time_passes = asyncio.Event()

    async def sleep(self, seconds: float, result: Any = None) -> Any:
        if seconds >= 0.5:
            await self.time_passes.wait()
        self.ticks.t += max(0.0, seconds) + 0.001
        return await asyncio.sleep(0, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


async def test_a_long_message_waiting_for_its_next_part_holds_up_only_its_chat(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text longer than one message goes in parts, each paced by its chat's limit; while the
    group's delivery waits for its next part's slot, messages queued meanwhile for other chats
    go."""
    async with running_bot(tmp_path, clock, delivery=REAL_LIMITS) as bot:
        api, sender = bot.api, bot.services.sender
        ticks = Ticks()
        waits = HeldWaits(ticks)
        monkeypatch.setattr(outbox_job, "asyncio", waits)
        sender.throttle = Throttle(bot.settings.delivery, clock=ticks)
        real = sender.bot
        people = [700_001 + i for i in range(20)]

        class AfterPartOne:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
                message = await real.send_message(chat_id, text, **kwargs)
                if text.startswith("line 000"):  # the first part is out
                    async with bot.services.db.transaction() as conn:
                        for person in people:
                            queue_text(conn, person, f"to {person}", bot.clock(), buttons=BUTTONS)
                    sender.wake()
                return message

        monkeypatch.setattr(sender, "bot", AfterPartOne())
        long_text = "\n".join(f"line {i:03d} " + "x" * 90 for i in range(120))  # 3 parts
        async with bot.services.db.transaction() as conn:
            queue_text(conn, DP_CHAT, long_text, bot.clock(), buttons=BUTTONS)
        mark = api.mark()
        settling = asyncio.create_task(bot.settle())
        for person in people:  # all twenty go while the group's next part waits for its slot
            await api.wait_for("sendMessage", lambda c, p=person: int(c.params["chat_id"]) == p,
                               after=mark, ok=True)
        assert len(delivered(bot, mark, DP_CHAT)) == 1
        waits.time_passes.set()
        await settling
        assert "\n".join(delivered(bot, mark, DP_CHAT)) == long_text  # the three parts, in order
        assert await bot.services.outbox.pending() == 0


# --- stopping ------------------------------------------------------------------------------------

async def outbox_rows(db_path: Path) -> list[tuple[str, bool, bool, bool]]:
    """(text, sent, failed, still marked sending) of every text row."""
    db = await Database.open(db_path)
    try:
        rows = await db.all("SELECT text, sent_at, failed_at, sending_at FROM outbox"
                            " WHERE kind = 'text' ORDER BY id")
        return [(r[0], r[1] is not None, r[2] is not None,
                 r[3] is not None and r[1] is None and r[2] is None) for r in rows]
    finally:
        await db.close()


async def test_stop_returns_while_chats_wait_and_leaves_nothing_sending(
    tmp_path: Path, clock: Clock,
) -> None:
    """Stopped while a group waits on its minute (here one message a minute), a person's
    message waits on a retry_after of an hour, one message is under way and answered soon, and
    one is lost on its way: the stop does not wait for the limits; the message answered in
    time is recorded sent; the lost one, stopped, is pending again; nothing stays "sending".
    The next start sends what was left, once each, in order."""
    limits = {**REAL_LIMITS, "group_per_minute": 1}
    async with running_bot(tmp_path, clock, delivery=limits) as bot:
        db_path = bot.settings.database_path
        api = bot.api
        api.fail_next("sendMessage", "Too Many Requests: retry after 3600", 429,
                      parameters={"retry_after": 3600},
                      predicate=lambda p: int(p["chat_id"]) == 700_009)
        api.delay_next("sendMessage", 0.3, predicate=lambda p: p.get("text") == "under way at the stop")
        api.delay_next("sendMessage", 4.0, deliver=False,
                       predicate=lambda p: p.get("text") == "lost on the way")
        async with bot.services.db.transaction() as conn:
            for i in range(12):
                queue_text(conn, DP_CHAT, f"group {i:02d}", clock(), buttons=BUTTONS)
            queue_text(conn, 700_009, "held an hour", clock(), buttons=BUTTONS)
            queue_text(conn, 700_001, "under way at the stop", clock(), buttons=BUTTONS)
            queue_text(conn, 700_002, "lost on the way", clock(), buttons=BUTTONS)
        bot.services.sender.wake()  # the running sender takes them
        await api.wait_for("sendMessage", lambda c: c.params.get("text") == "lost on the way")
        await api.wait_for("sendMessage", lambda c: c.params.get("text") == "under way at the stop")
        await api.wait_for("sendMessage", lambda c: c.params.get("text") == "group 00", ok=True)
        # Hang guard only (the limits would hold a waiting stop for an hour): not a measurement.
        await asyncio.wait_for(bot.services.sender.stop(), timeout=30)
        first_api = api
    state = {text: (sent, failed, sending) for text, sent, failed, sending in await outbox_rows(db_path)}
    assert not any(sending for _sent, _failed, sending in state.values())
    assert state["group 00"][0] and state["under way at the stop"][0]
    assert not state["lost on the way"][0] and not state["held an hour"][0]
    assert [t for t in state if t.startswith("group") and not state[t][0]] == [
        f"group {i:02d}" for i in range(1, 12)]

    clock.advance(hours=1)
    async with running_bot(tmp_path, clock) as bot:  # the next start, at the e2e limits
        await bot.settle()
        texts = bot.api.sent_texts()
    assert [t for t in texts if t.startswith("group")] == [f"group {i:02d}" for i in range(1, 12)]
    assert texts.count("lost on the way") == 1 and texts.count("held an hour") == 1
    assert "under way at the stop" not in texts
    assert first_api.sent_texts().count("under way at the stop") == 1
    assert all(sent for _t, sent, _f, _s in await outbox_rows(db_path))


# --- starting ------------------------------------------------------------------------------------

async def test_a_refresh_queued_before_the_upgrade_becomes_an_edit(
    tmp_path: Path, clock: Clock,
) -> None:
    with FakeBotAPI() as api:  # the same Telegram across the restart: the card is still there
        async with running_bot(tmp_path, clock, api=api) as bot:
            db_path = bot.settings.database_path
            n = await make_case(bot)
            await bot.services.sender.stop()
            async with bot.services.db.transaction() as conn:  # as queued before 0009
                conn.add("UPDATE cases SET summary = 'Road flooded again' WHERE id = ?", (n,))
                conn.add("INSERT INTO outbox(created_at, kind, case_id, next_attempt_at)"
                         " VALUES(?, 'refresh', ?, ?)", (to_db(clock()), n, to_db(clock())))
        async with running_bot(tmp_path, clock, api=api) as bot:
            await bot.settle()
            assert "Road flooded again" in bot.card(DP_CHAT, n)["text"]
            assert await bot.services.outbox.pending() == 0
    db = await Database.open(db_path)
    try:
        row = await db.one("SELECT sent_at, last_error FROM outbox WHERE kind = 'refresh'")
        assert row is not None and row[0] is not None and row[1] == "turned into card edits"
    finally:
        await db.close()


async def test_rows_left_sending_are_counted_in_one_warning_at_start(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_bot(tmp_path, clock) as bot:
        await bot.services.sender.stop()
        async with bot.services.db.transaction() as conn:  # the process dies with these in hand
            for i in range(3):
                queue_text(conn, WG_CHAT, f"in hand {i}", clock(), buttons=BUTTONS)
            conn.add("UPDATE outbox SET sending_at = ? WHERE text LIKE 'in hand %'", (to_db(clock()),))
    caplog.set_level("WARNING", logger="bot.jobs.outbox")
    async with running_bot(tmp_path, clock) as bot:
        await bot.settle()
        assert [t for t in bot.api.sent_texts(WG_CHAT) if t.startswith("in hand")] == [
            "in hand 0", "in hand 1", "in hand 2"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.jobs.outbox"]
    assert warnings == ["3 outbox messages were being sent when the bot stopped; they go again "
                        "(each may arrive twice)"]
