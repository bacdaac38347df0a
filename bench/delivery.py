"""Figure 4: the delivery rate. The bot runs as ``casebot run`` does (``bot.service.Runner``, with
python-telegram-bot's rate limiter; only the repeating jobs are off), and its ``OutboxSender``
(with its ``Throttle`` at the README's limits: 30 messages a second overall, one a second per
chat, 20 a minute per group) delivers notifications queued at once to many distinct chats
against ``FakeBotAPI(rate_limits=True)``, which answers 429 with ``retry_after`` beyond
Telegram's limits. Reference: the 30 messages a second allowed."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import ministry
from bench.common import Figure, ms, open_domain
from bench.store import Target, working_copy
from bot.app import SERVICES, Services
from bot.domain import outbox
from bot.service import Runner
from tests.fakebotapi import FakeBotAPI

REMINDER = ("⏰ <b>#{n}</b> (Kampot district 3) is overdue by 4 days: Road flooded every rainy "
            "season\nThe unit has not updated the case since 28 Oct 2026.")
BUTTONS = [[("🔄 Update status", "c:{n}:3:upd"), ("😴 Snooze 1 day", "c:{n}:3:snz")],
           [("🆘 Ask for help", "c:{n}:3:hlp")]]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def chats(path_db: Target, count: int) -> list[int]:
    """The chats of the synthetic ministry: every unit's group and the working group's, then
    people privately, up to ``count``."""
    domain = await open_domain(path_db)
    try:
        groups = [int(r[0]) for r in await domain.db.all(
            "SELECT config_chat_id FROM units WHERE config_chat_id IS NOT NULL ORDER BY id")]
        groups.append(ministry.WG_CHAT)
        people = [int(r[0]) for r in await domain.db.all(
            "SELECT tg_id FROM people ORDER BY tg_id LIMIT ?", (count,))]
    finally:
        await domain.close()
    out = groups[: count // 4] + people
    return out[:count]


async def run(path: Target, work_dir: Path, *, messages: int = 3000, n_chats: int = 1000,
              timeout: float = 600.0) -> list[Figure]:
    logging.getLogger("bot").setLevel(logging.ERROR)
    copy = working_copy(path, work_dir, "delivery.sqlite3")
    targets = await chats(copy, n_chats)
    if len(targets) < n_chats:
        raise AssertionError(f"only {len(targets)} chats in the data, {n_chats} needed")
    api = FakeBotAPI(rate_limits=True).start()
    settings = ministry.settings_for(copy, api=api, delivery=ministry.REAL_DELIVERY)
    runner = Runner(settings, api.token, clock=utcnow, jobs=False, poll_seconds=1)
    try:
        await runner.start()
        services: Services = runner.app.bot_data[SERVICES]
        now = utcnow()
        async with services.db.transaction() as conn:
            conn.add("DELETE FROM outbox")
            for i in range(messages):
                chat = targets[i % len(targets)]
                buttons = [[(label, data.format(n=i)) for label, data in row] for row in BUTTONS]
                # Reminders carry their buttons, so each is a message of its own (plain notices
                # queued together for a chat would share one).
                outbox.queue_text(conn, chat, REMINDER.format(n=i + 1), now, buttons=buttons)
        mark = api.mark()
        started = time.perf_counter()
        services.sender.wake()  # the running sender delivers them, as after any change
        while await services.outbox.pending() and time.perf_counter() - started <= timeout:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        row = await services.db.one(
            "SELECT COUNT(*), SUM(sent_at IS NOT NULL), SUM(failed_at IS NOT NULL) FROM outbox")
        assert row is not None
        total, delivered, failed = int(row[0]), int(row[1] or 0), int(row[2] or 0)
        with api._lock:
            calls = [c for c in api.calls[mark:] if c.method == "sendMessage" and c.ok]
        spread = (calls[-1].at - calls[0].at) if len(calls) > 1 else 0.0
        if api.server_errors:
            raise AssertionError(api.server_errors[-1])
    finally:
        await runner.stop()
        api.stop()
    limit = settings.delivery.overall_per_second
    rate = delivered / elapsed if elapsed else 0.0
    lost = total - delivered
    return [
        Figure(f"Delivery: {messages:,} notifications to {n_chats:,} chats, real limits: msgs/s",
               f"{rate:.1f}/s ({ms(elapsed)})", f"{limit:.0f}/s allowed", f"{rate / limit:.2f}",
               "≥ 0.9", rate / limit >= 0.9,
               data={"rate": rate, "seconds": elapsed, "spread": spread, "delivered": delivered}),
        Figure("Delivery: 429 answers from the fake Bot API", str(api.count_429), "0", "—", "0",
               api.count_429 == 0, data={"count_429": api.count_429}),
        Figure("Delivery: notifications lost (not sent: failed or still pending)",
               f"{lost} (failed {failed})", f"{total:,} queued", "—", "0", lost == 0,
               data={"lost": lost, "failed": failed, "total": total}),
    ]
