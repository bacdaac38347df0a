"""Two instances on one database, piece by piece with an injected clock: the leases (taken,
renewed, expired, taken over, released; a dead holder of this host), the keeper's gained and
lost, the inbox's claims in each chat's order, the sender's fence, and the ladder's step not
taken twice by two runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_settings
from bot.db import Database
from bot.domain.cases import Actor, Change
from bot.domain.rules import Action
from bot.inbox import Claim, Inbox, Item
from bot.lease import JOBS, Fence, Instance, Keeper, Leases
from tests.conftest import WG, Clock, Domain, config_dict

LEASE = 30.0


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = await Database.open(tmp_path / "casebot.sqlite3")
    yield database  # type: ignore[misc]
    await database.close()


def wall() -> Clock:
    return Clock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))


def instance(name: str, pid: int = 4242) -> Instance:
    return Instance(f"{name}:{pid}:abc", name, pid)


# --- leases ---------------------------------------------------------------------------------


async def test_a_lease_is_one_holders_until_it_expires_then_the_others(db: Database) -> None:
    clock = wall()
    a = Leases(db, instance("a"), LEASE, clock)
    b = Leases(db, instance("b"), LEASE, clock)
    assert (await a.acquire(JOBS)).holder == a.me
    assert (await b.acquire(JOBS)).holder == a.me  # held: b only learns until when
    clock.advance(seconds=20)
    assert (await a.acquire(JOBS)).holder == a.me  # renewed: 30 s from now again
    clock.advance(seconds=29)
    assert (await b.acquire(JOBS)).holder == a.me
    clock.advance(seconds=2)  # a did not renew in time (it died, or hung)
    taken = await b.acquire(JOBS)
    assert taken.holder == b.me and taken.expires_at == clock() + timedelta(seconds=LEASE)
    assert (await a.acquire(JOBS)).holder == b.me  # a learns it lost it
    await b.release(JOBS)
    assert (await a.acquire(JOBS)).holder == a.me  # released: taken at once
    await b.release(JOBS)  # not b's: nothing happens
    assert (await db.one("SELECT holder FROM leases WHERE name = ?", (JOBS,)))[0] == a.me  # type: ignore[index]


async def test_a_holder_of_this_host_whose_process_is_gone_is_taken_over_at_once(db: Database) -> None:
    clock = wall()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = Instance.new()
    dead = Leases(db, Instance(f"{me.host}:{gone.pid}:old", me.host, gone.pid), LEASE, clock)
    await dead.acquire(JOBS)
    assert me.dead(dead.me)
    assert (await Leases(db, me, LEASE, clock).acquire(JOBS)).holder == me.id
    # A live process of this host, another host's, or this very process: not known dead.
    assert not me.dead(f"{me.host}:{os.getppid()}:x")
    assert not me.dead(f"elsewhere:{gone.pid}:x")
    assert not me.dead(f"{me.host}:{os.getpid()}:other-runner")
    assert not me.dead("not an id")


async def test_the_keeper_gives_the_work_up_when_the_lease_is_taken_and_takes_it_when_free(
        db: Database) -> None:
    clock = wall()
    events: list[str] = []

    def keeper(name: str) -> Keeper:
        k = Keeper(Leases(db, instance(name), LEASE, clock))

        async def gained() -> None:
            events.append(f"{name} gained")

        async def lost() -> None:
            events.append(f"{name} lost")

        k.want(JOBS, gained, lost)
        return k

    a, b = keeper("a"), keeper("b")
    await a.turn()
    await b.turn()
    assert events == ["a gained"] and a.holds(JOBS) and not b.holds(JOBS)
    assert b.held_elsewhere(JOBS)
    clock.advance(seconds=LEASE + 1)  # a hung past its lease
    assert not b.held_elsewhere(JOBS)
    await b.turn()
    await a.turn()
    assert events == ["a gained", "b gained", "a lost"]
    await b.stop()  # a clean stop: lost, and released for a at once
    await a.turn()
    assert events[-2:] == ["b lost", "a gained"]


async def test_the_keeper_gives_the_work_up_before_its_lease_can_expire_when_it_cannot_renew(
        db: Database) -> None:
    clock = wall()
    leases = Leases(db, instance("a"), LEASE, clock)
    events: list[str] = []

    async def gained() -> None:
        events.append("gained")

    async def lost() -> None:
        events.append("lost")

    k = Keeper(leases)
    k.want(JOBS, gained, lost)
    await k.turn()

    async def broken(name: str) -> None:
        raise OSError("database unreachable")

    leases.acquire = broken  # type: ignore[assignment,method-assign]
    clock.advance(seconds=LEASE / 3)
    await k.turn()
    assert events == ["gained"]  # one missed renewal: still its
    clock.advance(seconds=LEASE / 3)
    await k.turn()
    assert events == ["gained", "lost"]  # 2/3 of the lease: given up, before another may take it


# --- the inbox's claims ---------------------------------------------------------------------


def item(n: int, chat: str) -> Item:
    return Item(f"tg:{n}", chat, "{}")


async def test_a_chat_is_in_one_instances_hands_at_a_time_and_its_rows_go_in_order(db: Database) -> None:
    clock = wall()
    inbox = Inbox(db)

    def claim(who: str) -> Claim:
        return Claim.at(who, clock(), LEASE)

    rows = await inbox.add([item(1, "x"), item(2, "x"), item(3, "y")], clock(), claim("a"))
    assert [r.key for r in rows] == ["tg:1", "tg:2", "tg:3"]  # a batch's rows of a chat together
    # b stores x's next row: x is in a's hands, so b does not claim it, nor y's (its own chat
    # is free: b claims its first row).
    rows = await inbox.add([item(4, "x"), item(5, "z")], clock(), claim("b"))
    assert [r.key for r in rows] == ["tg:5"]
    assert await inbox.claim_free(claim("b")) == []  # tg:4 waits behind a's rows
    assert await inbox.take(4, "b") is None
    await inbox.done(1, clock())
    assert await inbox.claim_free(claim("b")) == []  # tg:2 still a's
    await inbox.done(2, clock())
    got = await inbox.claim_free(claim("b"), chat_key="x")
    assert [r.key for r in got] == ["tg:4"]
    stored = await inbox.take(got[0].id, "b")
    assert stored is not None and stored.key == "tg:4"
    assert await inbox.claim_free(claim("a")) == []  # nothing free


async def test_a_dead_instances_claims_expire_and_its_rows_are_taken_in_order(db: Database) -> None:
    clock = wall()
    inbox = Inbox(db)
    await inbox.add([item(1, "x"), item(2, "x")], clock(), Claim.at("a", clock(), LEASE))
    await inbox.add([item(3, "x")], clock(), Claim.at("b", clock(), LEASE))
    clock.advance(seconds=20)
    await inbox.renew_claims(Claim.at("a", clock(), LEASE))  # a alive: its claims last
    clock.advance(seconds=20)
    assert await inbox.claim_free(Claim.at("b", clock(), LEASE)) == []
    clock.advance(seconds=11)  # a died 31 s ago without renewing
    got = await inbox.claim_free(Claim.at("b", clock(), LEASE))
    assert [r.key for r in got] == ["tg:1", "tg:2", "tg:3"]
    # A clean stop releases the claims at once.
    await inbox.add([item(4, "y")], clock(), Claim.at("b", clock(), LEASE))
    await inbox.release_claims("b")
    got = await inbox.claim_free(Claim.at("a", clock(), LEASE))
    assert [r.key for r in got] == ["tg:1", "tg:2", "tg:3", "tg:4"]


# --- the sender's fence ----------------------------------------------------------------------


async def test_a_row_is_marked_sending_only_by_the_holder_and_recovered_only_from_a_dead_one(
        domain: Domain, clock: Clock) -> None:
    db = domain.db
    lease_clock = wall()
    a = Leases(db, instance("a"), LEASE, lease_clock)
    b = Leases(db, instance("b"), LEASE, lease_clock)
    await a.acquire(JOBS)
    await domain.outbox.queue_texts([WG], "hello", clock())
    await domain.outbox.queue_texts([WG], "again", clock())
    ids = [int(r[0]) for r in await db.all("SELECT id FROM outbox ORDER BY id")]
    fence_a, fence_b = Fence(JOBS, a.me, lease_clock), Fence(JOBS, b.me, lease_clock)
    assert not await domain.outbox.mark_sending([ids[0]], clock(), fence_b)  # b holds no lease
    assert await domain.outbox.mark_sending([ids[0]], clock(), fence_a)
    row = await db.one("SELECT sending_at, sending_by FROM outbox WHERE id = ?", (ids[0],))
    assert row is not None and row[0] is not None and row[1] == a.me
    # b starting its sender meanwhile takes nothing a is sending.
    assert (await domain.outbox.recover(clock(), fence_b))[0] == 0
    lease_clock.advance(seconds=LEASE + 1)  # a died
    await b.acquire(JOBS)
    assert not await domain.outbox.mark_sending([ids[1]], clock(), fence_a)  # a's lease is gone
    assert (await domain.outbox.recover(clock(), fence_b))[0] == 1
    row = await db.one("SELECT sending_at, sending_by FROM outbox WHERE id = ?", (ids[0],))
    assert row is not None and tuple(row) == (None, None)


# --- the ladder ------------------------------------------------------------------------------


async def test_two_ladder_runs_over_the_same_due_case_remind_it_once(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    wg = Actor(WG, "Sophea", None)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    clock.advance(days=3)  # its deadline to accept has passed
    due = await domain.cases.due_reminders(clock())
    assert n in due
    # Two instances' runs read the same due case before either commits (the lease was lost
    # mid-way): the second finds it no longer due and leaves it.
    await asyncio.gather(domain.cases._ladder_run([n], clock(), due_only=True),
                         domain.cases._ladder_run([n], clock(), due_only=True))
    reminded = await domain.db.one("SELECT count(*) FROM events WHERE case_id = ? AND action = 'remind'",
                                   (n,))
    assert reminded is not None and reminded[0] == 1


# --- config -------------------------------------------------------------------------------------


def test_instances_config(tmp_path: Path) -> None:
    data = config_dict(tmp_path / "db.sqlite3")
    assert parse_settings(data).instances.lease_seconds == 30
    data["instances"] = {"lease_seconds": 9, "name": "node-a"}
    settings = parse_settings(data)
    assert (settings.instances.lease_seconds, settings.instances.renew_seconds,
            settings.instances.name) == (9, 3, "node-a")
    for bad, message in (({"lease_seconds": 0}, "instances.lease_seconds"),
                         ({"lease_seconds": 7200}, "from 1 to 3600"),
                         ({"name": "a:b"}, "instances.name"),
                         ({"every": 1}, "instances.every: unknown key")):
        data["instances"] = bad
        with pytest.raises(ConfigError, match=message):
            parse_settings(data)
