"""Two ``casebot run --webhook`` processes on one database behind one "load balancer" (the test),
one SIGKILLed mid-way: every change exactly once, no reminder or digest twice, no message lost,
each chat's updates handled (and answered) in order, and the survivor takes the jobs over within
``instances.lease_seconds``.

The database is the SQLite file both processes open (WAL, busy_timeout); with
``CASEBOT_TEST_DATABASE_URL`` set (the PostgreSQL run, tests/pgtest.py) the same test runs
against a PostgreSQL schema instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot import audit
from bot.db import Database, to_db
from bot.web import SECRET_HEADER
from tests.conftest import WG
from tests.fakebotapi import FakeBotAPI
from tests.test_service_process import count, finish, prepare

LEASE_SECONDS = 3.0
SECRET = "two-instances-secret"
CHATS = 8          # officials writing in their private chats, side by side
PER_CHAT = 40      # notes each: 320 updates in all
KILL_AFTER = 110   # updates answered 200 before one instance is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_target(path: Path) -> Path | str:
    """What to open for the test's database: the file, or in the PostgreSQL run its schema."""
    if os.environ.get("CASEBOT_TEST_DATABASE_URL", "").strip():
        from tests import pgtest  # type: ignore[attr-defined]

        return pgtest.target(path)  # type: ignore[no-any-return]
    return path


def database_line(path: Path) -> str:
    """The config's database: the SQLite file, or in the PostgreSQL run its schema."""
    if os.environ.get("CASEBOT_TEST_DATABASE_URL", "").strip():
        from tests import pgtest  # type: ignore[attr-defined]  # the PostgreSQL run's helpers

        return str(pgtest.toml_database(path))
    return f'path = "{path}"'


EXTRA = """
[webhook]
url = "https://bot.example.org/telegram/hook"
secret_token = "{secret}"
listen = "127.0.0.1"
port = {port}
[instances]
lease_seconds = {lease}
name = "{name}"
[reminders]
interval_minutes = 0.02
quiet_start = "00:00"
quiet_end = "00:00"
[digest]
time = "00:00"
"""


def instance_config(base: Path, db: Path, name: str, port: int) -> Path:
    """The ministry's config (``prepare``'s) for one instance: its own webhook port and name,
    short leases, the repeating job every 1.2 s, no quiet hours, the digest due at once."""
    text = base.read_text(encoding="utf-8")
    if not re.search(r'(?m)^url = "', text):  # (the PostgreSQL run's ministry names its schema)
        text = re.sub(r'(?m)^path = ".*"$', database_line(db).replace("\\", "\\\\"), text, count=1)
    text += EXTRA.format(secret=SECRET, port=port, lease=LEASE_SECONDS, name=name)
    text = text.replace("[telegram]", '[deadlines]\nholiday_country = ""\n[telegram]', 1)
    config = base.with_name(f"casebot-{name}.toml")
    config.write_text(text, encoding="utf-8")
    return config


@dataclass
class Instance:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    alive: bool = True

    @property
    def hook(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/hook"


async def spawn(config: Path, token: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(BOT_TOKEN=token, CASEBOT_CONFIG=str(config))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--webhook", env=env, cwd=config.parent,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def listening(instance: Instance, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{instance.port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert instance.proc.returncode is None, f"instance {instance.name} exited"
            await asyncio.sleep(0.1)
    raise AssertionError(f"instance {instance.name} does not listen")


async def holder(db_path: Path, lease: str) -> str | None:
    db = await Database.open(db_path)
    try:
        row = await db.one("SELECT holder FROM leases WHERE name = ? AND expires_at > ?",
                           (lease, datetime.now(UTC).isoformat(timespec="milliseconds")))
        return None if row is None else str(row[0])
    finally:
        await db.close()


async def make_due(db_path: Path, case_ids: list[int]) -> None:
    """The cases' deadlines passed an hour ago: the ladder reminds each of them (once)."""
    past = to_db(datetime.now(UTC) - timedelta(hours=1))
    db = await Database.open(db_path)
    try:
        await db.write(f"UPDATE cases SET due_at = ?, accept_due_at = ?, next_action_at = ?"
                       f" WHERE id IN ({','.join('?' * len(case_ids))})", (past, past, past, *case_ids))
    finally:
        await db.close()


async def counts(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = await Database.open(db_path)
    try:
        return [tuple(r) for r in await db.all(sql, params)]
    finally:
        await db.close()


async def test_two_instances_one_killed_every_change_once_in_order_and_the_jobs_taken_over(
        tmp_path: Path) -> None:
    rng = random.Random(20261202)
    with FakeBotAPI() as api:
        ministry = await prepare(tmp_path, api, officials=CHATS, cases=12, unit="pp-ck", fast=True)
        db_path = tmp_path / "casebot.sqlite3"
        cases = ministry.cases
        early, late = cases[:4], cases[4:8]  # overdue from the start; overdue after the kill
        await make_due(db_path, early)
        people = [api.user(tg_id, f"Official {tg_id}") for tg_id in ministry.officials]
        for person in [*people, api.user(WG, "Sophea")]:
            api.private_chat(person)
        instances = []
        for name in ("a", "b"):
            port = free_port()
            config = instance_config(ministry.config, db_path, name, port)
            instances.append(Instance(name, port, await spawn(config, api.token)))
        try:
            for instance in instances:
                await listening(instance)

            # Each chat's notes, each to another case than the one before (its answer names it).
            def case_of(chat: int, i: int) -> int:
                return cases[(chat + i) % len(cases)]

            notes = {c: [f"c{c}-n{i:02d}" for i in range(PER_CHAT)] for c in range(CHATS)}
            answered = 0
            kill = asyncio.Event()
            dead: list[Instance] = []

            async def post(session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
                """As Telegram and a load balancer do: to either instance, again until a 200."""
                nonlocal answered
                for _ in range(200):
                    live = [i for i in instances if i.alive]
                    target = rng.choice(live)
                    try:
                        async with session.post(target.hook, data=json.dumps(body), headers={
                                SECRET_HEADER: SECRET, "Content-Type": "application/json"}) as response:
                            if response.status == 200:
                                answered += 1
                                if answered == KILL_AFTER:
                                    kill.set()
                                return
                    except (TimeoutError, aiohttp.ClientError):
                        pass
                    await asyncio.sleep(0.05)
                raise AssertionError("an update was never taken")

            async def chat_writer(session: aiohttp.ClientSession, c: int) -> None:
                person = people[c]
                for i, text in enumerate(notes[c]):
                    update = api.send_message(person, api.private_chat(person),
                                              f"/note {case_of(c, i)} {text}")
                    await post(session, update)

            async def killer() -> tuple[str, float]:
                await kill.wait()
                jobs = await holder(db_path, "jobs")
                assert jobs is not None
                victim = next(i for i in instances if jobs.startswith(f"{i.name}~")
                              or jobs.startswith(f"{i.name}:"))
                victim.proc.kill()
                killed_at = time.monotonic()
                victim.alive = False
                dead.append(victim)
                await victim.proc.wait()
                survivor = next(i for i in instances if i.alive)
                while True:  # the survivor holds the jobs' lease
                    now_holder = await holder(db_path, "jobs")
                    if now_holder is not None and now_holder.startswith(survivor.name):
                        took = time.monotonic() - killed_at
                        break
                    assert time.monotonic() - killed_at < 10 * LEASE_SECONDS, "jobs not taken over"
                    await asyncio.sleep(0.05)
                await make_due(db_path, late)  # the survivor's ladder reminds these
                return victim.name, took

            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                killing = asyncio.create_task(killer())
                await asyncio.gather(*(chat_writer(session, c) for c in range(CHATS)))
                victim, took = await killing
            survivor = next(i for i in instances if i.alive)

            total = CHATS * PER_CHAT
            for _ in range(1200):  # everything handled, delivered, and the late cases reminded
                if (await count(db_path, "SELECT count(*) FROM inbox WHERE state = 'done'") >= total
                        and await count(db_path, "SELECT count(*) FROM outbox"
                                        " WHERE sent_at IS NULL AND failed_at IS NULL") == 0
                        and await count(db_path, "SELECT count(DISTINCT case_id) FROM events"
                                        f" WHERE action = 'remind' AND case_id IN ({','.join('?' * 4)})",
                                        tuple(late)) == 4):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3 * 1.2)  # a few more runs of the repeating job: nothing again
        finally:
            errors = {}
            for instance in instances:
                if instance.proc.returncode is None:
                    instance.proc.send_signal(signal.SIGTERM)
                errors[instance.name] = await finish(instance.proc)

        assert survivor.proc.returncode == 0, errors[survivor.name][-3000:]
        assert "Traceback" not in errors[survivor.name], errors[survivor.name][-3000:]
        assert "releasing the leases failed" not in errors[survivor.name]  # a clean stop
        # The jobs were taken over within the lease (and a little for a loaded machine).
        assert took <= LEASE_SECONDS + 1.5, (took, victim)
        assert f"lease jobs taken (instance {survivor.name}" in errors[survivor.name]

        # Every update handled; every change asked for exactly once.
        assert await count(db_path, "SELECT count(*) FROM inbox WHERE state != 'done'") == 0
        for c in range(CHATS):
            for text in notes[c]:
                assert await count(db_path, "SELECT count(*) FROM events e JOIN event_texts t"
                                   " ON t.event_id = e.id WHERE e.action = 'note' AND t.text = ?",
                                   (text,)) == 1, text

        # Each chat's updates handled in order: its notes were recorded in the order sent, and
        # answered in that order (an answer may come twice for the update in hand at the kill).
        for c, person in enumerate(people):
            recorded = [str(r[0]) for r in await counts(
                db_path, "SELECT t.text FROM events e JOIN event_texts t ON t.event_id = e.id"
                " WHERE e.action = 'note' AND e.actor_id = ? ORDER BY e.id", (person["id"],))]
            assert recorded == notes[c], c
            answers = [int(m.group(1)) for call in api.calls_of("sendMessage")
                       if int(call.params.get("chat_id", 0)) == person["id"]
                       and (m := re.search(r"Note added to #(\d+)", str(call.params.get("text", ""))))]
            collapsed = [n for k, n in enumerate(answers) if k == 0 or answers[k - 1] != n]
            assert collapsed == [case_of(c, i) for i in range(PER_CHAT)], c

        # No message lost: every outbox row sent; the working group told of every note.
        assert await count(db_path, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        told = " ".join(str(call.params.get("text", "")) for call in api.calls_of("sendMessage")
                        if int(call.params.get("chat_id", 0)) == WG and call.ok)
        missing = [t for c in range(CHATS) for t in notes[c] if t not in told]
        assert not missing, missing[:5]

        # No reminder twice (each due case reminded once, by whichever instance held the jobs),
        # no digest twice.
        reminded = await counts(db_path, "SELECT case_id, count(*) FROM events WHERE action = 'remind'"
                                " GROUP BY case_id")
        assert sorted(case for case, _n in reminded) == sorted(early + late)
        assert all(n == 1 for _case, n in reminded), reminded
        warned = await counts(db_path, "SELECT case_id, count(*) FROM events WHERE action = 'warn'"
                              " GROUP BY case_id HAVING count(*) > 1")
        assert warned == []
        digests = [call for call in api.calls_of("sendMessage")
                   if int(call.params.get("chat_id", 0)) == WG and "Digest:" in str(call.params.get("text", ""))]
        days = await count(db_path, "SELECT count(*) FROM digest_log WHERE chat_id = ?", (WG,))
        assert len(digests) == days >= 1
        assert await audit.verify(database_target(db_path)) == []


async def test_one_instance_polls_the_other_stands_by_and_takes_over_when_it_stops(
        tmp_path: Path) -> None:
    """Long polling: Telegram serves one getUpdates at a time, so the second instance waits on
    the "poller" lease (and on the "jobs" one) instead of polling beside the first."""
    from dataclasses import replace

    from bot.config import InstanceSettings
    from bot.service import Runner
    from tests.conftest import Clock, register_people
    from tests.harness import e2e_settings

    clock = Clock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    with FakeBotAPI() as api:
        settings = replace(e2e_settings(api, tmp_path), instances=InstanceSettings(lease_seconds=1.5))
        first = Runner(settings, api.token, clock=clock, rate_limiter=False, jobs=False, poll_seconds=1)
        second = Runner(settings, api.token, clock=clock, rate_limiter=False, jobs=False, poll_seconds=1)
        await first.start()
        try:
            await register_people(first.services.people, clock())
            await second.start()
            assert first._source is not None and second._source is None
            assert first.services.sender.alive and not second.services.sender.alive
            assert (await second.health())["sender"] == "standby"
            assert (await second.health())["ok"] is True
            wg = api.user(WG, "Sophea")
            api.send_message(wg, api.private_chat(wg), "/help")
            await api.wait_for("sendMessage", lambda c: "What you can do" in str(c.params.get("text")),
                               timeout=10)
            await first.stop()  # a clean stop: the leases are released
            deadline = time.monotonic() + 10
            while second._source is None or not second.services.sender.alive:
                assert time.monotonic() < deadline, "the standby did not take over"
                await asyncio.sleep(0.05)
            mark = api.mark()
            api.send_message(wg, api.private_chat(wg), "/help")
            await api.wait_for("sendMessage", lambda c: "What you can do" in str(c.params.get("text")),
                               timeout=10, after=mark)
        finally:
            await first.stop()
            await second.stop()
