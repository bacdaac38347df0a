"""The inbox: every update stored before it is confirmed, each chat's handled in order by one
worker, a change never made twice, conversations across a restart, failures parked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main as cli
from bot.inbox import Inbox
from bot.scheduler import Scheduler
from tests import pgtest
from tests.conftest import DP_CHAT, WG, Clock
from tests.fakebotapi import FakeBotAPI
from tests.harness import Bot, running_bot
from tests.test_e2e_inputs import make_case

# --- the scheduler ------------------------------------------------------------------------


async def test_a_flooding_chat_holds_one_worker_and_delays_only_itself() -> None:
    release = asyncio.Event()
    handled: list[int] = []
    in_flood = 0
    most_at_once = 0

    async def handle(row: int) -> None:
        nonlocal in_flood, most_at_once
        if row < 100:  # the flooding group's rows wait (as on Telegram's group limit)
            in_flood += 1
            most_at_once = max(most_at_once, in_flood)
            await release.wait()
            in_flood -= 1
        handled.append(row)

    scheduler = Scheduler(handle, workers=4)
    scheduler.start()
    scheduler.push([(i, "chat:-100") for i in range(1, 51)])
    scheduler.push([(100, "chat:7"), (101, "chat:8")])
    for _ in range(100):
        if 100 in handled and 101 in handled:
            break
        await asyncio.sleep(0.01)
    assert handled == [100, 101]  # private chats answered while the group's 50 wait
    assert most_at_once == 1      # the group never held more than one worker
    release.set()
    for _ in range(200):
        if len(handled) == 52:
            break
        await asyncio.sleep(0.01)
    assert handled[2:] == list(range(1, 51))  # the group's in order
    assert scheduler.idle
    await scheduler.stop(1)


async def test_chats_take_turns_and_a_row_pushed_twice_is_handled_once() -> None:
    order: list[tuple[str, int]] = []

    async def handle(row: int) -> None:
        order.append(("a" if row < 10 else "b", row))
        await asyncio.sleep(0)

    scheduler = Scheduler(handle, workers=1)  # one worker: the turns are visible
    scheduler.push([(1, "a"), (2, "a"), (3, "a"), (11, "b"), (12, "b")])
    scheduler.push([(2, "a"), (11, "b")])  # a source storing the same batch again
    scheduler.start()
    for _ in range(100):
        if scheduler.idle:
            break
        await asyncio.sleep(0.01)
    await scheduler.stop(1)
    assert order == [("a", 1), ("b", 11), ("a", 2), ("b", 12), ("a", 3)]


async def test_stop_leaves_rows_not_started_and_cancels_a_row_in_hand_after_the_timeout() -> None:
    started: list[int] = []

    async def handle(row: int) -> None:
        started.append(row)
        await asyncio.sleep(60)

    scheduler = Scheduler(handle, workers=1)
    scheduler.start()
    scheduler.push([(1, "a"), (2, "a")])
    await asyncio.sleep(0.05)
    await scheduler.stop(0.1)
    assert started == [1]  # row 2 was never taken: it stays in the inbox for the next start


# --- exactly once, end to end ---------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    """One fake Bot API across two runs of the bot (a restart)."""
    with FakeBotAPI(first_update_id=7_000_000) as fake:
        yield fake


async def note_events(bot: Bot, text: str) -> int:
    row = await bot.services.db.one(
        "SELECT count(*) FROM events e JOIN event_texts t ON t.event_id = e.id"
        " WHERE e.action = 'note' AND t.text = ?", (text,))
    return int(row[0]) if row else 0


async def test_an_update_sent_again_is_stored_once(bot: Bot) -> None:
    n = await make_case(bot)
    sent = bot.api.send_message(bot.wg, bot.private(bot.wg), f"/note {n} called the citizen")
    await bot.settle()
    bot.api.inject({"update_id": sent["update_id"], "message": sent["message"]})  # re-delivered
    await bot.settle()
    assert await note_events(bot, "called the citizen") == 1
    rows = await bot.services.db.all("SELECT key FROM inbox WHERE key = ?", (f"tg:{sent['update_id']}",))
    assert len(rows) == 1


async def test_an_update_handled_again_after_a_crash_changes_nothing_twice(
        tmp_path: Path, clock: Clock, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_bot(tmp_path, clock, api=api) as bot:
        n = await make_case(bot)
        # The process dies after the note is committed, before its update is marked handled.
        skipped: list[int] = []

        async def crash_before_done(self: Inbox, row_id: int, now: object) -> None:
            skipped.append(row_id)

        monkeypatch.setattr(Inbox, "done", crash_before_done)
        api.send_message(bot.official, bot.dp_chat, f"/note {n} visited the site")
        for _ in range(500):  # until the handler is past its change and would mark the update done
            if skipped:
                break
            await asyncio.sleep(0.01)
        assert await note_events(bot, "visited the site") == 1
        monkeypatch.undo()
        # The note's reply was committed with the note, in the outbox: it goes once, before
        # the crash or after the restart; here, before (waited for, not raced with the mark).
        for _ in range(1000):
            if f"📝 Note added to #{n}." in api.sent_texts(DP_CHAT):
                break
            await asyncio.sleep(0.01)
        mark = api.mark()
        await bot.runner.stop()  # what survives a crash: the database as committed
    async with running_bot(tmp_path, clock, api=api) as bot:  # the update is handled again
        await bot.settle()
        assert await note_events(bot, "visited the site") == 1  # not twice
        assert bot.texts_since(mark, DP_CHAT) == ["This was already done: I had recorded it before."]


async def test_a_half_done_intake_continues_after_a_restart(
        tmp_path: Path, clock: Clock, api: FakeBotAPI) -> None:
    async with running_bot(tmp_path, clock, api=api) as bot:
        wg, chat = bot.wg, bot.private(bot.wg)
        await bot.say(wg, chat, "/new")
        await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Facebook message")
        await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Land dispute")
        picker = bot.last_bot_message(chat["id"])
        await bot.press_button(wg, picker, "Phnom Penh ›")
        await bot.press_button(wg, bot.api.messages[(chat["id"], picker["message_id"])], "Daun Penh")
        await bot.say(wg, chat, "Road flooded after the rain")
    async with running_bot(tmp_path, clock, api=api) as bot:  # a restart mid-intake
        wg, chat = bot.wg, bot.private(bot.wg)
        m = await bot.say(wg, chat, "Sok Dara")  # the citizen's name: the next question
        assert "contact" in bot.texts_since(m)[-1].lower()
        await bot.say(wg, chat, "012 345 678")
        await bot.say(wg, chat, "The road has been under water for a week.")
        await bot.press_button(wg, bot.last_bot_message(chat["id"]), "Done")
        confirm = bot.last_bot_message(chat["id"])
        assert "Road flooded after the rain" in confirm["text"] and "Sok Dara" in confirm["text"]
        await bot.press_button(wg, confirm, "Create")
        assert "Case #1 created" in bot.last_bot_message(chat["id"])["text"]


async def test_a_parked_update_is_listed_and_can_be_handed_again(
        tmp_path: Path, clock: Clock, capsys: object) -> None:
    async with running_bot(tmp_path, clock) as bot:
        n = await make_case(bot)
        bot.api.fail_next("sendMessage", "Bad Request: injected", times=3,
                          predicate=lambda p: int(p.get("chat_id", 0)) == WG
                          and "Sorry" not in str(p.get("text", "")))
        await bot.say(bot.wg, bot.private(bot.wg), f"/note {n} parked note", timeout=30)
        parked = await Inbox(bot.services.db).parked()
        assert len(parked) == 1 and parked[0].attempts == 3
        assert await note_events(bot, "parked note") == 1  # made once, though tried three times
        config = tmp_path / "casebot.toml"
        config.write_text(f'[database]\n{pgtest.toml_database(bot.settings.database_path)}\n'
                          '[[categories]]\nkey = "land"\nname = "Land"\n'
                          '[[units]]\nkey = "moi"\nname = "Ministry"\nkind = "ministry"\n')
        assert await asyncio.to_thread(cli, ["inbox", "--config", str(config)]) == 0
        out = capsys.readouterr().out  # type: ignore[attr-defined]
        assert f"{parked[0].id}  {parked[0].key}" in out and "3 tries: BadRequest" in out
        assert "parked note" not in out  # no user text
        assert await asyncio.to_thread(cli, ["inbox", "--config", str(config), "--retry", "999"]) == 1
        assert await asyncio.to_thread(cli, ["inbox", "--config", str(config), "--retry", str(parked[0].id)]) == 0
        assert await Inbox(bot.services.db).parked() == []


async def test_a_private_command_is_answered_while_a_group_floods_on_its_limit(
        tmp_path: Path, clock: Clock) -> None:
    """40 notes typed in a unit's group wait on Telegram's 20-a-minute group limit (the rate
    limiter as in production); a working-group member's /whoami in private is answered before
    the group's backlog drains."""
    from bot.service import Runner
    from tests.conftest import OFFICIAL, register_people
    from tests.harness import e2e_settings

    with FakeBotAPI(rate_limits=True, first_update_id=9_000_000) as fake:
        settings = e2e_settings(fake, tmp_path, delivery={"group_per_minute": 20, "notice_seconds": 0},
                                flood={"burst": 100000})
        runner = Runner(settings, fake.token, clock=clock, jobs=False, poll_seconds=1)
        await runner.start()
        try:
            await register_people(runner.services.people, clock())
            official = fake.user(OFFICIAL, "Dara")
            group = fake.group_chat(DP_CHAT, "Daun Penh district")
            for i in range(40):
                fake.send_message(official, group, f"/units {i}")
            await fake.wait_for("sendMessage", lambda c: int(c.params.get("chat_id", 0)) == DP_CHAT,
                                timeout=10)
            wg = fake.user(WG, "Sophea")
            fake.send_message(wg, fake.private_chat(wg), "/whoami")
            answer = await fake.wait_for("sendMessage", lambda c: int(c.params.get("chat_id", 0)) == WG,
                                         timeout=10)
            assert answer.ok
            group_replies = [c for c in fake.calls_of("sendMessage")
                             if int(c.params.get("chat_id", 0)) == DP_CHAT and c.ok]
            assert len(group_replies) < 40  # the group's backlog has not drained
            assert await runner.inbox.backlog() > 0  # type: ignore[union-attr]
        finally:
            await runner.stop()
