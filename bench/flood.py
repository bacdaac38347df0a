"""Figure 7: a private command's reply latency while one group floods the bot, beside the same
with no flood.

The bot runs as ``casebot run`` does (``bot.service.Runner``, with python-telegram-bot's rate
limiter, the README's delivery limits; only the repeating jobs are off) against
``FakeBotAPI(rate_limits=True)``, which answers 429 beyond Telegram's limits (30 messages a
second overall, one a second per private chat, 20 a minute per group).

A district's group sends ``flood`` commands at once (``/help``, its officials taking turns):
each is answered in the group, so beyond the twentieth the replies wait on the group's 20
messages a minute. Meanwhile the working group's members, taking turns, send ``/whoami`` in
private, one after another (the next ``gap`` seconds after the last reply), until the group's
updates are all handled: the latency is from injecting the command to the fake server recording
the reply. The reference: as many ``/whoami`` the same way with no flood, right after (``quiet``
at most).

What it shows: a chat flooding the bot delays only itself (the inbox's scheduler gives each chat
one worker at most, bot/scheduler.py), so the private replies come while the group's backlog
still waits on its limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import ministry
from bench.common import Figure, median, ms, percentile, ratio
from bench.generate import working_copy
from bench.presses import TIMEOUT, TimedAPI, at
from bot.app import SERVICES, Services
from bot.inbox import MAX_ATTEMPTS
from bot.service import Runner

JSON = dict[str, Any]


async def _people(services: Services, api: TimedAPI) -> tuple[int, list[JSON], list[JSON]]:
    """A district's group and its officials, and the working group's members (all registered)."""
    db = services.db
    row = await db.one(
        "SELECT u.id, u.key, u.config_chat_id FROM units u WHERE u.kind = 'district' AND u.active"
        " AND u.config_chat_id IS NOT NULL AND EXISTS (SELECT 1 FROM grants g WHERE g.unit_id = u.id"
        " AND g.role = 'official' AND g.revoked_at IS NULL) ORDER BY u.id LIMIT 1")
    if row is None:
        raise AssertionError("no district with a group chat and officials in the data")
    unit_id, key, chat = int(row[0]), str(row[1]), int(row[2])
    api.group_chat(chat, key)
    officials = [api.user(int(r[0]), str(r[1]), username=f"user{r[0]}") for r in await db.all(
        "SELECT g.tg_id, p.name FROM grants g JOIN people p ON p.tg_id = g.tg_id WHERE g.unit_id = ?"
        " AND g.role = 'official' AND g.revoked_at IS NULL ORDER BY g.tg_id", (unit_id,))]
    marks = ",".join("?" * len(ministry.WORKING_GROUP))
    members = [api.user(int(r[0]), str(r[1]), username=f"user{r[0]}") for r in await db.all(
        f"SELECT tg_id, name FROM people WHERE tg_id IN ({marks}) ORDER BY tg_id",
        ministry.WORKING_GROUP)]
    if len(members) != len(ministry.WORKING_GROUP):
        raise AssertionError(f"{len(members)} of the working group's members registered")
    for member in members:
        api.private_chat(member)
    return chat, officials, members


class PrivateAsker:
    """``/whoami`` in private, the working group's members taking turns (so that no private chat
    gets more than a message every few seconds: Telegram allows one a second)."""

    def __init__(self, api: TimedAPI, members: list[JSON]) -> None:
        self.api = api
        self.members = members
        self.turn = 0

    async def ask(self) -> tuple[float, float]:
        """One command; returns (latency, when the reply was recorded: perf_counter)."""
        member = self.members[self.turn % len(self.members)]
        self.turn += 1
        reply = self.api.expect("sendMessage", at(member["id"]))
        sent = time.perf_counter()
        self.api.send_message(member, member["id"], "/whoami")
        when, _result = await asyncio.wait_for(reply, TIMEOUT)
        return when - sent, when


async def _handled(services: Services, chat: int) -> int:
    row = await services.db.one("SELECT COUNT(*) FROM inbox WHERE chat_key = ? AND state != 'pending'",
                                (f"chat:{chat}",))
    return int(row[0]) if row else 0


async def _drained(services: Services, chat: int, handled: int, deadline: float) -> float:
    """When the group's updates are all handled (done, or parked after their last try)."""
    while await _handled(services, chat) < handled:
        if time.perf_counter() > deadline:
            left = handled - await _handled(services, chat)
            raise AssertionError(f"the group's updates not handled in time: {left} left")
        await asyncio.sleep(0.01)
    return time.perf_counter()


async def run(path: Path, work_dir: Path, *, flood: int = 40, gap: float = 0.25, quiet: int = 100,
              timeout: float = 300.0) -> list[Figure]:
    """``flood`` group updates; private commands ``gap`` seconds apart while they are handled,
    then as many with no flood (``quiet`` at most)."""
    logging.getLogger("bot").setLevel(logging.CRITICAL)  # a 429 in the group is expected
    logging.getLogger("telegram").setLevel(logging.CRITICAL)
    copy = working_copy(path, work_dir, "flood.sqlite3")
    api = TimedAPI(rate_limits=True)
    api.start()
    started = time.monotonic()

    def clock() -> datetime:
        return ministry.NOW + timedelta(seconds=time.monotonic() - started)

    settings = ministry.settings_for(copy, api=api, delivery=ministry.REAL_DELIVERY)
    runner = Runner(settings, api.token, clock=clock, jobs=False, poll_seconds=1)
    try:
        await runner.start()
        services: Services = runner.app.bot_data[SERVICES]
        chat, officials, members = await _people(services, api)
        asker = PrivateAsker(api, members)
        for _ in range(len(members)):  # warm-up, not counted: each member's first command
            await asker.ask()
            await asyncio.sleep(gap)
        before = await _handled(services, chat)
        mark = api.mark()
        flood_at = time.perf_counter()
        for i in range(flood):
            api.send_message(officials[i % len(officials)], chat, "/help")
        drained = asyncio.create_task(_drained(services, chat, before + flood, flood_at + timeout))
        under: list[tuple[float, float]] = []
        while not drained.done():
            under.append(await asker.ask())
            await asyncio.sleep(gap)
        drained_at = await drained
        with api._lock:
            group_calls = [c for c in api.calls[mark:] if c.params.get("chat_id") == chat
                           and c.method == "sendMessage"]
        replies = [c for c in group_calls if c.ok]
        refused = len(group_calls) - len(replies)
        last_reply_at = replies[-1].at - replies[0].at if replies else 0.0
        parked = await services.db.one(
            "SELECT COUNT(*) FROM inbox WHERE chat_key = ? AND state = 'parked'", (f"chat:{chat}",))
        n_parked = int(parked[0]) if parked else 0
        calm: list[tuple[float, float]] = []
        for _ in range(min(quiet, len(under))):
            calm.append(await asker.ask())
            await asyncio.sleep(gap)
        if api.server_errors:
            raise AssertionError(api.server_errors[-1])
    finally:
        await runner.stop()
        api.stop()
    lat, ref = [x[0] for x in under], [x[0] for x in calm]
    # The last command may be answered just after the group's backlog drains; the others (all
    # of them, if the scheduler let the group hold up everyone) come before it.
    before_drain = sum(1 for _lat, when in under if when < drained_at)
    met = before_drain >= max(1, len(under) - 1)
    first_reply = min(when for _lat, when in under)
    data = {"flood": flood, "private": len(under), "private_before_drain": before_drain,
            "first_private_reply": first_reply - flood_at, "drained": drained_at - flood_at,
            "group_replies": len(replies), "group_refused": refused, "parked": n_parked,
            "last_group_reply": last_reply_at, "flood_latencies": lat, "quiet_latencies": ref,
            "count_429": api.count_429}
    allowed = 60.0 * ((flood - 1) // 20)  # the 21st message in a minute waits for the next one
    what = f"one group floods ({flood} /help, each answered in the group, 20 a minute)"
    return [
        Figure(f"Private /whoami while {what}: reply latency p50 (n={len(lat)})", ms(median(lat)),
               f"{ms(median(ref))} with no flood", ratio(median(lat), median(ref)), data=data),
        Figure(f"Private /whoami while {what}: reply latency p95 (n={len(lat)})",
               ms(percentile(lat, 95)), f"{ms(percentile(ref, 95))} with no flood",
               ratio(percentile(lat, 95), percentile(ref, 95)), data=data),
        Figure(f"The flooding group's {flood} updates handled in (its {len(replies)} replies sent, "
               f"{refused} refused with 429; private replies before it drained: {before_drain} of "
               f"{len(under)})", f"{drained_at - flood_at:.1f} s",
               f"{allowed:.0f} s: the last reply Telegram allows at 20 a minute", "—",
               "private replies while the group waits", met, data=data),
        Figure(f"The flooding group's updates left unanswered (parked after {MAX_ATTEMPTS} tries)",
               str(n_parked), f"0 of {flood}", "—", "0", n_parked == 0, data=data),
    ]
