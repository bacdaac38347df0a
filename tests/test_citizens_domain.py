"""Citizens in the loop, in the domain: who they are, their requests stored once, and their
rights on their own case only (confirm, dispute, answer, withdraw)."""

from __future__ import annotations

import pytest

from bot.domain.cases import Actor, Change
from bot.domain.citizens import CitizenStore, queue_to_citizen
from bot.domain.errors import Forbidden
from bot.domain.model import citizen_actor
from bot.domain.requests import RequestService
from bot.domain.rules import Action, Status
from tests.conftest import DP_CHAT, OFFICIAL, WG, WG_CHAT, Clock, Domain

wg = Actor(WG, "Wg Member", WG_CHAT)
official = Actor(OFFICIAL, "Dara Official", DP_CHAT)


async def new_citizen(d: Domain, clock: Clock, address: str = "1001", channel: str = "telegram") -> int:
    async with d.db.transaction() as tx:
        who = await CitizenStore(d.db).find_or_create(tx, channel, address, clock(), name="Sok")
    return who.id


async def resolved_case(d: Domain, clock: Clock, citizen_id: int) -> int:
    n = await d.new_case(clock, citizen_id=citizen_id)
    await d.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await d.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await d.cases.apply(n, Action.RESOLVE, official, Change(text="The road was repaired."), clock())
    return n


async def test_a_citizen_is_one_row_per_channel_and_address(domain: Domain, clock: Clock) -> None:
    a = await new_citizen(domain, clock)
    clock.advance(hours=1)
    b = await new_citizen(domain, clock)
    c = await new_citizen(domain, clock, channel="messenger")
    assert a == b != c
    who = await CitizenStore(domain.db).get(a)
    assert who is not None and who.last_inbound_at == clock() and who.in_window(clock())


async def test_a_request_is_stored_once_and_the_working_group_pinged_once(domain: Domain, clock: Clock) -> None:
    requests = RequestService(domain.db, domain.cases.tell_requests_waiting)
    cid = await new_citizen(domain, clock)
    ids = []
    for key in ("fb:m:1", "fb:m:1", "fb:m:2"):
        async with domain.db.transaction() as tx:
            ids.append(await requests.receive(tx, key, "facebook_message", cid, "The road is broken", clock()))
    assert ids[0] is not None and ids[1] is None and ids[2] not in (None, ids[0])
    pings = await domain.db.all("SELECT chat_id FROM outbox WHERE payload = '{\"ping\": \"requests\"}'")
    assert [r[0] for r in pings] == [WG_CHAT]  # a burst: one ping
    assert [r.id for r in await requests.pending()] == ids[::2]
    assert await requests.open_count(cid) == 2


async def test_only_the_cases_own_citizen_acts_as_citizen(domain: Domain, clock: Clock) -> None:
    mine, other = await new_citizen(domain, clock, "1"), await new_citizen(domain, clock, "2")
    n = await resolved_case(domain, clock, mine)
    with pytest.raises(Forbidden):
        await domain.cases.apply(n, Action.VERIFY, citizen_actor(other), Change(outcome="confirmed"), clock())
    for action in (Action.ASSIGN, Action.NOTE, Action.RESOLVE, Action.MERGE):
        with pytest.raises(Forbidden):
            await domain.cases.apply(n, action, citizen_actor(mine), Change(text="anything at all"), clock())
    case = await domain.cases.apply(n, Action.VERIFY, citizen_actor(mine), Change(outcome="confirmed"), clock())
    assert case.status is Status.CLOSED and case.outcome == "confirmed" and case.confirmed_via == "citizen"
    last = (await domain.cases.history(n))[-1]
    assert last.actor_name == "citizen" and last.data["via"] == "citizen"


async def test_a_citizen_says_no_and_the_case_goes_back_to_the_unit(domain: Domain, clock: Clock) -> None:
    cid = await new_citizen(domain, clock)
    n = await resolved_case(domain, clock, cid)
    case = await domain.cases.apply(n, Action.REOPEN, citizen_actor(cid),
                                    Change(text="Still broken", outcome="disputed"), clock())
    assert case.status is Status.ASSIGNED and case.unit_key == "pp-dp" and case.reopen_count == 1
    assert (await domain.cases.history(n))[-1].data.get("disputed") is True


async def test_phone_confirmation_is_told_apart(domain: Domain, clock: Clock) -> None:
    cid = await new_citizen(domain, clock)
    n = await resolved_case(domain, clock, cid)
    case = await domain.cases.apply(n, Action.VERIFY, wg, Change(outcome="confirmed"), clock())
    assert case.confirmed_via == "phone"


async def test_withdrawal_closes_the_case_as_withdrawn(domain: Domain, clock: Clock) -> None:
    cid = await new_citizen(domain, clock)
    n = await domain.new_case(clock, citizen_id=cid)
    case = await domain.cases.apply(n, Action.WITHDRAW, citizen_actor(cid), Change(), clock())
    assert case.status is Status.CLOSED and case.outcome == "withdrawn"


async def test_nothing_is_queued_to_an_erased_citizen(domain: Domain, clock: Clock) -> None:
    store = CitizenStore(domain.db)
    cid = await new_citizen(domain, clock, "2002")
    await domain.db.write("UPDATE citizens SET erased_at = ? WHERE id = ?", ("2026-01-01T00:00:00+00:00", cid))
    who = await store.get(cid)
    assert who is not None
    async with domain.db.transaction() as tx:
        assert not queue_to_citizen(tx, who, "Your case is #1", clock())
    fb = await new_citizen(domain, clock, "PSID-1", "messenger")
    who = await store.get(fb)
    assert who is not None
    async with domain.db.transaction() as tx:
        assert queue_to_citizen(tx, who, "Your case is #1 <ok>", clock(), choices=[[("Yes", "cz:y:1")]])
    row = await domain.db.one("SELECT kind, citizen_id, text, payload FROM outbox WHERE citizen_id = ?", (fb,))
    assert row is not None and row[0] == "messenger" and row[2] == "Your case is #1 <ok>"
    assert '"quick_replies": [["Yes", "cz:y:1"]]' in row[3]


def test_a_citizens_events_say_citizen_in_the_readers_language() -> None:
    from bot.domain.model import CITIZEN_ACTOR_ID, actor_shown
    from bot.i18n import use_locale

    with use_locale("km"):
        assert actor_shown("citizen", CITIZEN_ACTOR_ID) == "ពលរដ្ឋ"
        assert actor_shown("citizen") == "ពលរដ្ឋ"  # a case's last actor: the name alone
        assert actor_shown("Dara", 1003) == "Dara"
    with use_locale("en"):
        assert actor_shown("citizen", CITIZEN_ACTOR_ID) == "citizen"
