"""The carried-over backlog in the reminder ladder: imported cases get their category's deadline
and enter the ladder (at import, and at start for those an earlier version imported); a run
tells each chat once, however many cases are due; a warning before a deadline; Cambodia's public
holidays from the ``holidays`` package with the configuration's changes. The domain with an
injected clock, and the real Application against the fake Bot API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import Services
from bot.config import Settings, parse_settings
from bot.db import Database
from bot.domain.cases import Actor, CaseService, Change
from bot.domain.holiday_calendar import HolidayCalendar, holiday_calendar
from bot.domain.model import SYSTEM, ImportedCase
from bot.domain.outbox import OutboxStore
from bot.domain.people import PeopleService
from bot.domain.rules import Action, DeadlinePolicy, Status
from bot.domain.units import UnitService
from bot.jobs.reminders import run_once
from tests.conftest import (
    DP_CHAT,
    SR_CHAT,
    SUPERVISOR,
    WG,
    WG_CHAT,
    Clock,
    Domain,
    config_dict,
    register_people,
)
from tests.harness import running_bot

TZ = ZoneInfo("Asia/Phnom_Penh")
WEEK = frozenset({1, 2, 3, 4, 5})
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # the clock fixture's: Monday 09:00 in Phnom Penh
MAX_TEXT, MAX_BUTTONS, MAX_DATA = 4096, 100, 64  # Telegram's limits on a message


def local(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ).astimezone(UTC)


# --- Cambodia's public holidays ---------------------------------------------------------------

def test_cambodias_holidays_come_from_the_calendar_with_the_configs_changes(tmp_path: Path) -> None:
    data = config_dict(tmp_path / "db.sqlite3")
    data["deadlines"] = {"working_days": ["mon", "tue", "wed", "thu", "fri"],
                         "holidays": ["2026-11-26"],      # a substitute day, announced
                         "not_holidays": ["2026-11-24"]}  # a holiday moved away
    calendar = holiday_calendar(parse_settings(data))
    # The Water Festival (lunar: 23-25 Nov 2026, 18-20 Nov 2021) is known without being listed,
    # as are Khmer New Year and Pchum Ben.
    assert {date(2026, 11, 23), date(2026, 11, 25), date(2026, 11, 26)} <= {
        d for d in (date(2026, 11, day) for day in range(20, 28)) if d in calendar}
    assert date(2026, 11, 24) not in calendar and date(2026, 11, 27) not in calendar
    assert all(date(2021, 11, day) in calendar for day in (18, 19, 20))
    assert date(2021, 4, 14) in calendar and date(2025, 9, 22) in calendar  # Pchum Ben 2025
    assert len([d for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
                if d in calendar]) == 21 - 1 + 1  # 2026's 21, one moved away, one added

    week = DeadlinePolicy(TZ, working_days=WEEK, holidays=calendar)
    assert not week.is_working_day(date(2026, 11, 23)) and week.is_working_day(date(2026, 11, 24))
    friday = datetime(2026, 11, 20, 9, tzinfo=TZ)
    assert week.add_days(friday, 1) == datetime(2026, 11, 24, 9, tzinfo=TZ)  # the 23rd is off
    assert week.add_days(friday, 2) == datetime(2026, 11, 27, 9, tzinfo=TZ)  # so are the 25th, 26th
    assert week.sub_days(datetime(2026, 11, 27, 9, tzinfo=TZ), 1) == datetime(2026, 11, 24, 9, tzinfo=TZ)

    # Without a country, only the days listed; without working days, every day counts.
    data["deadlines"]["holiday_country"] = ""
    listed = holiday_calendar(parse_settings(data))
    assert date(2026, 11, 26) in listed and date(2026, 11, 23) not in listed
    del data["deadlines"]["working_days"]
    data["deadlines"]["holiday_country"] = "KH"
    every_day = holiday_calendar(parse_settings(data))
    assert every_day.country is None and date(2026, 11, 23) not in every_day
    with pytest.raises(ValueError, match="not a country the holidays package knows"):
        HolidayCalendar("QQ")


def days_after_day_by_day(p: DeadlinePolicy, start: datetime, end: datetime) -> int:
    """The definition, counted a day at a time: the largest n with add_days(start, n) <= end."""
    local, stop = start.astimezone(p.tz), end.astimezone(p.tz)
    day, days = local.date(), 0
    while True:
        day += timedelta(days=1)
        if datetime.combine(day, local.timetz()) > stop:
            return days
        days += p.is_working_day(day)


POLICIES = [
    DeadlinePolicy(TZ, holidays=frozenset({date(2026, 11, 9)})),
    DeadlinePolicy(TZ, working_days=WEEK, holidays=frozenset({date(2026, 11, 9), date(2021, 4, 14)})),
    DeadlinePolicy(TZ, working_days=frozenset({1, 2, 3, 4, 5, 6}),
                   holidays=HolidayCalendar("KH", frozenset({date(2026, 11, 26)}), frozenset({date(2026, 11, 24)}))),
    DeadlinePolicy(TZ, working_days=WEEK, holidays=HolidayCalendar(None, frozenset({date(2025, 1, 2)}))),
]


@given(policy=st.sampled_from(POLICIES),
       start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 31)),
       late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=6 * 365)))
def test_days_overdue_by_whole_weeks_are_those_counted_day_by_day(
        policy: DeadlinePolicy, start: datetime, late: timedelta) -> None:
    """An imported case years overdue is counted by whole weeks, with the same result."""
    start = start.replace(tzinfo=TZ)
    end = start + late
    assert policy.days_after(start, end) == days_after_day_by_day(policy, start, end)
    assert policy.days_after(start.astimezone(UTC), end.astimezone(UTC)) == days_after_day_by_day(policy, start, end)


async def test_the_cases_deadlines_skip_the_calendars_holidays(week: Domain, clock: Clock) -> None:
    """The real wiring: CaseService's deadlines count working days over Cambodia's calendar."""
    clock.now = datetime(2026, 11, 20, 9, tzinfo=TZ)  # Friday before the Water Festival
    n = await week.new_case(clock, category_id=await week.category_id("docs"))
    case = await week.cases.apply(n, Action.ASSIGN, Actor(WG, "Sophea", WG_CHAT), Change(unit_key="pp-dp"),
                                  clock())
    # To accept in one working day: not Mon 23 (the Water Festival), Tue 24 (configured as a
    # working day); to resolve in four: Tue 24, Thu 26, Fri 27, Mon 30 (not Wed 25, the festival).
    assert case.accept_due_at == datetime(2026, 11, 24, 9, tzinfo=TZ)
    assert case.due_at == datetime(2026, 11, 30, 9, tzinfo=TZ)


# --- the domain ---------------------------------------------------------------------------------

def backlog_settings(path: Path, **deadlines: Any) -> Settings:
    data = config_dict(path)
    data["categories"][0]["resolve_days"] = 60  # land: its own deadline
    if deadlines:
        data["deadlines"] = deadlines
    return parse_settings(data)


async def open_domain(settings: Settings, clock: Clock) -> Domain:
    db = await Database.open(settings.database_path)
    units = UnitService(db, settings)
    await units.sync_from_config()
    people = PeopleService(db, settings, units)
    await people.sync_config(clock())
    await register_people(people, clock())
    return Domain(db, units, people, CaseService(db, settings, units, people, clock), OutboxStore(db),
                  settings)


@pytest.fixture
async def backlog(tmp_path: Path, clock: Clock) -> AsyncIterator[Domain]:
    domain = await open_domain(backlog_settings(tmp_path / "backlog.sqlite3"), clock)
    yield domain
    await domain.db.close()


@pytest.fixture
async def week(tmp_path: Path, clock: Clock) -> AsyncIterator[Domain]:
    domain = await open_domain(backlog_settings(
        tmp_path / "week.sqlite3", working_days=["mon", "tue", "wed", "thu", "fri"],
        resolve_days=4, not_holidays=["2026-11-24"]), clock)
    yield domain
    await domain.db.close()


async def rows_of(d: Domain, count: int, unit: str, *, category: str = "land", start: date = date(2021, 1, 4),
                  status: Status = Status.IN_PROGRESS, ref: str = "B", summary: str = "Backlog case",
                  resolved: date | None = None) -> list[ImportedCase]:
    cat, unit_id = await d.category_id(category), await d.unit_id(unit)
    return [ImportedCase(f"{ref}-{i}", local(start + timedelta(days=i)), "letter", cat, unit_id,
                         f"{summary} {i}", "", "Citizen", "", status,
                         local(resolved) if resolved else None)
            for i in range(count)]


async def tick(d: Domain, clock: Clock) -> int:
    return await run_once(cast(Services, SimpleNamespace(cases=d.cases, clock=clock)))


async def mark(d: Domain) -> int:
    row = await d.db.one("SELECT COALESCE(MAX(id), 0) FROM outbox")
    assert row is not None
    return int(row[0])


async def texts_since(d: Domain, since: int) -> list[tuple[int, str, list[list[list[str]]]]]:
    rows = await d.db.all("SELECT chat_id, text, payload FROM outbox WHERE kind = 'text' AND id > ?"
                          " ORDER BY id", (since,))
    return [(int(r[0]), str(r[1]), json.loads(r[2]).get("buttons", [])) for r in rows]


async def actions(d: Domain, n: int) -> list[str]:
    return [e.action for e in await d.cases.history(n)]


async def test_an_import_takes_the_categorys_deadline_and_enters_the_ladder(
        backlog: Domain, clock: Clock) -> None:
    land = await rows_of(backlog, 1, "pp-dp", ref="L")
    docs = await rows_of(backlog, 1, "pp-dp", category="docs", ref="D")
    recent = await rows_of(backlog, 1, "pp-dp", ref="R", start=date(2026, 10, 1))
    resolved = await rows_of(backlog, 1, "pp-dp", ref="V", status=Status.RESOLVED, start=date(2026, 10, 1),
                             resolved=date(2026, 10, 30))
    queued = await rows_of(backlog, 1, "pp-dp", ref="Q", status=Status.NEW)
    closed = await rows_of(backlog, 1, "pp-dp", ref="C", status=Status.CLOSED, resolved=date(2021, 2, 1))
    created, _ = await backlog.cases.import_cases(SYSTEM, land + docs + recent + resolved + queued + closed,
                                                  clock())
    case = {ref: await backlog.cases.get(n) for ref, n in zip("LDRVQC", created, strict=True)}
    # Land (resolve_days = 60), received 4 Jan 2021: due 5 March 2021, as in the bot; the
    # documents category has none of its own: the default 15 days.
    assert case["L"].due_at == datetime(2021, 3, 5, 12, tzinfo=TZ)
    assert case["D"].due_at == datetime(2021, 1, 19, 12, tzinfo=TZ)
    # Overdue: looked at by the next run; due later: warned a day before (at an allowed time).
    assert case["L"].next_action_at is not None and case["L"].next_action_at <= clock()
    assert case["R"].due_at == datetime(2026, 11, 30, 12, tzinfo=TZ)
    assert case["R"].next_action_at == datetime(2026, 11, 29, 12, tzinfo=TZ)
    # Resolved, awaiting verification: the time to verify from the resolution (7 days).
    assert case["V"].due_at == datetime(2026, 11, 6, 12, tzinfo=TZ)
    assert case["V"].next_action_at == datetime(2026, 11, 5, 12, tzinfo=TZ)
    for ref in "QC":  # in the queue, or closed: nothing to chase
        assert case[ref].due_at is None and case[ref].next_action_at is None


async def test_imported_overdue_cases_are_reminded_and_escalated_in_one_run_one_message_per_chat(
        backlog: Domain, clock: Clock) -> None:
    # Seven in Daun Penh (supervisor: Sokha, of Phnom Penh), three in Siem Reap (no supervisor
    # up the tree: the working group), one awaiting verification.
    dp = await rows_of(backlog, 7, "pp-dp", ref="DP", summary="Daun Penh case")
    sr = await rows_of(backlog, 3, "sr", ref="SR", summary="Siem Reap case", start=date(2020, 6, 1))
    verify = await rows_of(backlog, 1, "pp-dp", ref="V", status=Status.RESOLVED, start=date(2021, 1, 1),
                           resolved=date(2021, 5, 1))
    created, _ = await backlog.cases.import_cases(SYSTEM, dp + sr + verify, clock())
    dp_ids, sr_ids, (verify_id,) = created[:7], created[7:10], created[10:]

    since = await mark(backlog)
    assert await tick(backlog, clock) == 11
    sent = await texts_since(backlog, since)
    assert sorted(chat for chat, _t, _b in sent) == sorted([DP_CHAT, SR_CHAT, SUPERVISOR, WG_CHAT])
    by_chat = {chat: (text, buttons) for chat, text, buttons in sent}

    text, buttons = by_chat[DP_CHAT]
    lines = text.split("\n")
    assert lines[0] == "⏰ 7 of your cases are overdue, oldest first:"
    assert [line.split(" · ")[0] for line in lines[1:8]] == [f"• <b>#{n}</b>" for n in dp_ids]
    assert lines[1].endswith(" · Daun Penh · overdue by 2067 days · Daun Penh case 0")
    assert [b[0] for row in buttons for b in row] == [f"#{n}" for n in dp_ids]
    versions = {n: (await backlog.cases.get(n)).version for n in created}
    assert [b[1] for row in buttons for b in row] == [f"c:{n}:{versions[n]}:upd" for n in dp_ids]

    # E1 for Daun Penh's cases (the one to verify too), oldest first; nobody above Phnom Penh.
    text, buttons = by_chat[SUPERVISOR]
    assert text.startswith("⬆️ 8 overdue cases are escalated to you, oldest first:\n")
    assert [b[0] for row in buttons for b in row] == [f"#{n}" for n in [verify_id, *dp_ids]]

    # E2 of all, Siem Reap's E1 too, and the reminder to verify: each case once, as its highest step.
    text, buttons = by_chat[WG_CHAT]
    assert text.startswith("⬆️ 11 overdue cases are escalated to you, oldest first:\n")
    assert "⏰" not in text and " · not verified · Backlog case 0\n" in text
    assert [b[0] for row in buttons for b in row] == [f"#{n}" for n in [*sr_ids, verify_id, *dp_ids]]

    # Each case's own events, through the one write path.
    for n in dp_ids + sr_ids:
        assert await actions(backlog, n) == ["import", "remind", "escalate", "escalate"]
        case = await backlog.cases.get(n)
        assert case.reminder_level == 3 and case.next_action_at == clock() + timedelta(days=1)
    assert await actions(backlog, verify_id) == ["import", "remind", "escalate", "escalate"]

    since = await mark(backlog)
    assert await tick(backlog, clock) == 0  # and not again until tomorrow
    clock.advance(days=1)
    assert await tick(backlog, clock) == 11
    # Tomorrow: the daily reminders only, one message per unit (and one for the verification).
    assert sorted(c for c, _t, _b in await texts_since(backlog, since)) == sorted([DP_CHAT, SR_CHAT, WG_CHAT])


async def test_each_chat_reads_the_list_in_its_language(tmp_path: Path, clock: Clock) -> None:
    data = config_dict(tmp_path / "km.sqlite3")
    data["default_language"] = "km"  # the groups' language; the people registered in English
    data["units"][2]["name_km"] = "ខណ្ឌដូនពេញ"
    domain = await open_domain(parse_settings(data), clock)
    try:
        created, _ = await domain.cases.import_cases(SYSTEM, await rows_of(domain, 2, "pp-dp"), clock())
        since = await mark(domain)
        await tick(domain, clock)
        by_chat = {c: t for c, t, _b in await texts_since(domain, since)}
        assert by_chat[DP_CHAT].startswith("⏰ ករណីរបស់លោកអ្នកចំនួន 2 ហួសកាលកំណត់ ចាស់ជាងគេមុន៖\n"
                                           f"• <b>#{created[0]}</b> · ខណ្ឌដូនពេញ · ហួសកាលកំណត់ ")
        assert by_chat[SUPERVISOR].startswith("⬆️ 2 overdue cases are escalated to you, oldest first:\n"
                                              f"• <b>#{created[0]}</b> · Daun Penh · overdue by ")
    finally:
        await domain.db.close()


async def test_a_chat_with_hundreds_due_gets_one_message_within_telegrams_limits(
        backlog: Domain, clock: Clock) -> None:
    long = "Very long summary " * 12
    rows = await rows_of(backlog, 130, "pp-dp", summary=long, start=date(2021, 1, 4))
    created, _ = await backlog.cases.import_cases(SYSTEM, rows, clock())
    since = await mark(backlog)
    assert await tick(backlog, clock) == 130
    sent = await texts_since(backlog, since)
    assert sorted(c for c, _t, _b in sent) == sorted([DP_CHAT, SUPERVISOR, WG_CHAT])
    for _chat, text, buttons in sent:
        flat = [b for row in buttons for b in row]
        assert len(text) <= MAX_TEXT and len(flat) <= MAX_BUTTONS
        assert all(len(data.encode()) <= MAX_DATA for _label, data in flat)
        listed = [line for line in text.split("\n") if line.startswith("• ")]
        assert 0 < len(listed) <= 20 and len(flat) == len(listed) + 1
        assert text.endswith(f"… and {130 - len(listed)} more: /overdue lists them.")
        assert flat[-1] == ["Overdue cases ›", "od:0"]  # a page of them, and the next
        assert [label for label, _d in flat[:-1]] == [f"#{n}" for n in created[:len(listed)]]
    assert all([await actions(backlog, n) == ["import", "remind", "escalate", "escalate"] for n in created])


async def test_a_step_that_fails_is_undone_alone_and_held_for_an_hour(
        backlog: Domain, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    created, _ = await backlog.cases.import_cases(SYSTEM, await rows_of(backlog, 3, "pp-dp"), clock())
    broken = created[1]
    real = CaseService._apply

    async def failing(self: CaseService, case_id: int, action: Action, *args: Any) -> Any:
        if case_id == broken and action is Action.ESCALATE:  # after its reminder was written
            raise RuntimeError("a broken case")
        return await real(self, case_id, action, *args)

    monkeypatch.setattr(CaseService, "_apply", failing)
    since = await mark(backlog)
    assert await tick(backlog, clock) == 3
    assert await actions(backlog, broken) == ["import"]  # its reminder was rolled back with it
    assert (await backlog.cases.get(broken)).next_action_at == clock() + timedelta(hours=1)
    for n in (created[0], created[2]):
        assert await actions(backlog, n) == ["import", "remind", "escalate", "escalate"]
    (text, _b), = [(t, b) for c, t, b in await texts_since(backlog, since) if c == DP_CHAT]
    assert text.startswith("⏰ 2 of your cases are overdue") and f"#{broken}<" not in text


async def test_a_warning_before_the_deadline_grouped_per_chat(backlog: Domain, clock: Clock) -> None:
    # Two imported cases due on the 30th (every day counts here): warned on the 29th, together.
    rows = await rows_of(backlog, 2, "pp-dp", start=date(2026, 10, 1))
    created, _ = await backlog.cases.import_cases(SYSTEM, rows, clock())
    clock.now = datetime(2026, 11, 29, 11, 59, tzinfo=TZ)
    assert await tick(backlog, clock) == 0
    clock.now = datetime(2026, 11, 29, 12, 0, tzinfo=TZ)
    since = await mark(backlog)
    assert await tick(backlog, clock) == 1  # the first; the second's warning falls a day later
    clock.now = datetime(2026, 11, 30, 12, 0, tzinfo=TZ)
    assert await tick(backlog, clock) == 2  # the first's deadline, the second's warning
    sent = await texts_since(backlog, since)
    assert [(c, t.split("\n")[0]) for c, t, _b in sent] == [
        (DP_CHAT, f"⏳ Deadline Mon 30 Nov for #{created[0]} (Daun Penh): Backlog case 0"),
        (DP_CHAT, "⏰ 1 of your cases is overdue:")]
    assert "⏳ 1 deadline is near:" in sent[1][1] and "Due Tue 1 Dec · Backlog case 1" in sent[1][1]
    assert await actions(backlog, created[0]) == ["import", "warn", "remind"]
    assert await actions(backlog, created[1]) == ["import", "warn"]


async def test_no_warning_when_warnings_are_off_or_the_step_began_near_its_deadline(
        tmp_path: Path, clock: Clock) -> None:
    data = config_dict(tmp_path / "off.sqlite3")
    data["reminders"] = {"warn_before_days": 0}
    domain = await open_domain(parse_settings(data), clock)
    try:
        n = await domain.new_case(clock)
        case = await domain.cases.apply(n, Action.ASSIGN, Actor(WG, "Sophea", WG_CHAT),
                                        Change(unit_key="pp-dp"), clock())
        assert case.next_action_at == case.accept_due_at  # the deadline itself: no warning first
    finally:
        await domain.db.close()


async def test_cases_an_earlier_version_imported_enter_the_ladder_at_start(
        backlog: Domain, clock: Clock) -> None:
    created, _ = await backlog.cases.import_cases(SYSTEM, await rows_of(backlog, 3, "pp-dp"), clock())
    untouched, noted, set_by_hand = created
    await backlog.cases.apply(noted, Action.NOTE, Actor(WG, "Sophea", WG_CHAT), Change(text="Called"), clock())
    by_hand = datetime(2026, 11, 20, 17, tzinfo=TZ)
    await backlog.cases.apply(set_by_hand, Action.SET_DUE, Actor(WG, "Sophea", WG_CHAT), Change(due=by_hand),
                              clock())
    # As an earlier version left them: the default 15 days, no next look.
    async with backlog.db.transaction() as conn:
        for n in (untouched, noted):
            case = await backlog.cases.get(n)
            conn.add("UPDATE cases SET due_at = ? WHERE id = ?",
                     ((case.received_at + timedelta(days=15)).isoformat(), n))
        conn.add(f"UPDATE cases SET next_action_at = NULL WHERE id IN ({untouched}, {noted}, {set_by_hand})")
    since = await mark(backlog)
    assert await tick(backlog, clock) == 0  # left out of the ladder
    assert await texts_since(backlog, since) == []

    assert await backlog.cases.enter_ladder(clock()) == 3
    for n in (untouched, noted):  # the deadline was the import's: now the category's
        case = await backlog.cases.get(n)
        assert case.due_at == case.received_at + timedelta(days=60) and case.next_action_at is not None
    case = await backlog.cases.get(set_by_hand)
    assert case.due_at == by_hand and case.next_action_at == by_hand - timedelta(days=1)  # the warning
    assert await backlog.cases.enter_ladder(clock()) == 0  # once is enough
    assert await tick(backlog, clock) == 2
    (_chat, text, _b), *others = [s for s in await texts_since(backlog, since) if s[0] == DP_CHAT]
    assert not others and text.startswith("⏰ 2 of your cases are overdue, oldest first:")


# --- end to end -----------------------------------------------------------------------------------

async def test_a_backlog_imported_by_an_earlier_version_is_reminded_after_a_restart(
        tmp_path: Path, clock: Clock) -> None:
    """The real Application on the fake Bot API: the list goes through Telegram's checks (HTML,
    limits), a case's button posts its card in the group, and a restart brings the cases an
    earlier version imported into the ladder."""
    async with running_bot(tmp_path, clock) as bot:
        units = bot.services.units
        land = next(c.id for c in await units.categories() if c.key == "land")
        dp = (await units.by_key("pp-dp")).id
        rows = [ImportedCase(f"E-{i}", local(date(2021, 3, 1 + i)), "letter", land, dp,
                             f"Road <flooded> & closed {i}", "", "Citizen", "", Status.ASSIGNED)
                for i in range(5)]
        created, _ = await bot.services.cases.import_cases(SYSTEM, rows, clock())
        async with bot.services.db.transaction() as conn:  # as an earlier version left them
            conn.add("UPDATE cases SET next_action_at = NULL")
        m = bot.api.mark()
        await run_once(bot.services)
        await bot.settle()
        assert bot.texts_since(m, DP_CHAT) == []
    async with running_bot(tmp_path, clock) as bot:  # the restart
        m = bot.api.mark()
        await run_once(bot.services)
        await bot.settle()
        (text,) = bot.texts_since(m, DP_CHAT)
        assert text.startswith("⏰ 5 of your cases are overdue, oldest first:\n")
        assert "Road &lt;flooded&gt; &amp; closed 0" in text  # escaped: valid HTML (the fake API checks)
        message = bot.last_bot_message(DP_CHAT)
        assert [label for label, _d in bot.api.buttons(message)] == [f"#{n}" for n in created]
        await bot.press_button(bot.official, message, f"#{created[2]}")
        card = bot.card(DP_CHAT, created[2])
        assert card["message_id"] > message["message_id"] and "Road <flooded> & closed 2" in card["text"]
        await bot.press_button(bot.official, card, "Accept")
        assert (await bot.services.cases.get(created[2])).status is Status.IN_PROGRESS
