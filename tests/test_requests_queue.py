"""The working group's decisions on requests from citizens, in the domain: a case made of a
request (once), not a request, a duplicate of a case (the citizen told), abusive with a reason;
rights first, each request decided once, the decisions counted and in the audit chain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import audit
from bot.domain.cases import Actor
from bot.domain.citizens import CitizenStore
from bot.domain.digest import DigestService
from bot.domain.errors import CaseNotFound, Forbidden, Invalid
from bot.domain.requests import RequestDecided, RequestDecisions, RequestNotFound, RequestService
from bot.domain.rules import Action
from bot.i18n import use_locale
from tests.conftest import ADMIN, OFFICIAL, STRANGER, WG, WG_CHAT, Clock, Domain

wg = Actor(WG, "Wg Member", WG_CHAT)
admin = Actor(ADMIN, "Admin", None)
official = Actor(OFFICIAL, "Dara Official", None)
stranger = Actor(STRANGER, "Stranger", None)


class Queue:
    def __init__(self, d: Domain) -> None:
        self.d = d
        self.citizens = CitizenStore(d.db)
        self.requests = RequestService(d.db, d.cases.tell_requests_waiting)
        self.decide = RequestDecisions(d.db, d.cases, self.citizens)

    async def citizen(self, clock: Clock, address: str = "7001", channel: str = "telegram", *,
                      name: str = "Sok Chea", contact: str = "", language: str | None = None) -> int:
        async with self.d.db.transaction() as tx:
            who = await self.citizens.find_or_create(tx, channel, address, clock(), name=name,
                                                     language=language)
            if contact:
                self.citizens.set_contact(tx, who.id, name, contact)
        return who.id

    async def request(self, clock: Clock, citizen_id: int | None, key: str, text: str = "The road "
                      "to the school is flooded", source: str = "telegram",
                      data: dict[str, Any] | None = None) -> int:
        async with self.d.db.transaction() as tx:
            rid = await self.requests.receive(tx, key, source, citizen_id, text, clock(), data)
        assert rid is not None
        return rid

    async def row(self, rid: int) -> Any:
        request = await self.requests.get(rid)
        assert request is not None
        return request


@pytest.fixture
def q(domain: Domain) -> Queue:
    return Queue(domain)


async def to_chat(d: Domain, chat: int) -> list[str]:
    return [str(r[0]) for r in await d.db.all("SELECT text FROM outbox WHERE chat_id = ? ORDER BY id",
                                               (chat,))]


async def test_a_case_is_made_of_a_request_once(domain: Domain, clock: Clock, q: Queue) -> None:
    cid = await q.citizen(clock, contact="012 999 888")
    received = clock()
    clock.advance(hours=3)
    data = {"summary": "Flooded road", "details": "Water 50 cm deep near the school.",
            "place_unit_id": await domain.unit_id("pp-dp"), "category_id": await domain.category_id("land"),
            "files": [{"kind": "photo", "file_id": "PHOTO-1"}, {"kind": "video", "file_id": "V"}]}
    async with domain.db.transaction() as tx:
        rid = await q.requests.receive(tx, "tg:1:1", "telegram", cid, "Flooded road", received, data)
    assert rid is not None
    draft = await q.decide.draft(wg, rid, clock())
    assert (draft.source, draft.received_at, draft.summary, draft.description) == (
        "telegram", received, "Flooded road", "Water 50 cm deep near the school.")
    assert (draft.citizen_name, draft.citizen_contact, draft.citizen_id, draft.request_id) == (
        "Sok Chea", "012 999 888", cid, rid)
    assert draft.place_unit_id == await domain.unit_id("pp-dp")
    assert draft.category_id == await domain.category_id("land")
    assert [(a.kind, a.file_id) for a in draft.attachments] == [("photo", "PHOTO-1")]

    case = await domain.cases.create(wg, draft, clock())
    assert case.citizen_id == cid and case.request_id == rid and case.source == "telegram"
    request = await q.row(rid)
    assert (request.status, request.case_id, request.decided_by, request.decided_at) == (
        "case", case.id, WG, clock())
    assert (await domain.cases.history(case.id))[0].data == {"source": "telegram", "request": rid}

    # The same draft again (a second Create), or any other decision: refused, nothing changed.
    with pytest.raises(RequestDecided) as second:
        await domain.cases.create(wg, draft, clock())
    with use_locale("en"):
        assert second.value.user_message() == f"Request #{rid} was already made into case #{case.id}."
    for attempt in (q.decide.not_a_request(wg, rid, clock()), q.decide.abusive(wg, rid, "spam", clock()),
                    q.decide.draft(wg, rid, clock())):
        with pytest.raises(RequestDecided):
            await attempt
    assert [r[0] for r in await domain.db.all("SELECT id FROM cases")] == [case.id]


async def test_a_forged_draft_makes_no_case(domain: Domain, clock: Clock, q: Queue) -> None:
    mine, other = await q.citizen(clock, "1"), await q.citizen(clock, "2")
    rid = await q.request(clock, mine, "tg:1:1")
    draft = await q.decide.draft(wg, rid, clock())
    draft.citizen_id = other
    with pytest.raises(Invalid):
        await domain.cases.create(wg, draft, clock())
    assert (await q.row(rid)).status == "pending"
    assert await domain.db.all("SELECT id FROM cases") == []


async def test_a_messenger_request_fills_what_it_has(domain: Domain, clock: Clock, q: Queue) -> None:
    cid = await q.citizen(clock, "PSID-9", "messenger", name="Dara Vann")
    text = "Hello minister\nThe bridge in our village is broken, please help, children cannot cross it."
    rid = await q.request(clock, cid, "fb:m:mid.1", text, "facebook_message")
    draft = await q.decide.draft(admin, rid, clock())
    assert draft.summary == "Hello minister" and draft.description == text
    assert draft.citizen_name == "Dara Vann" and draft.citizen_contact == ""  # no PSID shown
    assert draft.category_id is None and draft.place_unit_id is None and draft.attachments == []


async def test_only_the_working_group_decides(domain: Domain, clock: Clock, q: Queue) -> None:
    rid = await q.request(clock, await q.citizen(clock), "tg:1:1")
    for who in (official, stranger):
        for attempt in (q.decide.not_a_request(who, rid, clock()), q.decide.abusive(who, rid, "spam!", clock()),
                        q.decide.duplicate(who, rid, 1, clock()), q.decide.draft(who, rid, clock()),
                        q.decide.may_see(who, clock())):
            with pytest.raises(Forbidden):
                await attempt
    assert (await q.row(rid)).status == "pending"
    refused = await domain.db.all("SELECT tg_id, action FROM refusals ORDER BY id")
    assert {tuple(r) for r in refused} == {(OFFICIAL, "decide_request"), (STRANGER, "decide_request"),
                                           (OFFICIAL, "inbox"), (STRANGER, "inbox")}
    # Rights first: someone without them learns nothing of a request that is not there.
    with pytest.raises(Forbidden):
        await q.decide.check(official, 999, clock())
    with pytest.raises(RequestNotFound):
        await q.decide.check(wg, 999, clock())


async def test_not_a_request_is_recorded_once_and_tells_nobody(domain: Domain, clock: Clock, q: Queue) -> None:
    cid = await q.citizen(clock)
    rid = await q.request(clock, cid, "tg:1:1", "Thank you!")
    before = await domain.db.one("SELECT COUNT(*) FROM outbox")
    request = await q.decide.not_a_request(wg, rid, clock())
    assert (request.status, request.decided_by, request.decided_at, request.case_id) == (
        "not_request", WG, clock(), None)
    with pytest.raises(RequestDecided) as again:
        await q.decide.not_a_request(admin, rid, clock())
    with use_locale("en"):
        assert again.value.user_message() == f"Request #{rid} was already marked as not a request."
    assert (await q.row(rid)).decided_by == WG
    assert await domain.db.one("SELECT COUNT(*) FROM outbox") == before


async def test_abusive_needs_a_reason_and_blocks_nobody(domain: Domain, clock: Clock, q: Queue) -> None:
    cid = await q.citizen(clock)
    rid = await q.request(clock, cid, "tg:1:1", "insults")
    for reason in ("", "  ", "ab", " a  \n "):
        with pytest.raises(Invalid):
            await q.decide.abusive(wg, rid, reason, clock())
    assert (await q.row(rid)).status == "pending"
    request = await q.decide.abusive(wg, rid, "  Insults   the staff ", clock())
    assert (request.status, request.reason, request.decided_by, request.decided_at) == (
        "abusive", "Insults the staff", WG, clock())
    with pytest.raises(RequestDecided):
        await q.decide.abusive(admin, rid, "again", clock())
    # No blacklist: the citizen's next request comes to the queue like any other.
    clock.advance(days=1)
    nxt = await q.request(clock, cid, "tg:1:2", "The street light is out")
    assert [r.id for r in await q.requests.pending()] == [nxt]
    assert (await q.decide.record_of(await q.row(nxt))) is not None


async def test_a_duplicate_links_to_the_case_and_the_citizen_is_told(domain: Domain, clock: Clock, q: Queue) -> None:
    owner = await q.citizen(clock, "11")
    n = await domain.new_case(clock, citizen_id=owner)
    version = (await domain.cases.get(n)).version
    km = await q.citizen(clock, "12", language="km")
    rid = await q.request(clock, km, "tg:12:1", "Same flooded road")
    with pytest.raises(CaseNotFound):
        await q.decide.duplicate(wg, rid, 999, clock())
    request = await q.decide.duplicate(wg, rid, n, clock())
    assert (request.status, request.case_id, request.decided_by) == ("duplicate", n, WG)
    case = await domain.cases.get(n)
    assert case.citizen_id == owner and case.version == version  # the case did not change
    told = await to_chat(domain, 12)
    assert len(told) == 1 and f"#{n}" in told[0] and "ករណី" in told[0]  # in their language
    with pytest.raises(RequestDecided) as again:
        await q.decide.duplicate(wg, rid, n, clock())
    with use_locale("en"):
        assert again.value.user_message() == f"Request #{rid} was already joined to case #{n} as a duplicate."
    assert len(await to_chat(domain, 12)) == 1  # told once

    # The case's own citizen writing again: "added to your case".
    rid2 = await q.request(clock, owner, "tg:11:2", "Any news?")
    await q.decide.duplicate(wg, rid2, n, clock())
    assert (await to_chat(domain, 11))[-1] == (  # after "received, #n" when the case was made
        f"Thank you. Your message was added to your case #{n}, which is being handled.")


async def test_a_duplicate_of_a_comment_is_a_private_reply(domain: Domain, clock: Clock, q: Queue) -> None:
    n = await domain.new_case(clock)
    cid = await q.citizen(clock, "PSID-3", "messenger")
    rid = await q.request(clock, cid, "fb:c:55_66", "Same here!", "facebook_comment",
                          {"comment_id": "55_66", "post_id": "55"})
    await q.decide.duplicate(wg, rid, n, clock())
    row = await domain.db.one("SELECT kind, text, payload FROM outbox WHERE citizen_id = ?", (cid,))
    assert row is not None and row[0] == "messenger" and f"joined to case #{n}" in row[1]
    assert json.loads(row[2]) == {"comment_id": "55_66"}


async def test_no_duplicate_of_a_finished_case(domain: Domain, clock: Clock, q: Queue) -> None:
    n = await domain.new_case(clock)
    m = await domain.new_case(clock)
    from bot.domain.model import Change

    await domain.cases.apply(n, Action.MERGE, wg, Change(into=m), clock())
    rid = await q.request(clock, await q.citizen(clock), "tg:1:1")
    with pytest.raises(Invalid):
        await q.decide.duplicate(wg, rid, n, clock())
    assert (await q.row(rid)).status == "pending"


async def test_decisions_are_counted_and_chained(domain: Domain, clock: Clock, q: Queue) -> None:
    cid = await q.citizen(clock)
    n = await domain.new_case(clock)
    ids = [await q.request(clock, cid, f"tg:1:{i}") for i in range(5)]
    await q.decide.not_a_request(wg, ids[0], clock())
    await q.decide.abusive(wg, ids[1], "Threats", clock())
    await q.decide.abusive(admin, ids[2], "Threats again", clock())
    await q.decide.duplicate(wg, ids[3], n, clock())
    counts = await q.requests.counts()
    assert counts == {"pending": 1, "case": 0, "not_request": 1, "duplicate": 1, "abusive": 2,
                      "withdrawn": 0}
    assert (await q.requests.counts(end=clock()))["abusive"] == 0  # received at clock(): not before
    records = [json.loads(r[0]) for r in await domain.db.all(
        "SELECT data FROM audit_log WHERE kind = 'request' ORDER BY seq")]
    assert records == [
        {"request": ids[0], "decision": "not_request", "case": None, "by": WG},
        {"request": ids[1], "decision": "abusive", "case": None, "by": WG},
        {"request": ids[2], "decision": "abusive", "case": None, "by": ADMIN},
        {"request": ids[3], "decision": "duplicate", "case": n, "by": WG},
    ]
    assert "Threats" not in json.dumps(records)  # no citizen's words, no reasons in the chain
    assert await audit.verify(domain.db) == []
    # The citizen's record, as the queue shows it: plain counts.
    record = await q.decide.record_of(await q.row(ids[4]))
    assert record is not None and (record.earlier_requests, record.cases) == (4, 0)
    assert await q.decide.position(await q.row(ids[4])) == 0


async def test_the_working_groups_digest_counts_requests_waiting(domain: Domain, clock: Clock, q: Queue) -> None:
    digests = DigestService(domain.db, domain.settings, domain.units, domain.people)
    with use_locale("en"):
        assert "/inbox" not in await digests.build(None, clock(), "all units")
        cid = await q.citizen(clock)
        for i in range(3):
            await q.request(clock, cid, f"tg:1:{i}")
        assert "📥 3 requests from citizens are waiting: /inbox" in await digests.build(
            None, clock(), "all units")
        scope = domain.units.subtree(await domain.unit_id("pp"))
        assert "/inbox" not in await digests.build(scope, clock(), "Phnom Penh")  # a supervisor's
