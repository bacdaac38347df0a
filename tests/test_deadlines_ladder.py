"""Deadlines (working days, holidays, categories, the pause while waiting for information) and the
reminder ladder (quiet hours, daily reminders, snoozes, help, escalation), in the domain with an
injected clock. The end-to-end side is in tests/test_reminders_e2e.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from bot.app import Services
from bot.config import Settings, parse_settings
from bot.db import Database
from bot.domain.cases import Actor, CaseView, Change
from bot.domain.errors import Forbidden, Invalid
from bot.domain.outbox import OutboxStore
from bot.domain.people import PeopleService
from bot.domain.rules import Action, DeadlinePolicy, ReminderPolicy, Status
from bot.domain.units import UnitService
from bot.jobs.reminders import run_once
from tests.conftest import (
    ADMIN,
    DP_CHAT,
    LIAISON,
    OFFICIAL,
    OTHER_OFFICIAL,
    SR_CHAT,
    SUPERVISOR,
    WG,
    WG_CHAT,
    Clock,
    Domain,
    config_dict,
    register_people,
)

TZ = ZoneInfo("Asia/Phnom_Penh")
HOLIDAY = date(2026, 11, 9)          # a Monday (Independence Day)
WEEK = frozenset({1, 2, 3, 4, 5})     # ISO weekdays, Monday to Friday

wg = Actor(WG, "Sophea", WG_CHAT)
dara = Actor(OFFICIAL, "Dara", DP_CHAT)
rith = Actor(LIAISON, "Rith", None)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time in Phnom Penh, November 2026 (2 Nov is a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


# --- the policies on their own ------------------------------------------------------------------

def test_every_day_counts_unless_working_days_are_set() -> None:
    p = DeadlinePolicy(TZ)
    assert p.is_working_day(date(2026, 11, 7))  # a Saturday
    assert p.add_days(at(2, 9), 15) == at(17, 9)
    assert p.resolve_due(at(2, 9), "normal") == at(17, 9)
    assert p.resolve_due(at(2, 9), "urgent") == at(5, 9)
    assert p.accept_due(at(6, 21)) == at(7, 21)
    assert p.ack_due(at(2, 9), None) == at(5, 9)
    assert p.ack_due(at(2, 9), 10) == at(12, 9)  # the institution's own ack_days
    assert p.verify_due(at(2, 9)) == at(9, 9)


def test_working_days_skip_weekends_and_holidays() -> None:
    p = DeadlinePolicy(TZ, working_days=WEEK, holidays=frozenset({HOLIDAY}))
    assert [p.is_working_day(date(2026, 11, d)) for d in range(6, 11)] == [True, False, False, False, True]
    assert p.add_days(at(2, 9), 4) == at(6, 9)        # Tue, Wed, Thu, Fri
    assert p.add_days(at(5, 9), 2) == at(10, 9)       # Fri; not Sat, Sun or the holiday; Tue
    assert p.add_days(at(7, 15), 1) == at(10, 15)     # from a Saturday: the next working day
    assert p.accept_due(at(6, 23, 30)) == at(10, 23, 30)  # the local time of day is kept
    start = at(6, 23, 30).astimezone(UTC)             # stored in UTC: counted in local days
    due = p.add_days(start, 1)
    assert due == at(10, 23, 30) and due.tzinfo is UTC
    assert p.resolve_due(at(2, 9), "normal") == at(24, 9)  # 15 working days, the holiday skipped
    assert p.ack_due(at(2, 9), None) == at(5, 9)
    assert p.verify_due(at(2, 9)) == at(12, 9)


def test_category_deadlines_override_the_defaults() -> None:
    p = DeadlinePolicy(TZ, by_category=(("land", 10, None), ("docs", None, 1)))
    assert p.resolve_due(at(2, 9), "normal", "land") == at(12, 9)
    assert p.resolve_due(at(2, 9), "urgent", "land") == at(5, 9)   # urgent: the default 3
    assert p.resolve_due(at(2, 9), "normal", "docs") == at(17, 9)  # normal: the default 15
    assert p.resolve_due(at(2, 9), "urgent", "docs") == at(3, 9)
    assert p.resolve_due(at(2, 9), "normal", "roads") == at(17, 9)


def test_pause_moves_a_deadline_by_the_working_time_spent_waiting() -> None:
    every_day = DeadlinePolicy(TZ)
    assert every_day.shift(at(17, 9), at(3, 9), at(6, 15)) == at(20, 15)
    week = DeadlinePolicy(TZ, working_days=WEEK, holidays=frozenset({HOLIDAY}))
    # Waiting Tuesday 09:00 to Thursday 09:00 took two working days: a Friday deadline moves by
    # two working days (over the weekend and the holiday), not to Sunday.
    assert week.shift(at(6, 9), at(3, 9), at(5, 9)) == at(11, 9)
    # Waiting over a weekend and a holiday costs only the working hours in it.
    assert week.shift(at(12, 9), at(6, 9), at(10, 9)) == at(13, 9)
    assert week.shift(at(12, 9), at(7, 9), at(8, 18)) == at(12, 9)  # all of it on the weekend
    assert week.shift(at(12, 9), at(3, 9), at(3, 9)) == at(12, 9)


def test_quiet_hours_across_midnight_and_within_a_day() -> None:
    r = ReminderPolicy(DeadlinePolicy(TZ))
    assert all(r.is_quiet(t) for t in (time(20, 0), time(23, 59), time(0, 0), time(6, 59)))
    assert not any(r.is_quiet(t) for t in (time(7, 0), time(12, 0), time(19, 59)))
    lunch = ReminderPolicy(DeadlinePolicy(TZ), quiet_start=time(12, 0), quiet_end=time(13, 0))
    assert lunch.is_quiet(time(12, 30)) and not lunch.is_quiet(time(13, 0))
    assert lunch.next_allowed(at(2, 12, 15)) == at(2, 13)


def test_next_allowed_time_after_quiet_hours_and_days_off() -> None:
    r = ReminderPolicy(DeadlinePolicy(TZ, working_days=WEEK, holidays=frozenset({HOLIDAY})))
    assert r.next_allowed(at(2, 9)) == at(2, 9)        # allowed now: unchanged
    assert r.next_allowed(at(2, 6, 30)) == at(2, 7)    # early morning: at the end of quiet hours
    assert r.next_allowed(at(2, 20)) == at(3, 7)       # quiet hours start at 20:00
    assert r.next_allowed(at(2, 21)) == at(3, 7)
    assert r.next_allowed(at(6, 21)) == at(10, 7)      # Friday night: not Sat, Sun or the holiday
    assert r.next_allowed(at(7, 12)) == at(10, 7)      # a Saturday
    assert r.next_allowed(at(10, 3)) == at(10, 7)
    held = r.next_allowed(at(7, 12).astimezone(UTC))
    assert held == at(10, 7) and held.tzinfo is UTC
    every_day = ReminderPolicy(DeadlinePolicy(TZ))
    assert every_day.next_allowed(at(7, 12)) == at(7, 12)  # Saturday is a day like any other
    assert every_day.next_allowed(at(7, 21)) == at(8, 7)


# --- helpers for the domain -----------------------------------------------------------------------

async def mark(d: Domain) -> int:
    row = await d.db.one("SELECT COALESCE(MAX(id), 0) FROM outbox")
    assert row is not None
    return int(row[0])


async def sent_since(d: Domain, since: int) -> list[tuple[int, str, list[list[list[str]]]]]:
    """Texts queued since ``mark``: (chat, text, buttons)."""
    rows = await d.db.all(
        "SELECT chat_id, text, payload FROM outbox WHERE kind = 'text' AND id > ? ORDER BY id", (since,))
    return [(int(r[0]), str(r[1]), json.loads(r[2]).get("buttons", [])) for r in rows]


def labels(buttons: list[list[list[str]]]) -> list[str]:
    return [label for row in buttons for label, _data in row]


async def ladder_events(d: Domain, n: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.action, e.data) for e in await d.cases.history(n)
            if e.action in (Action.REMIND, Action.ESCALATE, Action.SNOOZE, Action.HELP)]


async def tick(d: Domain, clock: Clock) -> int:
    """The repeating job, once, at the clock's time (no digests in these tests)."""
    return await run_once(cast(Services, SimpleNamespace(cases=d.cases, clock=clock)))


async def act(d: Domain, clock: Clock, n: int, action: Action, who: Actor = wg, **change: Any) -> CaseView:
    return await d.cases.apply(n, action, who, Change(**change), clock())


async def accepted_case(d: Domain, clock: Clock, **draft: Any) -> int:
    n = await d.new_case(clock, **draft)
    await act(d, clock, n, Action.ASSIGN, unit_key="pp-dp")
    await act(d, clock, n, Action.ACCEPT, dara)
    return n


async def add_supervisor(d: Domain, tg_id: int, name: str, unit: str, clock: Clock) -> None:
    token = await d.people.invite(ADMIN, unit, "supervisor", clock())
    await d.people.redeem(token, tg_id, name, None, "en", clock())


@pytest.fixture
def week_settings(tmp_path: Path) -> Settings:
    """Monday to Friday, a holiday on Monday 9 November, short deadlines."""
    data = config_dict(tmp_path / "week" / "casebot.sqlite3")
    data["deadlines"] = {"resolve_days": 4, "urgent_resolve_days": 2, "accept_days": 1,
                         "working_days": ["mon", "tue", "wed", "thu", "fri"],
                         "holidays": ["2026-11-09"]}
    data["categories"][1]["resolve_days"] = 10  # Civil documents take longer
    return parse_settings(data)


@pytest.fixture
async def week(week_settings: Settings, clock: Clock) -> AsyncIterator[Domain]:
    from bot.domain.cases import CaseService

    db = await Database.open(week_settings.database_path)
    units = UnitService(db, week_settings)
    await units.sync_from_config()
    people = PeopleService(db, week_settings, units)
    await people.sync_config(clock())
    await register_people(people, clock())
    cases = CaseService(db, week_settings, units, people, clock)
    yield Domain(db, units, people, cases, OutboxStore(db), week_settings)
    await db.close()


# --- deadlines on cases ---------------------------------------------------------------------------

async def test_assignment_sets_the_deadlines_and_overdue_is_detected(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    case = await domain.cases.get(n)
    assert case.due_at is None and case.next_action_at is None  # in the queue: nothing to chase
    case = await act(domain, clock, n, Action.ASSIGN, unit_key="pp-dp")
    assert case.due_at == at(17, 9) and case.accept_due_at == at(3, 9)
    assert case.next_action_at == at(3, 9)  # the first reminder: acceptance
    urgent = await domain.new_case(clock, priority="urgent")
    assert (await act(domain, clock, urgent, Action.ASSIGN, unit_key="pp-dp")).due_at == at(5, 9)
    case = await act(domain, clock, n, Action.ACCEPT, dara)
    # Now resolution, due on the 17th: the first look is the warning, a day before.
    assert case.accept_due_at is None and case.next_action_at == at(16, 9)

    clock.now = at(17, 9)
    assert not case.is_overdue(clock())
    overdue, _total = await domain.cases.open_cases(wg, 0, clock(), overdue_only=True)
    assert [c.id for c in overdue] == [urgent]
    clock.advance(minutes=1)
    assert case.is_overdue(clock())
    overdue, total = await domain.cases.open_cases(wg, 0, clock(), overdue_only=True)
    assert [c.id for c in overdue] == [n, urgent] and total == 2
    mine, _total = await domain.cases.open_cases(dara, 0, clock(), overdue_only=True)
    assert {c.id for c in mine} == {n, urgent}
    await act(domain, clock, n, Action.RESOLVE, dara, text="Fence moved back to the line")
    case = await domain.cases.get(n)
    assert case.due_at == at(24, 9, 1) and not case.is_overdue(clock())  # now: verification


async def test_working_days_holidays_and_category_deadlines(week: Domain, clock: Clock) -> None:
    n = await week.new_case(clock)
    case = await act(week, clock, n, Action.ASSIGN, unit_key="pp-dp")
    assert case.due_at == at(6, 9) and case.accept_due_at == at(3, 9)
    docs = await week.new_case(clock, category_id=await week.category_id("docs"))
    assert (await act(week, clock, docs, Action.ASSIGN, unit_key="pp-dp")).due_at == at(17, 9)
    clock.now = at(5, 9)  # Thursday: two working days, over the weekend and the holiday
    urgent = await week.new_case(clock, priority="urgent")
    case = await act(week, clock, urgent, Action.ASSIGN, unit_key="pp-dp")
    assert case.due_at == at(10, 9) and case.accept_due_at == at(6, 9)
    case = await act(week, clock, urgent, Action.FORWARD, unit_key="mlm", channel="letter",
                     text="Land titles are theirs")
    assert case.due_at == at(11, 9)  # three working days to acknowledge: Fri, Tue, Wed
    assert case.next_action_at == at(10, 9)  # warned a working day before


async def test_waiting_for_information_pauses_the_clock(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    clock.now = at(3, 9)
    case = await act(domain, clock, n, Action.NEED_INFO, dara, text="Which plot number?")
    assert case.status is Status.WAITING_INFO and case.paused_at == at(3, 9)
    assert case.next_action_at is None  # nothing is chased while the unit waits
    clock.now = at(20, 9)  # the old deadline (17 Nov) passes while waiting
    since = await mark(domain)
    assert await tick(domain, clock) == 0
    assert await sent_since(domain, since) == []
    case = await act(domain, clock, n, Action.PROVIDE_INFO, text="Plot 112, Daun Penh")
    assert case.status is Status.IN_PROGRESS and case.paused_at is None
    assert case.due_at == at(17, 9) + timedelta(days=17)  # by the 17 days spent waiting
    assert case.next_action_at == case.due_at - timedelta(days=1)  # the warning
    events = {e.action: e for e in await domain.cases.history(n)}
    assert events[Action.NEED_INFO].note == "Which plot number?"
    assert events[Action.PROVIDE_INFO].data["paused_hours"] == 17 * 24


async def test_pause_over_days_off_keeps_the_working_days_left(week: Domain, clock: Clock) -> None:
    n = await accepted_case(week, clock)
    assert (await week.cases.get(n)).due_at == at(6, 9)  # Friday
    clock.now = at(3, 9)
    await act(week, clock, n, Action.NEED_INFO, dara, text="Which plot number?")
    clock.now = at(5, 9)
    case = await act(week, clock, n, Action.PROVIDE_INFO, text="Plot 112")
    # Two working days were left before the pause; two are left after it: Tue and Wed.
    assert case.due_at == at(11, 9) and case.next_action_at == at(10, 9)


async def test_resume_by_the_unit_also_restarts_the_clock(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    await act(domain, clock, n, Action.NEED_INFO, dara, text="Which plot number?")
    clock.advance(days=2)
    case = await act(domain, clock, n, Action.RESUME, dara)
    assert case.due_at == at(19, 9) and case.next_action_at == at(18, 9)


async def test_deadline_set_by_hand_is_recorded_and_rescheduled(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    with pytest.raises(Forbidden):
        await act(domain, clock, n, Action.SET_DUE, dara, due=at(30, 17))
    with pytest.raises(Invalid):
        await act(domain, clock, n, Action.SET_DUE, due=at(1, 17))  # in the past
    case = await act(domain, clock, n, Action.SET_DUE, due=at(30, 17))
    assert case.due_at == at(30, 17) and case.next_action_at == at(29, 17)
    event = (await domain.cases.history(n))[-1]
    assert event.action == Action.SET_DUE and event.actor_id == WG
    assert datetime.fromisoformat(event.data["due"]) == at(30, 17)
    # A deadline in quiet hours: its warning (a day before, also in quiet hours) waits for the
    # morning.
    case = await act(domain, clock, n, Action.SET_DUE, due=at(4, 21))
    assert case.next_action_at == at(4, 7)


# --- the ladder -------------------------------------------------------------------------------------

async def test_each_step_of_the_ladder(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)  # due Tuesday 17 November, 09:00
    # A working day before (every day counts here): the deadline is near.
    clock.now = at(16, 8, 59)
    assert await tick(domain, clock) == 0
    clock.now = at(16, 9)
    since = await mark(domain)
    assert await tick(domain, clock) == 1
    sent = await sent_since(domain, since)
    assert [(chat, text) for chat, text, _b in sent] == [
        (OFFICIAL, f"⏳ Deadline Tue 17 Nov for #{n} (Daun Penh): Boundary dispute with neighbour")]
    assert labels(sent[0][2]) == ["🔄 Update status"]
    case = await domain.cases.get(n)
    assert case.next_action_at == at(17, 9) and case.reminder_level == 0
    warned = [e for e in await domain.cases.history(n) if e.action == Action.WARN]
    assert len(warned) == 1 and warned[0].actor_name == "casebot" and warned[0].data["step"] == "resolve"

    clock.now = at(17, 8, 59)
    since = await mark(domain)
    assert await tick(domain, clock) == 0

    clock.now = at(17, 9)
    assert await tick(domain, clock) == 1
    sent = await sent_since(domain, since)
    # The assignee started the bot (she registered by her invitation link): privately.
    assert [(chat, text) for chat, text, _b in sent] == [
        (OFFICIAL, f"⏰ #{n} (Daun Penh) is overdue by 1 day: Boundary dispute with neighbour")]
    assert labels(sent[0][2]) == ["🔄 Update status", "😴 Snooze 1 day", "🆘 Ask for help"]
    version = (await domain.cases.get(n)).version
    assert [d for row in sent[0][2] for _l, d in row] == [
        f"c:{n}:{version}:upd", f"c:{n}:{version}:snz", f"c:{n}:{version}:hlp"]
    case = await domain.cases.get(n)
    assert case.reminder_level == 1 and case.next_action_at == at(18, 9)
    assert case.version == version  # reminders leave the card's buttons valid

    # At most once a day.
    since = await mark(domain)
    assert await tick(domain, clock) == 0
    clock.now = at(18, 8, 59)
    assert await tick(domain, clock) == 0
    assert await sent_since(domain, since) == []
    clock.now = at(18, 9)
    await tick(domain, clock)
    assert [chat for chat, _t, _b in await sent_since(domain, since)] == [OFFICIAL]

    # E1 = 2 days overdue: the nearest supervisors up the tree (Daun Penh has none: Phnom Penh's).
    clock.now = at(19, 9)
    since = await mark(domain)
    await tick(domain, clock)
    sent = await sent_since(domain, since)
    assert [chat for chat, _t, _b in sent] == [OFFICIAL, SUPERVISOR]
    assert sent[1][1] == (f"⬆️ #{n} (Daun Penh) is overdue by 2 days: Boundary dispute with neighbour\n"
                          f"Escalated to you. /case {n} shows it.")
    assert (await domain.cases.get(n)).reminder_level == 2

    for day in (20, 21):  # reminders only; nobody is told twice
        clock.now = at(day, 9)
        since = await mark(domain)
        await tick(domain, clock)
        assert [chat for chat, _t, _b in await sent_since(domain, since)] == [OFFICIAL]

    # E2 = 5 days: the supervisors above those (none above Phnom Penh) and the working group.
    clock.now = at(22, 9)
    since = await mark(domain)
    await tick(domain, clock)
    sent = await sent_since(domain, since)
    assert [chat for chat, _t, _b in sent] == [OFFICIAL, WG_CHAT]
    assert sent[1][1].startswith(f"⬆️ #{n} (Daun Penh) is overdue by 5 days")
    assert (await domain.cases.get(n)).reminder_level == 3

    clock.now = at(23, 9)
    since = await mark(domain)
    await tick(domain, clock)
    assert [chat for chat, _t, _b in await sent_since(domain, since)] == [OFFICIAL]

    events = await ladder_events(domain, n)
    assert [a for a, _d in events] == ["remind"] * 3 + ["escalate"] + ["remind"] * 3 + [
        "escalate", "remind"]
    assert [d["level"] for a, d in events if a == "escalate"] == [2, 3]
    assert [d["overdue_days"] for a, d in events if a == "remind"] == [0, 1, 2, 3, 4, 5, 6]
    assert {d["step"] for a, d in events if a == "remind"} == {"resolve"}
    assert all(e.actor_name == "casebot" for e in await domain.cases.history(n)
               if e.action in ("remind", "escalate"))


async def test_escalation_climbs_the_tree(domain: Domain, clock: Clock) -> None:
    await add_supervisor(domain, 4002, "Chanthy", "moi", clock)   # above Phnom Penh
    await add_supervisor(domain, 4003, "Kosal", "pp-dp", clock)   # Daun Penh's own
    n = await accepted_case(domain, clock)
    clock.now = at(17, 9) + timedelta(days=2)
    since = await mark(domain)
    await tick(domain, clock)
    assert [c for c, t, _b in await sent_since(domain, since) if t.startswith("⬆️")] == [4003]
    clock.now = at(17, 9) + timedelta(days=5)
    since = await mark(domain)
    await tick(domain, clock)
    # E2: the supervisors of the unit above Daun Penh's own (Phnom Penh), and the working group.
    assert [c for c, t, _b in await sent_since(domain, since) if t.startswith("⬆️")] == [
        SUPERVISOR, WG_CHAT]
    assert [d["level"] for a, d in await ladder_events(domain, n) if a == "escalate"] == [2, 3]


async def test_an_escalation_with_no_supervisor_up_the_tree_reaches_the_working_group(
        domain: Domain, clock: Clock) -> None:
    # Siem Reap and the ministry above it have no supervisor: E1 must not reach nobody.
    vanna = Actor(OTHER_OFFICIAL, "Vanna", SR_CHAT)
    n = await domain.new_case(clock, place_unit_id=await domain.unit_id("sr"))
    await act(domain, clock, n, Action.ASSIGN, unit_key="sr")
    await act(domain, clock, n, Action.ACCEPT, vanna)
    clock.now = at(17, 9) + timedelta(days=2)
    since = await mark(domain)
    await tick(domain, clock)
    escalated = [(c, t) for c, t, _b in await sent_since(domain, since) if t.startswith("⬆️")]
    assert [c for c, _t in escalated] == [WG_CHAT]
    assert escalated[0][1].startswith(f"⬆️ #{n} (Siem Reap) is overdue by 2 days")
    assert [d["level"] for a, d in await ladder_events(domain, n) if a == "escalate"] == [2]


async def test_after_downtime_one_reminder_and_the_escalations_due(domain: Domain, clock: Clock) -> None:
    await add_supervisor(domain, 4002, "Chanthy", "moi", clock)
    n = await accepted_case(domain, clock)
    clock.now = at(17, 9) + timedelta(days=6, hours=3)  # the bot was down for a week
    since = await mark(domain)
    assert await tick(domain, clock) == 1
    sent = await sent_since(domain, since)
    assert [c for c, t, _b in sent] == [OFFICIAL, SUPERVISOR, 4002, WG_CHAT]
    assert [a for a, _d in await ladder_events(domain, n)] == ["remind", "escalate", "escalate"]
    since = await mark(domain)
    assert await tick(domain, clock) == 0  # and not again
    assert await sent_since(domain, since) == []
    assert (await domain.cases.get(n)).next_action_at == at(24, 12)


async def test_reminders_wait_for_the_end_of_quiet_hours(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    case = await act(domain, clock, n, Action.SET_DUE, due=at(4, 21))
    assert case.next_action_at == at(4, 7)  # the warning: a day before falls in quiet hours
    clock.now = at(4, 6, 30)
    await domain.cases.run_reminder(n, clock())  # run early, by hand: held for the morning
    assert (await domain.cases.get(n)).next_action_at == at(4, 7)
    clock.now = at(4, 7)
    since = await mark(domain)
    assert await tick(domain, clock) == 1
    assert [t[:1] for _c, t, _b in await sent_since(domain, since)] == ["⏳"]
    assert (await domain.cases.get(n)).next_action_at == at(5, 7)  # the deadline, in the morning
    # Even if the case is run in quiet hours (the job was late), it holds.
    clock.now = at(4, 21, 30)
    since = await mark(domain)
    await domain.cases.run_reminder(n, clock())
    assert await sent_since(domain, since) == [] and await ladder_events(domain, n) == []
    assert (await domain.cases.get(n)).next_action_at == at(5, 7)
    clock.now = at(5, 6, 59)
    assert await tick(domain, clock) == 0
    clock.now = at(5, 7)
    assert await tick(domain, clock) == 1
    assert [c for c, _t, _b in await sent_since(domain, since)] == [OFFICIAL]
    assert (await domain.cases.get(n)).next_action_at == at(6, 7)
    # A run that comes late, in the evening, holds until the morning.
    clock.now = at(6, 20, 30)
    since = await mark(domain)
    await tick(domain, clock)
    assert await sent_since(domain, since) == []
    assert (await domain.cases.get(n)).next_action_at == at(7, 7)


async def test_days_off_hold_reminders_until_the_next_working_morning(week: Domain, clock: Clock) -> None:
    clock.now = at(5, 21)  # Thursday evening: to accept by Friday 21:00
    n = await week.new_case(clock)
    case = await act(week, clock, n, Action.ASSIGN, unit_key="pp-dp")
    assert case.accept_due_at == at(6, 21) and case.next_action_at == at(10, 7)
    since = await mark(week)
    for now in (at(6, 21), at(7, 12), at(8, 12), at(9, 12), at(10, 6, 59)):
        clock.now = now
        assert await tick(week, clock) == 0
        await week.cases.run_reminder(n, clock())  # even when run by hand: held
        assert (await week.cases.get(n)).next_action_at == at(10, 7)
    assert await sent_since(week, since) == []
    clock.now = at(10, 7)
    assert await tick(week, clock) == 1
    sent = await sent_since(week, since)
    # Late by no whole working day yet (Friday 21:00 to Tuesday 07:00): the unit is reminded,
    # its supervisors are not told yet.
    assert [(c, t) for c, t, _b in sent] == [
        (DP_CHAT, f"⏰ #{n} (Daun Penh) is still not accepted, 1 day after the deadline: "
                  "Boundary dispute with neighbour")]
    assert labels(sent[0][2]) == ["🔄 Update status", "😴 Snooze 1 day", "🆘 Ask for help"]
    # Escalation counts working days too: E1 (2 days) is reached on Thursday morning.
    for now, chats in ((at(11, 7), [DP_CHAT]), (at(12, 7), [DP_CHAT, SUPERVISOR])):
        clock.now = now
        since = await mark(week)
        await tick(week, clock)
        assert [c for c, _t, _b in await sent_since(week, since)] == chats
    events = await ladder_events(week, n)
    assert [d.get("overdue_days", d.get("level")) for _a, d in events] == [0, 1, 2, 2]


async def test_snooze_needs_a_reason_and_is_limited(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    clock.now = at(17, 9)
    await tick(domain, clock)
    with pytest.raises(Invalid):
        await act(domain, clock, n, Action.SNOOZE, dara, text="")
    clock.now = at(17, 10)
    case = await act(domain, clock, n, Action.SNOOZE, dara, text="Waiting for the surveyor")
    assert case.snoozes == 1 and case.next_action_at == at(18, 10)
    since = await mark(domain)
    clock.now = at(18, 9)
    assert await tick(domain, clock) == 0  # the usual daily reminder is held too
    clock.now = at(18, 10)
    assert await tick(domain, clock) == 1
    assert await act(domain, clock, n, Action.SNOOZE, dara, text="Surveyor comes tomorrow")
    with pytest.raises(Invalid, match="already snoozed 2 times"):
        await domain.cases.check(n, Action.SNOOZE, dara)  # refused before asking for a reason
    with pytest.raises(Invalid, match="already snoozed 2 times"):
        await act(domain, clock, n, Action.SNOOZE, dara, text="Once more please")
    with pytest.raises(Forbidden):
        await act(domain, clock, n, Action.SNOOZE, wg, text="The working group cannot")
    snoozes = [d for a, d in await ladder_events(domain, n) if a == "snooze"]
    assert len(snoozes) == 2
    notes = [e.note for e in await domain.cases.history(n) if e.action == "snooze"]
    assert notes == ["Waiting for the surveyor", "Surveyor comes tomorrow"]
    assert [c for c, _t, _b in await sent_since(domain, since)] == [OFFICIAL]  # a snooze tells nobody


async def test_help_goes_to_the_supervisors_and_the_working_group(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    since = await mark(domain)
    await act(domain, clock, n, Action.HELP, dara, text="The commune chief will not meet us")
    sent = await sent_since(domain, since)
    text = f"🆘 Dara asks for help with #{n} (Daun Penh): The commune chief will not meet us"
    assert [(c, t) for c, t, _b in sent] == [(SUPERVISOR, text), (WG_CHAT, text)]
    assert (await ladder_events(domain, n))[-1][0] == "help"
    with pytest.raises(Invalid):
        await act(domain, clock, n, Action.HELP, dara, text="?")


async def test_unaccepted_unacknowledged_and_unverified_get_their_own_reminders(
    domain: Domain, clock: Clock
) -> None:
    await domain.units.bind_chat("mlm", -100300, ADMIN, True, clock())
    unaccepted = await domain.new_case(clock)
    await act(domain, clock, unaccepted, Action.ASSIGN, unit_key="pp-dp")
    forwarded = await domain.new_case(clock)
    await act(domain, clock, forwarded, Action.FORWARD, unit_key="mlm", text="Land titles are theirs")
    resolved = await accepted_case(domain, clock)
    await act(domain, clock, resolved, Action.RESOLVE, dara, text="Fence moved back to the line")

    clock.now = at(3, 9)
    since = await mark(domain)
    await tick(domain, clock)
    sent = await sent_since(domain, since)
    assert [(c, t) for c, t, _b in sent] == [
        (DP_CHAT, f"⏰ #{unaccepted} (Daun Penh) is still not accepted, 1 day after the deadline: "
                  "Boundary dispute with neighbour")]
    clock.now = at(5, 9)
    since = await mark(domain)
    await tick(domain, clock)
    sent = await sent_since(domain, since)
    text = (f"⏰ #{forwarded} is not acknowledged by Ministry of Land, 1 day after the deadline: "
            "Boundary dispute with neighbour")
    assert [(c, t) for c, t, _b in sent if f"#{forwarded} " in t] == [(WG_CHAT, text), (-100300, text)]
    assert labels(next(b for c, t, b in sent if c == -100300)) == [
        "🔄 Update status", "😴 Snooze 1 day", "🆘 Ask for help"]
    clock.now = at(9, 9)
    since = await mark(domain)
    await tick(domain, clock)
    sent = await sent_since(domain, since)
    # The working group hears of three cases in this run: one message, escalations first, each
    # case once (the unacknowledged forward's reminder is in its escalation), oldest first.
    assert [c for c, _t, _b in sent] == [DP_CHAT, WG_CHAT, -100300]
    _chat, text, buttons = sent[1]
    assert text == (
        "⬆️ 2 overdue cases are escalated to you, oldest first:\n"
        f"• <b>#{unaccepted}</b> · Daun Penh · overdue by 6 days · not accepted · Boundary dispute with neighbour\n"
        f"• <b>#{forwarded}</b> · Ministry of Land · overdue by 4 days · not acknowledged · "
        "Boundary dispute with neighbour\n\n"
        "⏰ 1 of your cases is overdue:\n"
        f"• <b>#{resolved}</b> · Daun Penh · overdue by 1 day · not verified · Boundary dispute with neighbour\n"
        "A case's button posts its card here.")
    versions = {n: (await domain.cases.get(n)).version for n in (unaccepted, forwarded, resolved)}
    assert buttons == [[[f"#{n}", f"c:{n}:{versions[n]}:upd"] for n in (unaccepted, forwarded, resolved)]]
    steps = {n: [d["step"] for a, d in await ladder_events(domain, n) if a == "remind"]
             for n in (unaccepted, forwarded, resolved)}
    assert steps == {unaccepted: ["accept", "accept", "accept"], forwarded: ["acknowledge"] * 2,
                     resolved: ["verify"]}
    # Once verified (closed), nothing is chased any more.
    await act(domain, clock, resolved, Action.VERIFY, outcome="confirmed")
    assert (await domain.cases.get(resolved)).next_action_at is None


async def test_reminders_stop_when_the_case_moves_on(domain: Domain, clock: Clock) -> None:
    n = await accepted_case(domain, clock)
    clock.now = at(17, 9)
    await tick(domain, clock)
    case = await act(domain, clock, n, Action.RETURN, dara, text="Not our district")
    assert case.next_action_at is None and case.reminder_level == 0
    clock.now = at(25, 9)
    since = await mark(domain)
    assert await tick(domain, clock) == 0
    assert await sent_since(domain, since) == []


async def test_a_forward_without_a_chat_is_chased_with_the_working_group(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await act(domain, clock, n, Action.FORWARD, unit_key="mlm", text="Theirs", channel="letter")
    clock.now = at(5, 9)
    since = await mark(domain)
    await tick(domain, clock)
    assert [c for c, _t, _b in await sent_since(domain, since)] == [WG_CHAT]
    clock.now = at(5, 10)
    case = await act(domain, clock, n, Action.ACKNOWLEDGE, rith, reference="MLM-17")
    assert case.due_at == at(20, 10) and case.next_action_at == at(19, 10)  # now: to resolve
    clock.now = at(20, 10)
    since = await mark(domain)
    await tick(domain, clock)
    assert [(c, t) for c, t, _b in await sent_since(domain, since)] == [
        (WG_CHAT, f"⏰ #{n} (Ministry of Land) is overdue by 1 day: Boundary dispute with neighbour")]
