"""``casebot run`` as a process, as an operator runs it: an unreachable Bot API at start, a refused
token, SIGTERM while messages wait on Telegram's group limit, and SIGKILL at random moments."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import audit
from bot.config import load_settings
from bot.db import Database
from bot.domain.cases import Actor, CaseService, Change, Draft
from bot.domain.people import PeopleService
from bot.domain.rules import Action
from bot.domain.units import UnitService
from bot.service import EXIT_TOKEN, EXIT_UNREACHABLE
from tests import pgtest
from tests.conftest import ADMIN, DP_CHAT, WG, Clock
from tests.fakebotapi import FakeBotAPI

CONFIG = """
timezone = "Asia/Phnom_Penh"
default_language = "en"
admins = [{admin}]
working_group = [{wg}]
[telegram]
base_url = "{base_url}"
base_file_url = "{base_file_url}"
retry_max_seconds = 0.2
start_attempts = {start_attempts}
[database]
{db}
[delivery]
notice_seconds = 0
overall_per_second = {overall}
per_chat_per_second = {per_chat}
group_per_minute = {group}
[flood]
burst = 100000
[[categories]]
key = "land"
name = "Land dispute"
name_km = "វិវាទដីធ្លី"
[[units]]
key = "moi"
name = "Ministry of Interior"
name_km = "ក្រសួងមហាផ្ទៃ"
kind = "ministry"
[[units]]
key = "pp-dp"
name = "Daun Penh"
name_km = "ដូនពេញ"
kind = "district"
parent = "moi"
chat_id = {dp_chat}
[[units]]
key = "pp-ck"
name = "Chamkar Mon"
name_km = "ចំការមន"
kind = "district"
parent = "moi"
chat_id = 7000  # the first official's private chat
"""


def write_config(tmp_path: Path, base_url: str, base_file_url: str = "http://127.0.0.1:9/file/bot",
                 start_attempts: int = 0, fast: bool = False) -> Path:
    """The bot's config; ``fast``: delivery limits far above Telegram's (a fake that keeps none)."""
    config = tmp_path / "casebot.toml"
    config.write_text(CONFIG.format(admin=ADMIN, wg=WG, base_url=base_url, base_file_url=base_file_url,
                                    start_attempts=start_attempts,
                                    db=pgtest.toml_database(tmp_path / "casebot.sqlite3"),
                                    dp_chat=DP_CHAT, overall=1000 if fast else 30,
                                    per_chat=1000 if fast else 1, group=6000 if fast else 20))
    return config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(config: Path, token: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(BOT_TOKEN=token, CASEBOT_CONFIG=str(config))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=config.parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> str:
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return err.decode()


# --- start ---------------------------------------------------------------------------------


async def test_an_unreachable_bot_api_is_one_line_a_try_then_the_exit_code(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/bot"
    proc = await start(write_config(tmp_path, url, start_attempts=3), "123:ABC")
    err = await finish(proc)
    lines = err.strip().splitlines()
    assert proc.returncode == EXIT_UNREACHABLE, err
    assert len(lines) == 3, err
    assert all(f"cannot reach the Bot API at {url.removesuffix('/bot')} (NetworkError)" in line
               for line in lines[:2])
    assert "could not be reached in 3 tries" in lines[2]
    assert "Traceback" not in err and "Unclosed" not in err and "123:ABC" not in err


async def test_by_default_the_bot_keeps_trying_and_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/bot"
    proc = await start(write_config(tmp_path, url), "123:ABC")
    assert proc.stderr is not None
    seen = [await asyncio.wait_for(proc.stderr.readline(), 30) for _ in range(3)]
    assert all(b"cannot reach the Bot API" in line for line in seen)
    proc.send_signal(signal.SIGTERM)
    err = await finish(proc, timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err and "Unclosed" not in err


async def test_a_refused_token_is_not_retried(tmp_path: Path) -> None:
    with FakeBotAPI() as api:
        proc = await start(write_config(tmp_path, api.base_url, api.base_file_url), "999:WRONG")
        err = await finish(proc)
    assert proc.returncode == EXIT_TOKEN, err
    assert err.strip().splitlines()[-1].endswith("refused the token (401 Unauthorized): check BOT_TOKEN")
    assert len(err.strip().splitlines()) == 1 and "WRONG" not in err


# --- a ministry to work on ---------------------------------------------------------------------


@dataclass
class Ministry:
    config: Path
    cases: list[int]
    officials: list[int]


async def prepare(tmp_path: Path, api: FakeBotAPI, officials: int, cases: int, unit: str,
                  fast: bool = False) -> Ministry:
    """The database as a running ministry has it: officials registered, cases assigned."""
    config = write_config(tmp_path, api.base_url, api.base_file_url, fast=fast)
    settings = load_settings(config)
    clock = Clock(api_now())
    db = await Database.open(settings.database_path)
    try:
        units = UnitService(db, settings)
        await units.sync_from_config()
        people = PeopleService(db, settings, units)
        await people.sync_config(clock())
        ids = [7000 + i for i in range(officials)]
        for tg_id in ids:
            token = await people.invite(ADMIN, unit, "official", clock())
            await people.redeem(token, tg_id, f"Official {tg_id}", None, "en", clock())
        service = CaseService(db, settings, units, people, clock)
        wg = Actor(WG, "Sophea", None)
        category = next(c.id for c in await units.categories() if c.key == "land")
        made = []
        for i in range(cases):
            draft = Draft(source="phone", category_id=category,
                          place_unit_id=(await units.by_key(unit)).id, summary=f"Case number {i}",
                          citizen_name="Sok Dara")
            case = await service.create(wg, draft, clock())
            await service.apply(case.id, Action.ASSIGN, wg, Change(unit_key=unit), clock())
            made.append(case.id)
        await db.write("DELETE FROM outbox")  # what setting up queued is not the test's
    finally:
        await db.close()
    return Ministry(config, made, ids)


def api_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def count(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    db = await Database.open(db_path)
    try:
        row = await db.one(sql, params)
        return int(row[0]) if row else 0
    finally:
        await db.close()


# --- SIGTERM --------------------------------------------------------------------------------


async def test_sigterm_while_replies_wait_on_the_group_limit_exits_in_time_and_loses_nothing(
        tmp_path: Path) -> None:
    with FakeBotAPI(rate_limits=True) as api:
        ministry = await prepare(tmp_path, api, officials=1, cases=1, unit="pp-dp")
        official = api.user(ministry.officials[0], "Official")
        group = api.group_chat(DP_CHAT, "Daun Penh district")
        proc = await start(ministry.config, api.token)
        n = ministry.cases[0]  # (no wait for a first poll: the fake records one when it ends)
        for i in range(30):  # 30 replies in one group: Telegram takes 20 a minute
            api.send_message(official, group, f"/note {n} group note {i}")
        await api.wait_for("sendMessage", lambda c: "Note added" in str(c.params.get("text", "")),
                           timeout=60)
        proc.send_signal(signal.SIGTERM)
        err = await finish(proc, timeout=10)  # within 10 s, though replies still wait
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        db_path = tmp_path / "casebot.sqlite3"
        assert await count(db_path, "SELECT count(*) FROM outbox WHERE sending_at IS NOT NULL"
                           " AND sent_at IS NULL AND failed_at IS NULL") == 0
    # Started again (against a Bot API whose group limit has not been spent, so that the test
    # does not wait out Telegram's minute), the bot handles what was left, each exactly once.
    with FakeBotAPI() as api:
        write_config(tmp_path, api.base_url, api.base_file_url, fast=True)
        proc = await start(ministry.config, api.token)
        for _ in range(600):
            if await count(db_path, "SELECT count(*) FROM events WHERE action = 'note'") == 30 and \
                    await count(db_path, "SELECT count(*) FROM inbox WHERE state = 'pending'") == 0:
                break
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        err = await finish(proc, timeout=10)
        states = [await count(db_path, "SELECT count(*) FROM inbox WHERE state = ?", (s,))
                  for s in ("pending", "done", "parked")]
        assert states == [0, 30, 0], (states, err[-3000:])
        for i in range(30):
            assert await count(db_path, "SELECT count(*) FROM event_texts WHERE text = ?",
                               (f"group note {i}",)) == 1, i


# --- SIGKILL --------------------------------------------------------------------------------


async def test_killed_at_random_moments_every_change_happens_exactly_once(tmp_path: Path) -> None:
    """520 notes from 21 people in their private chats; the process is SIGKILLed 7 times at
    random moments and started again. Every note is recorded once, every outbox row ends sent
    or failed, and a notice is sent twice at most once per crash."""
    rng = random.Random(20261129)
    with FakeBotAPI() as api:
        ministry = await prepare(tmp_path, api, officials=20, cases=10, unit="pp-ck", fast=True)
        db_path = tmp_path / "casebot.sqlite3"
        people = [api.user(tg_id, f"Official {tg_id}") for tg_id in ministry.officials]
        people.append(api.user(WG, "Sophea"))
        total = 520
        notes = [f"n-{i:03d}" for i in range(total)]

        def send(batch: list[str]) -> None:
            for text in batch:
                who = rng.choice(people)
                api.send_message(who, api.private_chat(who), f"/note {rng.choice(ministry.cases)} {text}")

        send(notes[:300])
        kills = sorted(rng.sample(range(10, total - 10), 7))
        crashes = 0
        proc = await start(ministry.config, api.token)
        try:
            for threshold in kills:
                for _ in range(3000):
                    if await count(db_path, "SELECT count(*) FROM inbox WHERE state = 'done'") >= threshold:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(rng.uniform(0, 0.05))
                proc.kill()
                await proc.wait()
                crashes += 1
                if crashes == 3:
                    send(notes[300:])
                mark = api.mark()
                proc = await start(ministry.config, api.token)
            for _ in range(6000):
                if (await count(db_path, "SELECT count(*) FROM inbox WHERE state = 'done'") >= total
                        and await count(db_path, "SELECT count(*) FROM outbox"
                                        " WHERE sent_at IS NULL AND failed_at IS NULL") == 0
                        and any(c.method == "getUpdates" for c in api.calls[mark:])):  # it runs
                    break
                await asyncio.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGTERM)
            err = await finish(proc)
        assert proc.returncode == 0, err
        assert await count(db_path, "SELECT count(*) FROM inbox WHERE state != 'done'") == 0
        for text in notes:  # every change asked for, exactly once
            assert await count(db_path, "SELECT count(*) FROM events e JOIN event_texts t"
                               " ON t.event_id = e.id WHERE e.action = 'note' AND t.text = ?",
                               (text,)) == 1, text
        assert await count(db_path, "SELECT count(*) FROM outbox"
                           " WHERE sent_at IS NULL AND (failed_at IS NULL OR last_error IS NULL)") == 0
        assert await audit.verify(pgtest.target(db_path)) == []  # every crash left the chain whole
        # The working group is told of each note privately; a crash may send one notice twice.
        told = [str(c.params.get("text", "")) for c in api.calls_of("sendMessage")
                if int(c.params.get("chat_id", 0)) == WG and c.ok]
        # (Notices queued together go as one message: a message sent again repeats all of them.)
        seen: set[str] = set()
        repeated = 0
        for message in told:
            mine = {text for text in notes if f": {text}" in message}
            repeated += bool(mine & seen)
            seen |= mine
        assert seen == set(notes), sorted(set(notes) - seen)[:5]
        assert repeated <= crashes
