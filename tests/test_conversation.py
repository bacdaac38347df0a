"""The citizen's side of their case (bot/domain/conversation.py), channel-neutral: Yes / No,
because…, answering the unit's question, withdrawing, the status of a case; every choice checked
again (their own case only, what was asked still open, the version current)."""

from __future__ import annotations

from bot.config import Settings
from bot.domain.cases import Actor, Change
from bot.domain.citizens import CitizenStore
from bot.domain.conversation import Conversation, Route, Routed, parse_choice
from bot.domain.requests import RequestService
from bot.domain.rules import Action, Status
from tests.conftest import DP_CHAT, OFFICIAL, WG, WG_CHAT, Clock, Domain

wg = Actor(WG, "Wg Member", WG_CHAT)
official = Actor(OFFICIAL, "Dara Official", DP_CHAT)


def conversation(d: Domain, settings: Settings) -> Conversation:
    return Conversation(d.db, d.cases, CitizenStore(d.db),
                        RequestService(d.db, d.cases.tell_requests_waiting), settings)


async def new_citizen(d: Domain, clock: Clock, address: str = "7001", channel: str = "telegram") -> int:
    async with d.db.transaction() as tx:
        who = await CitizenStore(d.db).find_or_create(tx, channel, address, clock(), name="Sok")
    return who.id


async def resolved(d: Domain, clock: Clock, citizen_id: int) -> int:
    n = await d.new_case(clock, citizen_id=citizen_id)
    await d.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await d.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await d.cases.apply(n, Action.RESOLVE, official, Change(text="The road was repaired."), clock())
    return n


async def to_citizen(d: Domain, address: str) -> list[str]:
    rows = await d.db.all("SELECT text FROM outbox WHERE kind = 'text' AND chat_id = ? ORDER BY id",
                          (int(address),))
    return [str(r[0]) for r in rows]


def test_choices_carry_ids_only_and_forged_ones_are_nothing() -> None:
    assert parse_choice("cz:y:12:3") is not None
    assert parse_choice("cz:a:12") is not None
    for forged in ("cz:y:12", "cz:a:12:3", "cz:x:1", "cz:y:-1:2", "cz:y:1:២", "c:1:2:cfm", "cz:s:abc", ""):
        assert parse_choice(forged) is None, forged


async def test_yes_closes_the_case_as_confirmed_by_the_citizen(domain: Domain, clock: Clock,
                                                               settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await resolved(domain, clock, cid)
    (ask,) = await talk.waiting(cid)
    assert ask.case_id == n and ask.kind == "confirm"
    case = await domain.cases.get(n)
    assert await talk.press(cid, f"cz:y:{n}:{case.version}", clock()) is None
    case = await domain.cases.get(n)
    assert case.status is Status.CLOSED and case.confirmed_via == "citizen"
    assert await talk.waiting(cid) == []
    # The same button again: nothing changes, a polite word.
    again = await talk.press(cid, f"cz:y:{n}:{case.version - 1}", clock())
    assert again is not None and "already settled" in again.text
    assert (await domain.cases.get(n)).version == case.version


async def test_no_asks_why_and_the_reason_reopens_it_to_the_same_unit(domain: Domain, clock: Clock,
                                                                     settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await resolved(domain, clock, cid)
    v = (await domain.cases.get(n)).version
    assert await talk.press(cid, f"cz:n:{n}:{v}", clock()) is None
    assert (await talk.waiting(cid))[0].kind == "why_not"
    assert f"What is still wrong with case #{n}?" in (await to_citizen(domain, "7001"))[-1]
    short = await talk.route_text(cid, "no", clock())
    assert short.route is Route.DISPUTED and short.reply is not None
    assert (await domain.cases.get(n)).status is Status.RESOLVED
    routed = await talk.route_text(cid, "The hole is still there", clock())
    assert routed == Routed(Route.DISPUTED, n, None)
    case = await domain.cases.get(n)
    assert case.status is Status.ASSIGNED and case.unit_key == "pp-dp" and case.reopen_count == 1
    last = (await domain.cases.history(n))[-1]
    assert last.action == "reopen" and last.data.get("disputed") and last.note == "The hole is still there"
    assert await talk.waiting(cid) == []


async def test_a_case_that_is_not_theirs_reads_as_unknown(domain: Domain, clock: Clock,
                                                          settings: Settings) -> None:
    talk = conversation(domain, settings)
    mine, other = await new_citizen(domain, clock, "7001"), await new_citizen(domain, clock, "7002")
    n = await resolved(domain, clock, mine)
    v = (await domain.cases.get(n)).version
    for reply in (await talk.press(other, f"cz:y:{n}:{v}", clock()), await talk.status(other, n),
                  await talk.press(other, f"cz:w:{n}", clock()), await talk.status(other, 999)):
        assert reply is not None and "no request of yours with the number #" in reply.text
    assert (await domain.cases.get(n)).status is Status.RESOLVED
    refused = await domain.db.one("SELECT COUNT(*) FROM refusals WHERE case_id = ?", (n,))
    assert refused is not None and refused[0] >= 1


async def test_a_question_passed_on_and_the_citizens_answer(domain: Domain, clock: Clock,
                                                           settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await domain.new_case(clock, citizen_id=cid)
    await domain.cases.apply(n, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.ACCEPT, official, Change(), clock())
    await domain.cases.apply(n, Action.NEED_INFO, official, Change(text="Which street exactly?"), clock())
    await domain.cases.apply(n, Action.ASK_CITIZEN, wg, Change(), clock())
    assert "Which street exactly?" in (await to_citizen(domain, "7001"))[-1]
    prompt = await talk.press(cid, f"cz:a:{n}", clock())
    assert prompt is not None and f"#{n}" in prompt.text
    routed = await talk.route_text(cid, f"#{n} Street 19, near the market", clock())
    assert routed.route is Route.ANSWERED and routed.reply is None
    case = await domain.cases.get(n)
    assert case.status is Status.IN_PROGRESS
    last = (await domain.cases.history(n))[-1]
    assert last.action == "provide_info" and last.note == "Street 19, near the market"
    unit = await domain.db.one("SELECT text FROM outbox WHERE chat_id = ? ORDER BY id DESC LIMIT 1", (DP_CHAT,))
    assert unit is not None and "Answer from the citizen" in unit[0]


async def test_a_case_number_alone_is_its_status(domain: Domain, clock: Clock, settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await domain.new_case(clock, citizen_id=cid)
    routed = await talk.route_text(cid, f"#{n}", clock())
    assert routed.route is Route.STATUS and routed.reply is not None and f"#{n}" in routed.reply.text
    assert (await talk.route_text(cid, "The bridge is broken", clock())) == Routed.NEW


async def test_withdrawing_a_case_and_a_waiting_request(domain: Domain, clock: Clock,
                                                       settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await domain.new_case(clock, citizen_id=cid)
    assert await talk.withdraw(cid, case_id=n, now=clock()) is None
    case = await domain.cases.get(n)
    assert case.status is Status.CLOSED and case.outcome == "withdrawn"
    async with domain.db.transaction() as tx:
        rid = await talk.requests.receive(tx, "tg:1:1", "telegram", cid, "Streetlight out", clock())
    assert rid is not None
    assert await talk.withdraw(cid, request_id=rid, now=clock()) is None
    request = await talk.requests.get(rid)
    assert request is not None and request.status == "withdrawn"
    mine = await talk.my_requests(cid)
    assert {(m.request_id, m.case_id, m.open) for m in mine} == {(rid, None, False), (None, n, False)}


async def test_no_answer_leaves_it_to_the_working_group_and_a_late_yes_changes_nothing(
        domain: Domain, clock: Clock, settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    n = await resolved(domain, clock, cid)
    v = (await domain.cases.get(n)).version
    clock.advance(days=settings.deadlines.verify_days + 2)
    await domain.cases.run_ladder(clock())
    reminded = await domain.db.all("SELECT text FROM outbox WHERE chat_id = ? AND text LIKE ?",
                                   (WG_CHAT, f"%#{n}%resolved but not verified%"))
    assert reminded  # the verification deadline passed: the working group is reminded, as before
    assert (await domain.cases.get(n)).status is Status.RESOLVED
    await domain.cases.apply(n, Action.VERIFY, wg, Change(outcome="confirmed"), clock())
    assert await talk.waiting(cid) == []
    late = await talk.press(cid, f"cz:y:{n}:{v}", clock())
    assert late is not None and late.text.startswith("Thank you. This was already settled.")
    case = await domain.cases.get(n)
    assert case.confirmed_via == "phone" and case.version == v + 1
