"""The inbox's own paths: an update left in the inbox is handled at the next start (read back
from its row), as is one beyond what is handed over in memory; what an update changes in a
person's or a chat's data is committed with the update's "done" mark (one transaction), survives
a restart, and is written again after a commit that failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import service
from bot.db import Database
from bot.inbox import Inbox, Item
from bot.persistence import DatabasePersistence
from tests.conftest import DP_CHAT, OFFICIAL, Clock
from tests.fakebotapi import FakeBotAPI
from tests.harness import running_bot
from tests.test_e2e_inputs import make_case


def whoami(update_id: int, user: dict[str, object]) -> str:
    message = {"message_id": 1, "from": user, "chat": {"id": user["id"], "type": "private"},
               "date": 1_790_000_000, "text": "/whoami",
               "entities": [{"type": "bot_command", "offset": 0, "length": 7}]}
    return json.dumps({"update_id": update_id, "message": message})


async def test_an_update_left_in_the_inbox_is_handled_at_the_next_start(tmp_path: Path,
                                                                        clock: Clock) -> None:
    api = FakeBotAPI(first_update_id=9_100_000).start()
    try:
        async with running_bot(tmp_path, clock, api=api) as bot:
            user = bot.official
            path = bot.settings.database_path
        # Stored, not handled: as when the process stops between the two.
        db = await Database.open(path)
        try:
            rows = await Inbox(db).add([Item("tg:42", f"chat:{OFFICIAL}", whoami(42, user))], clock())
            assert [r.attempts for r in rows] == [0]
        finally:
            await db.close()
        mark = api.mark()
        async with running_bot(tmp_path, clock, api=api) as bot:
            await bot.settle()
            assert any("You are Dara" in t for t in bot.texts_since(mark, OFFICIAL))
            row = await bot.services.db.one("SELECT state, payload FROM inbox WHERE key = 'tg:42'")
            assert row is not None and tuple(row) == ("done", None)
    finally:
        api.stop()


async def test_updates_beyond_those_kept_in_memory_are_read_back(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "FRESH", 0)
    async with running_bot(tmp_path, clock) as bot:
        m = await bot.say(bot.official, bot.private(bot.official), "/whoami")
        assert any("You are Dara" in t for t in bot.texts_since(m, OFFICIAL))
        assert bot.runner._fresh == {}


async def test_a_pending_question_is_stored_with_its_update_and_read_back(tmp_path: Path,
                                                                          clock: Clock) -> None:
    api = FakeBotAPI(first_update_id=9_000_000).start()
    try:
        async with running_bot(tmp_path, clock, api=api) as bot:
            n = await make_case(bot)
            await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
            await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Resolved")
            assert "what was done" in bot.last_bot_message(DP_CHAT)["text"].lower()
            pending = dict(bot.app.user_data[OFFICIAL])
            assert pending  # the question waiting for the official's answer
            # The update is handled and what it changed is stored: both or neither.
            rows = await bot.services.db.all("SELECT kind, id FROM conversation_data")
            assert [(r[0], r[1]) for r in rows] == [("user", OFFICIAL)]
            left = await bot.services.db.one("SELECT COUNT(*) FROM inbox WHERE state = 'pending'")
            assert left is not None and left[0] == 0
        async with running_bot(tmp_path, clock, api=api) as bot:
            assert dict(bot.app.user_data[OFFICIAL]) == pending
    finally:
        api.stop()


async def test_collected_writes_wait_for_the_caller_and_are_redone_when_not_committed(
        tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "p.sqlite3")
    try:
        persistence = DatabasePersistence()
        persistence.attach(db)

        async def stored() -> list[tuple[str, int]]:
            return [(str(r[0]), int(r[1])) for r in await db.all("SELECT kind, id FROM conversation_data")]

        with persistence.collecting() as writes:
            await persistence.update_user_data(7, {"draft": "x"})
            await persistence.update_chat_data(-5, {"prompt": 1})
        assert await stored() == []  # nothing sent: the caller commits them
        assert len(writes.statements) == 2 and writes.stored == {("user", 7), ("chat", -5)}

        persistence.uncommitted(writes)  # its transaction failed
        await persistence.update_user_data(7, {"draft": "x"})  # the same data: written now
        assert await stored() == [("user", 7)]
        await persistence.update_user_data(7, {"draft": "x"})  # unchanged and stored: no write
        with persistence.collecting() as writes:
            await persistence.update_user_data(7, {"draft": "x"})
        assert writes.statements == []

        with persistence.collecting() as writes:
            await persistence.drop_user_data(7)
        persistence.uncommitted(writes)
        await persistence.drop_user_data(7)  # the delete was not committed: sent again
        assert await stored() == []
    finally:
        await db.close()
