"""The daily digest: content per scope, no personal data, once per day per recipient, /digest."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from bot.domain.cases import Actor, Change
from bot.domain.digest import DigestService
from bot.domain.errors import Forbidden
from bot.domain.model import days_between
from bot.domain.rules import Action
from bot.domain.units import UnitService
from tests.conftest import (
    LIAISON,
    OFFICIAL,
    OTHER_OFFICIAL,
    STRANGER,
    SUPERVISOR,
    WG,
    WG_CHAT,
    Clock,
    Domain,
)
from tests.harness import Bot

wg = Actor(WG, "Wg Member", WG_CHAT)
official = Actor(OFFICIAL, "Dara", None)
liaison = Actor(LIAISON, "Rith", None)

# Citizens with names and contacts that must never appear in a digest.
CITIZENS = [(f"Citizen Neang{i} Sreymom", f"097 555 01{i:02d}") for i in range(12)]
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Phnom Penh


def digests(d: Domain) -> DigestService:
    return DigestService(d.db, d.settings, d.units, d.people)


async def case(d: Domain, clock: Clock, place: str, i: int, summary: str = "Road flooded") -> int:
    name, contact = CITIZENS[i]
    return await d.new_case(clock, place_unit_id=await d.unit_id(place), citizen_name=name,
                            citizen_contact=contact, summary=summary)


async def act(d: Domain, clock: Clock, n: int, action: Action, who: Actor = wg, **change: object) -> None:
    await d.cases.apply(n, action, who, Change(**change), clock())  # type: ignore[arg-type]


async def ministry(d: Domain, clock: Clock) -> dict[str, int]:
    """A small history: two cases a month old (overdue), the rest in the last 24 hours."""
    c: dict[str, int] = {}
    clock.now = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    c["late_dp"] = await case(d, clock, "pp-dp", 0)
    await act(d, clock, c["late_dp"], Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, c["late_dp"], Action.ACCEPT, official)
    c["late_sr"] = await case(d, clock, "sr", 1)
    await act(d, clock, c["late_sr"], Action.ASSIGN, unit_key="sr")
    clock.now = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    c["waiting"] = await case(d, clock, "pp-dp", 2)
    await act(d, clock, c["waiting"], Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, c["waiting"], Action.NEED_INFO, official, text="Which plot?")
    c["queue_ck"] = await case(d, clock, "pp-ck", 3)  # Chamkar Mon has no chat: stays in the queue
    c["resolved"] = await case(d, clock, "pp-dp", 4)
    await act(d, clock, c["resolved"], Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, c["resolved"], Action.RESOLVE, official, text="Drain cleared today")
    c["closed"] = await case(d, clock, "pp-dp", 5)
    await act(d, clock, c["closed"], Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, c["closed"], Action.RESOLVE, official, text="Fence put back in place")
    await act(d, clock, c["closed"], Action.VERIFY, outcome="confirmed")
    c["forwarded"] = await case(d, clock, "pp-dp", 6)
    await act(d, clock, c["forwarded"], Action.FORWARD, unit_key="mlm", channel="letter",
              text="Land titles are theirs")
    c["duplicate"] = await case(d, clock, "pp-dp", 7)
    await act(d, clock, c["duplicate"], Action.MERGE, into=c["late_dp"])
    c["bouncing"] = await case(d, clock, "pp-dp", 8)
    await act(d, clock, c["bouncing"], Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, c["bouncing"], Action.RETURN, official, text="Not in our district")
    await act(d, clock, c["bouncing"], Action.FORWARD, unit_key="mlm", channel="phone", text="Land?")
    await act(d, clock, c["bouncing"], Action.DECLINE, liaison, text="Not land registry")
    c["sr_new"] = await case(d, clock, "sr", 9)
    clock.now = NOW
    return c


def assert_no_personal_data(text: str) -> None:
    for name, contact in CITIZENS:
        assert name not in text and contact not in text and "Neang" not in text, text


def section(text: str, heading: str) -> str:
    """The lines of a digest from a heading to the next blank line."""
    part = text.split(heading, 1)[1]
    return part.split("\n\n", 1)[0]


async def test_supervisor_digest_covers_the_subtree_only(domain: Domain, clock: Clock) -> None:
    c = await ministry(domain, clock)
    pp = domain.units.subtree(await domain.unit_id("pp"))
    text = await digests(domain).build(pp, clock(), "Phnom Penh")
    assert text.startswith("📋 <b>Digest: Phnom Penh</b> · 2 Nov 2026, 09:00")
    # New: the six created yesterday in Phnom Penh (the forwarded one is with the institution).
    assert "Last 24 hours: 6 new · 2 resolved · 1 closed" in text  # the merged one never counts
    assert section(text, "<b>Open: 5</b>").splitlines()[1:] == [
        "• New — in the working group's queue: 2",  # Chamkar Mon's, and the bouncing one
        "• In progress: 1",  # statuses no case has are left out
        "• Waiting for information: 1",
        "• Resolved — awaiting verification: 1",
    ]
    due = (await domain.cases.get(c["late_dp"])).due_at
    assert due is not None
    days = days_between(due, clock())
    assert section(text, "⚠️ <b>Overdue: 1</b>").splitlines()[1:] == [
        f"• <b>#{c['late_dp']}</b> · Daun Penh · overdue by {days} days",
        "⚠️ Bouncing: 1 · /bouncing lists them.",
    ]
    assert section(text, "<b>By unit</b>").splitlines()[1:] == [
        "• Daun Penh: 4 open · 1 overdue",
        "• Chamkar Mon: 1 open · 0 overdue",
    ]
    assert "Siem Reap" not in text and f"#{c['late_sr']}<" not in text
    assert_no_personal_data(text)


async def test_working_group_digest_covers_everything(domain: Domain, clock: Clock) -> None:
    c = await ministry(domain, clock)
    text = await digests(domain).build(None, clock(), "all units")
    assert "Last 24 hours: 8 new · 2 resolved · 1 closed" in text
    assert "<b>Open: 8</b>" in text and "• Forwarded — awaiting acknowledgment: 1" in text
    assert "• Assigned — awaiting acceptance: 1" in text
    overdue = section(text, "⚠️ <b>Overdue: 2</b>").splitlines()[1:3]
    assert [re.sub(r" · overdue by \d+ days", "", line) for line in overdue] == [
        f"• <b>#{c['late_dp']}</b> · Daun Penh", f"• <b>#{c['late_sr']}</b> · Siem Reap"]
    # Per top-level unit of the ministry, and each institution on its own line.
    assert section(text, "<b>By unit</b>").splitlines()[1:] == [
        "• Phnom Penh: 5 open · 1 overdue",
        "• Siem Reap: 2 open · 1 overdue",
        "• Ministry of Land: 1 open · 0 overdue",
    ]
    assert_no_personal_data(text)


async def test_oldest_ten_overdue_and_the_rest_counted(domain: Domain, clock: Clock) -> None:
    clock.now = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
    numbers = []
    for i in range(12):
        n = await case(domain, clock, "pp-dp", i)
        await act(domain, clock, n, Action.ASSIGN, unit_key="pp-dp")
        numbers.append(n)
        clock.advance(days=1)
    clock.now = NOW
    sr = await domain.unit_id("sr")
    text = await digests(domain).build(domain.units.subtree(await domain.unit_id("pp")), NOW, "PP")
    listed = [int(m) for m in re.findall(r"• <b>#(\d+)</b> · Daun Penh · overdue by \d+ days", text)]
    assert listed == numbers[:10]  # the oldest first
    assert "… and 2 more: /overdue lists them." in text
    assert "<b>Overdue: 12</b>" in text and "• Daun Penh: 12 open · 12 overdue" in text
    assert "<b>Overdue: 0</b>" in await digests(domain).build({sr}, NOW, "Siem Reap")
    assert_no_personal_data(text)


async def test_on_demand_scope_follows_the_roles(domain: Domain, clock: Clock) -> None:
    await ministry(domain, clock)
    svc = digests(domain)
    mine = await svc.for_person(OFFICIAL, clock())
    assert mine.startswith("📋 <b>Digest: Daun Penh</b>") and "<b>By unit</b>" not in mine
    assert "<b>Open: 4</b>" in mine  # Daun Penh's: the queue's bouncing case counts at its place
    assert (await svc.for_person(SUPERVISOR, clock())).startswith("📋 <b>Digest: Phnom Penh</b>")
    assert (await svc.for_person(WG, clock())).startswith("📋 <b>Digest: all units</b>")
    assert "<b>Open: 2</b>" in await svc.for_person(OTHER_OFFICIAL, clock())  # Siem Reap
    with pytest.raises(Forbidden):
        await svc.for_person(STRANGER, clock())
    row = await domain.db.one("SELECT action FROM refusals WHERE tg_id = ?", (STRANGER,))
    assert row is not None and row[0] == "digest"


async def queued_digests(d: Domain, after: int = 0) -> list[tuple[int, int, str]]:
    rows = await d.db.all("SELECT id, chat_id, text FROM outbox WHERE kind = 'text' AND id > ?"
                          " AND text LIKE '📋%' ORDER BY id", (after,))
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November day's local time in Phnom Penh (UTC+7), as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - (
        datetime(2026, 11, 1, 7, tzinfo=UTC) - datetime(2026, 11, 1, tzinfo=UTC))


async def test_sent_once_a_day_from_the_configured_time(domain: Domain, clock: Clock) -> None:
    await ministry(domain, clock)
    svc = digests(domain)
    assert [r[0] for r in await svc.recipients()] == [WG_CHAT, SUPERVISOR]
    assert await svc.send_due(local(2, 7, 29)) == 0  # before 07:30
    assert await queued_digests(domain) == []
    assert await svc.send_due(local(2, 7, 30)) == 2
    sent = await queued_digests(domain)
    assert [chat for _id, chat, _text in sent] == [WG_CHAT, SUPERVISOR]
    assert "<b>Digest: all units</b>" in sent[0][2] and "<b>Digest: Phnom Penh</b>" in sent[1][2]
    for _id, _chat, text in sent:
        assert_no_personal_data(text)
    assert await svc.send_due(local(2, 7, 45)) == 0
    assert await svc.send_due(local(2, 23, 59)) == 0
    assert await digests(domain).send_due(local(2, 12)) == 0  # a restart: the log is in the database
    assert await svc.send_due(local(3, 0, 5)) == 0  # a new day, but not 07:30 yet
    assert await svc.send_due(local(3, 7, 31)) == 2  # the day after
    assert len(await queued_digests(domain)) == 4
    rows = await domain.db.all("SELECT chat_id, day FROM digest_log ORDER BY day, chat_id")
    assert [tuple(r) for r in rows] == [(WG_CHAT, "2026-11-02"), (SUPERVISOR, "2026-11-02"),
                                        (WG_CHAT, "2026-11-03"), (SUPERVISOR, "2026-11-03")]


async def test_missed_while_down_is_sent_once_at_start(domain: Domain, clock: Clock) -> None:
    svc = digests(domain)
    assert await svc.send_due(local(2, 6)) == 0  # the bot ran at 06:00, then went down
    assert await digests(domain).send_due(local(2, 10)) == 2  # back at 10:00
    assert await digests(domain).send_due(local(2, 10, 5)) == 0  # and restarted again
    assert len(await queued_digests(domain)) == 2


async def test_a_muted_supervisor_gets_none(domain: Domain, clock: Clock) -> None:
    svc = digests(domain)
    await svc.mute(SUPERVISOR, True, clock())
    await svc.mute(SUPERVISOR, True, clock())  # twice is the same
    assert await svc.is_muted(SUPERVISOR)
    assert await svc.send_due(local(2, 8)) == 1
    assert [chat for _id, chat, _text in await queued_digests(domain)] == [WG_CHAT]
    await svc.mute(SUPERVISOR, False, clock())
    assert await svc.send_due(local(3, 8)) == 2
    # Unmuted later the same day: today's comes at the next run.
    await svc.mute(SUPERVISOR, True, clock())
    assert await svc.send_due(local(4, 8)) == 1
    await svc.mute(SUPERVISOR, False, clock())
    assert await svc.send_due(local(4, 9)) == 1
    assert [chat for _id, chat, _text in await queued_digests(domain)][-1] == SUPERVISOR


async def test_without_a_chat_the_working_group_gets_it_privately(domain: Domain, clock: Clock) -> None:
    settings = dataclasses.replace(domain.settings, working_group_chat_id=None)
    units = UnitService(domain.db, settings)
    await units.load_tree()
    another = 1003
    token = await domain.people.invite(1001, "-", "working_group", clock())
    await domain.people.redeem(token, another, "Another", None, "en", clock())
    # A supervisor of two provinces gets one digest of both, with a section for each.
    token = await domain.people.invite(1001, "sr", "supervisor", clock())
    await domain.people.redeem(token, SUPERVISOR, "Sokha", "sokha", "en", clock())
    svc = DigestService(domain.db, settings, units, domain.people)
    await svc.mute(another, True, clock())
    recipients = await svc.recipients()
    assert [(chat, title) for chat, title, _scope in recipients] == [
        (WG, "all units"), (SUPERVISOR, "Phnom Penh, Siem Reap")]
    assert recipients[0][2] is None
    assert await svc.send_due(local(2, 8)) == 2
    text = next(t for _id, chat, t in await queued_digests(domain) if chat == SUPERVISOR)
    assert "<i>Phnom Penh</i>\n• Daun Penh: 0 open · 0 overdue" in text
    assert "<i>Siem Reap</i>" not in text  # no units below Siem Reap: no section for it


async def test_e2e_digest_command(bot: Bot) -> None:
    from tests.test_e2e_inputs import make_case

    await make_case(bot, citizen_name="Neang Sreymom", citizen_contact="097 555 0199")
    sup = bot.private(bot.supervisor)
    m = await bot.say(bot.supervisor, sup, "/digest")
    [text] = bot.texts_since(m, SUPERVISOR)
    assert text.startswith("📋 <b>Digest: Phnom Penh</b>")
    assert "• Assigned — awaiting acceptance: 1" in text and "• Daun Penh: 1 open · 0 overdue" in text
    assert "Neang" not in text and "097 555 0199" not in text

    m = await bot.say(bot.supervisor, sup, "/digest off")
    assert bot.texts_since(m) == ["Done: no more daily digest for you. /digest on brings it back."]
    m = bot.api.mark()
    assert await bot.services.digests.send_due(bot.clock()) == 1  # the working group's chat only
    await bot.settle()
    assert bot.texts_since(m, SUPERVISOR) == []
    assert bot.texts_since(m, WG_CHAT)[0].startswith("📋 <b>Digest: all units</b>")

    m = await bot.say(bot.supervisor, sup, "/digest ON")
    assert bot.texts_since(m) == ["Done: you will get the daily digest again at 07:30."]
    m = bot.api.mark()
    assert await bot.services.digests.send_due(bot.clock()) == 1  # today's, not had yet
    await bot.settle()
    assert bot.texts_since(m, SUPERVISOR)[0].startswith("📋 <b>Digest: Phnom Penh</b>")
    assert await bot.services.digests.send_due(bot.clock()) == 0

    for bad in ("/digest bogus", "/digest off now"):
        m = await bot.say(bot.supervisor, sup, bad)
        assert bot.texts_since(m) == ["Say off or on, or nothing for a digest now.\n"
                                      "Usage: <code>/digest [off|on]</code>"]
    assert not await bot.services.digests.is_muted(SUPERVISOR)
