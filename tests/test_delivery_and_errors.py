"""The outbox sender under Telegram's failures; the error handler; logs without personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import setup_logging
from bot.db import Database
from bot.inbox import MAX_ATTEMPTS, Inbox
from tests import pgtest
from tests.conftest import DP_CHAT, WG_CHAT, Clock
from tests.harness import Bot
from tests.test_e2e_inputs import make_case


async def outbox_state(bot: Bot) -> list[tuple[str, int | None, str | None, str | None]]:
    rows = await bot.services.db.all(
        "SELECT kind, chat_id, sent_at, failed_at FROM outbox ORDER BY id")
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_retry_after_is_honoured_and_nothing_is_lost(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Too Many Requests: retry after 30", 429,
                      parameters={"retry_after": 30}, predicate=lambda p: int(p["chat_id"]) == WG_CHAT)
    n = await make_case(bot, unit=None)
    pending = [s for s in await outbox_state(bot) if s[2] is None]
    assert pending == [("text", WG_CHAT, None, None)]  # held back, not failed, not sent twice
    row = await bot.services.db.one("SELECT attempts, next_attempt_at FROM outbox")
    assert row is not None and row[0] == 0
    bot.clock.advance(seconds=31)
    await bot.settle()
    assert all(s[2] is not None for s in await outbox_state(bot))
    assert sum(f"#{n} created" in t for t in bot.api.sent_texts(WG_CHAT)) == 1


async def test_network_errors_back_off_then_deliver(bot: Bot) -> None:
    bot.api.fail_next("sendMessage", "Internal Server Error", 500, times=2)
    await make_case(bot, unit=None)
    row = await bot.services.db.one("SELECT attempts, sent_at, last_error FROM outbox")
    assert row is not None and row[0] == 1 and row[1] is None and row[2]
    bot.clock.advance(seconds=6)
    await bot.settle()
    bot.clock.advance(seconds=21)
    await bot.settle()
    row = await bot.services.db.one("SELECT attempts, sent_at FROM outbox")
    assert row is not None and row[0] == 3 and row[1] is not None


async def test_a_blocked_chat_fails_that_message_only(bot: Bot) -> None:
    bot.api.block(DP_CHAT)
    n = await make_case(bot)
    states = await outbox_state(bot)
    assert ("card", DP_CHAT) in [(s[0], s[1]) for s in states if s[3] is not None]
    assert any(s[1] == WG_CHAT and s[2] is not None for s in states)  # the rest still went out
    assert (await bot.services.cases.get(n)).unit_key == "pp-dp"  # the change itself stands


async def test_card_deleted_in_the_chat_is_forgotten_not_retried(bot: Bot) -> None:
    n = await make_case(bot)
    card = bot.card(DP_CHAT, n)
    bot.api.fail_next("editMessageText", "Bad Request: message to edit not found")
    await bot.press_button(bot.official, card, "Accept")
    assert await bot.services.outbox.cards(n) == []
    assert all(s[3] is None for s in await outbox_state(bot))


async def test_pending_messages_survive_a_restart(tmp_path: Path, clock: Clock) -> None:
    from tests.harness import running_bot

    async with running_bot(tmp_path, clock) as bot:
        bot.api.fail_next("sendMessage", "Too Many Requests: retry after 60", 429,
                          parameters={"retry_after": 60})
        await make_case(bot, unit=None)
        api = bot.api
        assert [s for s in await outbox_state(bot) if s[2] is None]
    clock.advance(seconds=61)
    async with running_bot(tmp_path, clock, api=None) as bot:
        await bot.settle()
        assert any("#1 created" in t for t in bot.api.sent_texts(WG_CHAT))
    assert api is not bot.api


@pytest.fixture
def production_logging(bot: Bot, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Logging as ``casebot run`` sets it up, with the root logger at DEBUG."""
    names = ("", "telegram", "aiosqlite", "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        logging.getLogger().setLevel(logging.DEBUG)
        setup_logging(bot.api.token)
        caplog.set_level(logging.DEBUG)
        yield caplog
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_unexpected_error_tells_the_user_and_logs_no_personal_data(
    bot: Bot, production_logging: pytest.LogCaptureFixture
) -> None:
    caplog = production_logging
    await make_case(bot, citizen_name="Chan Lina Secret")
    bot.api.fail_next("sendMessage", "Bad Request: chat not found", times=MAX_ATTEMPTS,
                      predicate=lambda p: "Chan Lina Secret" in str(p.get("text", "")))
    m = await bot.say(bot.wg, bot.private(bot.wg), "/case 1", timeout=30)
    # Tried MAX_ATTEMPTS times; told once, after the last; parked for an admin. Telegram refused
    # the reply: whether something changed is not ours to promise.
    sorry = ("Sorry, I could not reply, but your change may have been "
             "recorded. Check with /case before trying again.")
    texts = bot.texts_since(m)
    assert texts[-1] == sorry and texts.count(sorry) == 1 and len(texts) == MAX_ATTEMPTS + 1
    parked = await Inbox(bot.services.db).parked()
    assert [p.error.split(" at ")[0] for p in parked] == ["BadRequest"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled BadRequest" in logged and "parked after 3 attempts" in logged
    assert "Chan Lina" not in logged and "099 111 222" not in logged
    assert bot.api.token not in logged


async def test_a_failure_that_passes_is_tried_again_and_answered_once(bot: Bot) -> None:
    await make_case(bot)
    bot.api.fail_next("sendMessage", "Bad Gateway", error_code=502,
                      predicate=lambda p: "Received" in str(p.get("text", "")))
    m = await bot.say(bot.wg, bot.private(bot.wg), "/case 1", timeout=30)
    texts = bot.texts_since(m)  # the card refused once (502), then sent
    assert len(texts) == 2 and texts[0] == texts[1] and texts[1].startswith("<b>#1</b>")
    assert await Inbox(bot.services.db).parked() == []


async def test_debug_logging_shows_neither_token_nor_citizens(
    bot: Bot, production_logging: pytest.LogCaptureFixture
) -> None:
    n = await make_case(bot, citizen_name="Chan Lina Secret")
    await bot.press_button(bot.official, bot.card(DP_CHAT, n), "Accept")
    await bot.say(bot.wg, bot.private(bot.wg), f"/case {n}")
    logged = "\n".join(r.getMessage() for r in production_logging.records)
    assert logged  # something was logged at DEBUG
    assert bot.api.token not in logged and "Chan Lina" not in logged


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.db as dbmod

    good = dbmod.migrations(dbmod.POSTGRESQL if pgtest.enabled() else dbmod.SQLITE)
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: [*good, (len(good) + 1,
                        "CREATE TABLE half_done(a INTEGER);\nINSERT INTO no_such_table VALUES (1);")])
    with pytest.raises(Exception, match="no_such_table"):
        await Database.open(tmp_path / "x" / "db.sqlite3")
    monkeypatch.setattr(dbmod, "migrations", lambda *_store: good)
    db = await Database.open(tmp_path / "x" / "db.sqlite3")
    try:
        assert await db.schema_version() == len(good)
        assert "half_done" not in await db.in_thread(dbmod.table_names)
    finally:
        await db.close()


def test_python_dash_m_bot_is_the_cli() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and "check-config" in out.stdout
