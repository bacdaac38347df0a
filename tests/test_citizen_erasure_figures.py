"""A citizen's "erase my data" (their cases, requests, record; the figures and the audit chain
unchanged), and the figures of citizens in the loop: by channel, confirmed by whom, withdrawals,
abusive requests, small counts hidden in public."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from bot import audit
from bot.audit_cli import cli_erase
from bot.config import Settings
from bot.domain.cases import Change
from bot.domain.citizen_figures import citizen_figures, public
from bot.domain.citizens import CitizenStore
from bot.domain.model import citizen_actor
from bot.domain.rules import Action
from tests.conftest import Clock, Domain
from tests.test_conversation import conversation, new_citizen, resolved, wg


async def test_a_citizen_erases_their_data_and_the_figures_stay(domain: Domain, clock: Clock,
                                                                settings: Settings) -> None:
    talk = conversation(domain, settings)
    cid = await new_citizen(domain, clock)
    done = await resolved(domain, clock, cid)
    waiting = await domain.new_case(clock, citizen_id=cid)
    async with domain.db.transaction() as tx:
        rid = await talk.requests.receive(tx, "tg:9:1", "telegram", cid, "My phone is 012 555 777", clock())
    before = await citizen_figures(domain.db, None, clock() + timedelta(seconds=1))
    clock.advance(hours=1)
    reply = await talk.erase(cid, clock())
    assert "erased" in reply.text
    who = await CitizenStore(domain.db).get(cid)
    assert who is not None and who.name == "" and who.contact == "" and who.address == f"erased:{cid}"
    assert who.erased_at == clock() and not who.reachable
    for n in (done, waiting):
        case = await domain.cases.get(n)
        assert case.citizen_name == "" and case.citizen_contact == "" and case.erased_at == clock()
        assert (await domain.cases.history(n))[-1].actor_name == "citizen"
    request = await talk.requests.get(rid or 0)
    assert request is not None and request.text == "" and request.data == {}
    assert await talk.waiting(cid) == []
    left = await domain.db.all("SELECT text FROM outbox WHERE (citizen_id = ? OR chat_id = 7001) AND text != ''",
                               (cid,))
    assert left == []
    after = await citizen_figures(domain.db, None, clock())
    assert after == before
    problems, _summary = await audit.check(domain.db, None)
    assert problems == []
    # Nothing more reaches them, and their buttons do nothing.
    assert (await talk.status(cid, done)).text.startswith("I find no request of yours")


async def test_figures_by_channel_and_who_confirmed(domain: Domain, clock: Clock, settings: Settings) -> None:
    start = clock()
    by_citizen = []
    for i in range(6):
        cid = await new_citizen(domain, clock, str(8000 + i))
        n = await resolved(domain, clock, cid)
        v = (await domain.cases.get(n)).version
        await domain.cases.apply(n, Action.VERIFY, citizen_actor(cid), Change(outcome="confirmed"),
                                 clock(), expected_version=v)
        by_citizen.append(n)
    phone = await resolved(domain, clock, await new_citizen(domain, clock, "8100"))
    await domain.cases.apply(phone, Action.VERIFY, wg, Change(outcome="confirmed"), clock())
    gone = await domain.new_case(clock, source="telegram")
    await domain.cases.apply(gone, Action.WITHDRAW, wg, Change(), clock())
    await domain.db.write("INSERT INTO requests(key, source, received_at, status, reason, decided_at)"
                          " VALUES('fb:c:1', 'facebook_comment', ?, 'abusive', 'Insults', ?)",
                          (start.isoformat(), start.isoformat()))
    clock.advance(minutes=1)
    figures = await citizen_figures(domain.db, start, clock())
    assert figures.by_source == {"facebook_message": 7, "telegram": 1}
    assert (figures.confirmed_by_citizen, figures.confirmed_by_phone) == (6, 1)
    assert figures.withdrawn == 1 and figures.abusive == {"facebook_comment": 1}
    shown = public(figures)
    assert shown["share_by_citizen"] is None  # 1 by phone: a small count, the share would give it away
    assert shown["withdrawn"] == "<5" and shown["abusive"] == [{"source": "facebook_comment", "requests": "<5"}]
    # A past period holds: a later reopening does not change who confirmed then.
    clock.advance(days=1)
    await domain.cases.apply(by_citizen[0], Action.REOPEN, wg, Change(text="Came back"), clock())
    assert await citizen_figures(domain.db, start, start + timedelta(minutes=1)) == figures


async def test_the_command_line_erases_a_citizen(domain: Domain, clock: Clock, settings: Settings,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cid = await new_citizen(domain, clock, "7300")
    n = await domain.new_case(clock, citizen_id=cid)
    assert await cli_erase(settings, argparse.Namespace(cases=[], citizen=None, reason="Their request")) == 2
    assert await cli_erase(settings, argparse.Namespace(cases=[], citizen=cid, reason="Their request")) == 0
    assert capsys.readouterr().out.splitlines() == [f"#{n}: personal data erased"]
    who = await CitizenStore(domain.db).get(cid)
    assert who is not None and who.erased_at is not None and who.name == ""
    assert (await domain.cases.history(n))[-1].note == "Their request"
