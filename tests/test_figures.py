"""Figures that do not drift (issue 16): a past period's report from the cases' history, closes
out of order that do not depend on row order, public figures whose hidden counts cannot be worked
out, fairness scoped to the report's period, Khmer month names, exports that answer the report,
charts a reader can read."""

from __future__ import annotations

import argparse
import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.config import parse_settings
from bot.db import Database, to_db
from bot.domain.cases import SYSTEM, Actor, CaseService, Change, ImportedCase
from bot.domain.disclosure import HIDDEN, HIDDEN_SMALL, SMALL, pool, protect
from bot.domain.history import build
from bot.domain.outbox import OutboxStore
from bot.domain.people import PeopleService
from bot.domain.reports import ReportService, parse_period
from bot.domain.rules import Action, Status
from bot.domain.units import UnitService
from bot.i18n import use_locale
from bot.reporting import _khmer_font, charts, cli_export, fairness_lines, partial_weeks, render_report
from tests.conftest import ADMIN, OFFICIAL, WG, WG_CHAT, Clock, Domain, config_dict, register_people
from tests.harness import Bot
from tests.test_e2e_inputs import make_case

PP = ZoneInfo("Asia/Phnom_Penh")
APRIL = parse_period("2026-04", PP)
WG_ACTOR = Actor(WG, "Sophea", WG_CHAT)
OFFICIAL_ACTOR = Actor(OFFICIAL, "Dara")
ADMIN_ACTOR = Actor(ADMIN, "Admin")


def local(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=PP)


def at(clock: Clock, day: date, hour: int = 10) -> datetime:
    clock.now = local(day, hour).astimezone(UTC)
    return clock.now


async def april(domain: Domain, clock: Clock) -> dict[str, int]:
    """Cases of April 2026 in Daun Penh, each a kind of step; returns them by name."""
    cases = domain.cases
    made: dict[str, int] = {}

    async def new(name: str, day: date, **draft: Any) -> int:
        at(clock, day)
        made[name] = await domain.new_case(clock, citizen_contact="+855 12 345 678", **draft)
        return made[name]

    async def step(name: str, action: Action, actor: Actor, change: Change, day: date, hour: int = 11) -> None:
        await cases.apply(made[name], action, actor, change, at(clock, day, hour))

    assign = Change(unit_key="pp-dp")
    # Still in progress on 30 April and past its deadline then; resolved in May.
    await new("late", date(2026, 4, 2))
    await step("late", Action.ASSIGN, WG_ACTOR, assign, date(2026, 4, 2))
    await step("late", Action.ACCEPT, OFFICIAL_ACTOR, Change(), date(2026, 4, 2), 12)
    # In progress, its deadline still ahead on 30 April.
    await new("fresh", date(2026, 4, 27))
    await step("fresh", Action.ASSIGN, WG_ACTOR, assign, date(2026, 4, 27))
    # Resolved and verified in April; reopened in May.
    await new("closed", date(2026, 4, 3))
    await step("closed", Action.ASSIGN, WG_ACTOR, assign, date(2026, 4, 3))
    await step("closed", Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Fence put back in place"), date(2026, 4, 10))
    await step("closed", Action.VERIFY, WG_ACTOR, Change(outcome="confirmed"), date(2026, 4, 12))
    # Resolved in April, awaiting verification at its end; merged as a duplicate in May.
    await new("resolved", date(2026, 4, 5))
    await step("resolved", Action.ASSIGN, WG_ACTOR, assign, date(2026, 4, 5))
    await step("resolved", Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Road repaired by the commune"),
               date(2026, 4, 25))
    # Received in March, past its deadline, waiting for information at the end of April.
    await new("waiting", date(2026, 3, 2))
    await step("waiting", Action.ASSIGN, WG_ACTOR, assign, date(2026, 3, 2))
    await step("waiting", Action.NEED_INFO, OFFICIAL_ACTOR, Change(text="Which plot?"), date(2026, 4, 6))
    # Forwarded in April, acknowledged only in May.
    await new("forwarded", date(2026, 4, 8))
    await step("forwarded", Action.FORWARD, WG_ACTOR, Change(text="their land", unit_key="mlm", channel="letter"),
               date(2026, 4, 8))
    # Not ours: back in the queue at the end of April; assigned elsewhere in May.
    await new("returned", date(2026, 4, 12))
    await step("returned", Action.ASSIGN, WG_ACTOR, assign, date(2026, 4, 12))
    await step("returned", Action.RETURN, OFFICIAL_ACTOR, Change(text="Siem Reap's"), date(2026, 4, 14))
    # Finished before April; received after it.
    await new("march", date(2026, 3, 1))
    await step("march", Action.ASSIGN, WG_ACTOR, assign, date(2026, 3, 1))
    await step("march", Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Certificate issued"), date(2026, 3, 10))
    await step("march", Action.VERIFY, WG_ACTOR, Change(outcome="confirmed"), date(2026, 3, 20))
    return made


async def may(domain: Domain, clock: Clock, made: dict[str, int]) -> None:
    """Everything that happens to April's cases afterwards."""
    cases = domain.cases

    async def step(name: str, action: Action, actor: Actor, change: Change, day: date) -> None:
        await cases.apply(made[name], action, actor, change, at(clock, day))

    await step("late", Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Boundary marked again"), date(2026, 5, 4))
    await step("late", Action.VERIFY, WG_ACTOR, Change(outcome="confirmed"), date(2026, 5, 5))
    await step("closed", Action.REOPEN, WG_ACTOR, Change(text="The fence moved again"), date(2026, 5, 3))
    await step("resolved", Action.MERGE, WG_ACTOR, Change(into=made["fresh"], text="same road"), date(2026, 5, 4))
    await step("waiting", Action.PROVIDE_INFO, WG_ACTOR, Change(text="Plot 12"), date(2026, 5, 6))
    await step("forwarded", Action.ACKNOWLEDGE, ADMIN_ACTOR, Change(), date(2026, 5, 2))
    await step("returned", Action.ASSIGN, WG_ACTOR, Change(unit_key="sr"), date(2026, 5, 2))
    await step("fresh", Action.SET_DUE, WG_ACTOR, Change(due=local(date(2026, 6, 30))), date(2026, 5, 7))
    at(clock, date(2026, 5, 9))
    await domain.new_case(clock)  # received in May


async def test_a_past_periods_report_holds_after_later_events(domain: Domain, clock: Clock) -> None:
    made = await april(domain, clock)
    reports = ReportService(domain.db, domain.units, PP)
    first_of_may = local(date(2026, 5, 1), 9)
    before = await reports.report(APRIL, None, first_of_may, fairness=True)
    fairness_before = await reports.fairness(APRIL, None, first_of_may)
    assert before.fairness == fairness_before  # the same, in the report's own pass

    # What the history says of April, case by case.
    assert (before.received, before.intake_resolved, before.intake_open) == (6, 2, 4)
    assert before.resolved == 2 and before.closed == {"confirmed": 1}
    assert before.awaiting_verification_at_end == 1
    assert before.in_progress_at_end == 5  # late, fresh, waiting, forwarded, returned
    # late, and the forward not acknowledged in time; waiting's clock stopped, fresh's deadline
    # is ahead, returned is in the queue (no deadline).
    assert before.overdue_at_end == 2
    assert before.forwarded == {"Ministry of Land": (1, 0)} and before.returned == 1

    await may(domain, clock, made)
    for now in (local(date(2026, 5, 10)), local(date(2027, 1, 1))):
        assert await reports.report(APRIL, None, now, fairness=True) == before
        assert await reports.fairness(APRIL, None, now) == fairness_before
    # The case resolved in May is still counted overdue at the end of April; today it has no
    # deadline at all (what the report used to read).
    late = await domain.cases.get(made["late"])
    assert late.due_at is None and late.status is Status.CLOSED
    # May itself sees what happened in May.
    may_report = await reports.report(parse_period("2026-05", PP), None, local(date(2026, 6, 1)))
    assert may_report.reopened == 1 and may_report.merged == 1 and may_report.received == 1
    assert may_report.forwarded == {}  # the forward was in April; its acknowledgment in May


async def test_the_ministrys_backlog_overdue_at_the_end_of_april(domain: Domain) -> None:
    """The issue's figure: 650 cases carried over from 2021, 125 resolved in April. At the end of
    April every one still open is past its deadline, also after they are resolved in May."""
    from tests.test_reports import NOW
    from tests.test_reports import build as build_backlog

    await build_backlog(domain)
    reports = ReportService(domain.db, domain.units, PP)
    report = await reports.report(APRIL, None, NOW)
    intake_overdue = sum(1 for i in range(67, 185) if (date(2026, 4, 1) + timedelta(days=i % 30)).day <= 15)
    assert report.overdue_at_end == 525 + intake_overdue
    backlog = [r["id"] for r in await domain.db.all(
        "SELECT id FROM cases WHERE external_ref LIKE 'B-%' AND status = 'in_progress' ORDER BY id LIMIT 100")]
    for n in backlog:
        await domain.cases.apply(n, Action.RESOLVE, ADMIN_ACTOR, Change(text="Dealt with in May"),
                                 local(date(2026, 5, 4)))
    later = await reports.report(APRIL, None, local(date(2026, 6, 1)))
    assert later == report
    assert [c.still_open for c in later.cohorts] == [525]


def test_events_written_before_deadlines_were_recorded() -> None:
    """Old events carry no deadline: the case's current one holds back to the step that set it,
    and further back the case counts as under no deadline."""
    due = "2026-04-20T02:00:00+00:00"
    case = {"id": 1, "unit_id": 7, "place_unit_id": 7, "category": "land", "status": "waiting_info",
            "received_at": "2026-04-01T03:00:00+00:00", "due_at": due, "resolved_at": None}

    def event(day: int, action: str, status: str, **data: object) -> dict[str, object]:
        """A row as ``EVENTS_SQL`` gives it."""
        return {"at": f"2026-04-{day:02d}T03:00:00+00:00", "action": action, "to_status": status,
                "has_due": "due" in data, **{k: data.get(k) for k in ("due", "unit", "bouncing", "outcome",
                                                                       "resolved")}}

    events = [event(1, "create", "new"), event(2, "assign", "assigned", unit="pp-dp"),
              event(3, "return", "new"), event(4, "assign", "assigned", unit="pp-dp"),
              event(5, "accept", "in_progress"), event(6, "need_info", "waiting_info")]
    h = build(case, events, {"pp-dp": 7})
    assert [(s.status, s.due) for s in h.states] == [
        ("new", None), ("assigned", None), ("new", None), ("assigned", datetime.fromisoformat(due)),
        ("in_progress", datetime.fromisoformat(due)), ("waiting_info", datetime.fromisoformat(due))]
    # Recorded ones are read as recorded.
    events[4] = event(5, "accept", "in_progress", due="2026-04-19T02:00:00+00:00")
    h = build(case, events, {"pp-dp": 7})
    assert h.states[4].due == datetime.fromisoformat("2026-04-19T02:00:00+00:00")
    assert h.states[5].due == datetime.fromisoformat(due)


async def test_each_step_records_the_deadline_in_force(domain: Domain, clock: Clock) -> None:
    n = await domain.new_case(clock)
    await domain.cases.apply(n, Action.ASSIGN, WG_ACTOR, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(n, Action.NOTE, WG_ACTOR, Change(text="a note"), clock())
    case = await domain.cases.get(n)
    history = await domain.cases.history(n)
    assert case.due_at is not None
    assert [e.data.get("due", "-") for e in history] == ["-", to_db(case.due_at), "-"]


# --- closes out of order ------------------------------------------------------------------------

@pytest.mark.parametrize(("open_day", "closed_day", "expected"), [
    (date(2026, 1, 5), date(2026, 1, 5), 0),  # received the same day: nobody is older
    (date(2026, 1, 4), date(2026, 1, 5), 5),  # the open ones are older: each close jumped them
    (date(2026, 1, 6), date(2026, 1, 5), 0),  # the closed ones are older: in order
])
@pytest.mark.parametrize("closed_first", [True, False])
async def test_out_of_order_closes_do_not_depend_on_row_order(
        domain: Domain, open_day: date, closed_day: date, expected: int, closed_first: bool) -> None:
    cat, dp = await domain.category_id("land"), await domain.unit_id("pp-dp")
    closed = [ImportedCase(f"C-{i}", local(closed_day, 9 + i), "phone", cat, dp, "closed", "", "A", "",
                           Status.CLOSED, local(date(2026, 1, 20))) for i in range(5)]
    still = [ImportedCase(f"O-{i}", local(open_day, 9 + i), "phone", cat, dp, "open", "", "B", "",
                          Status.IN_PROGRESS) for i in range(5)]
    now = local(date(2026, 2, 1))
    await domain.cases.import_cases(SYSTEM, closed + still if closed_first else still + closed, now)
    reports = ReportService(domain.db, domain.units, PP)
    cases = [h async for h in reports.histories(None)]
    flagged = reports.out_of_order(cases, local(date(2026, 1, 1)), now)
    assert len(flagged) == expected
    assert all(h.closed for h in cases if h.id in flagged)
    [province] = (await reports.public(now))["province"]
    assert province["out_of_order_closes"] == expected


async def test_out_of_order_is_judged_with_the_unit_of_the_moment(domain: Domain, clock: Clock) -> None:
    """An older case that waited in another unit when a newer one was closed does not count."""
    older = await domain.new_case(clock)
    await domain.cases.apply(older, Action.ASSIGN, WG_ACTOR, Change(unit_key="sr"), clock())
    clock.advance(days=1)
    newer = await domain.new_case(clock)
    await domain.cases.apply(newer, Action.ASSIGN, WG_ACTOR, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(newer, Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Done and dusted"), clock())
    await domain.cases.apply(newer, Action.VERIFY, WG_ACTOR, Change(outcome="confirmed"), clock())
    reports = ReportService(domain.db, domain.units, PP)
    cases = [h async for h in reports.histories(None)]
    assert reports.out_of_order(cases, clock() - timedelta(days=5), clock() + timedelta(days=1)) == set()
    # The same with the older one in Daun Penh's hands: out of order.
    await domain.cases.apply(older, Action.ASSIGN, WG_ACTOR, Change(unit_key="pp-dp"), clock())
    clock.advance(hours=1)
    other = await domain.new_case(clock)
    await domain.cases.apply(other, Action.ASSIGN, WG_ACTOR, Change(unit_key="pp-dp"), clock())
    clock.advance(days=1)
    await domain.cases.apply(other, Action.RESOLVE, OFFICIAL_ACTOR, Change(text="Done and dusted"), clock())
    await domain.cases.apply(other, Action.VERIFY, WG_ACTOR, Change(outcome="confirmed"), clock())
    cases = [h async for h in reports.histories(None)]
    assert reports.out_of_order(cases, clock() - timedelta(days=5), clock() + timedelta(days=1)) == {other}


# --- public figures: nothing small, nothing recoverable ---------------------------------------------

PROVINCES = {"kp": ("Kampot", 40), "kep": ("Kep", 3), "pl": ("Pailin", 12), "kk": ("Koh Kong", 25),
             "tk": ("Takeo", 18)}


@pytest.fixture
async def ministry(tmp_path: Path, clock: Clock) -> AsyncIterator[Domain]:
    """Five provinces, one of them (Kep) with fewer than 10 cases."""
    config = config_dict(tmp_path / "m.sqlite3")
    config["units"] += [{"key": k, "name": name, "kind": "province", "parent": "moi"}
                        for k, (name, _n) in PROVINCES.items()]
    config["categories"] += [{"key": "roads", "name": "Roads"}, {"key": "water", "name": "Water"}]
    settings = parse_settings(config)
    db = await Database.open(settings.database_path)
    units = UnitService(db, settings)
    await units.sync_from_config()
    people = PeopleService(db, settings, units)
    await people.sync_config(clock())
    await register_people(people, clock())
    yield Domain(db, units, people, CaseService(db, settings, units, people, clock), OutboxStore(db), settings)
    await db.close()


def hidden_counts_pinned_down(rows: list[dict[str, object]], column: str, total: int) -> list[int]:
    """What a reader with the column's total works out: the rows whose count shown as "<5" can
    only be one number, given every count shown and what the marks say ("<5": 0 to 4; "x": 5 or
    more)."""
    shown = sum(int(str(r[column])) for r in rows if isinstance(r[column], int))
    hidden = [i for i, r in enumerate(rows) if r[column] in (HIDDEN_SMALL, HIDDEN)]
    bounds = {i: (0, SMALL - 1) if rows[i][column] == HIDDEN_SMALL else (SMALL, math.inf) for i in hidden}
    rest = total - shown
    pinned = []
    for i in hidden:
        if rows[i][column] != HIDDEN_SMALL:
            continue
        low = max(bounds[i][0], rest - sum(bounds[j][1] for j in hidden if j != i))
        high = min(bounds[i][1], rest - sum(bounds[j][0] for j in hidden if j != i))
        if high - low < 1:
            pinned.append(i)
    return pinned


async def test_public_figures_hide_small_counts_beyond_subtraction(ministry: Domain) -> None:
    domain = ministry
    categories = ["land", "docs", "roads", "water"]
    rows, truth = [], []
    n = 0
    for key, (_name, count) in PROVINCES.items():
        unit = await domain.unit_id(key)
        for i in range(count):
            n += 1
            closed = i % 7 == 0
            received = local(date(2026, 1 + i % 4, 2 + i % 20))
            rows.append(ImportedCase(f"R-{n}", received, "phone", await domain.category_id(categories[i % 4]),
                                     unit, "text", "", "Citizen", "", Status.CLOSED if closed else Status.IN_PROGRESS,
                                     received + timedelta(days=3) if closed else None))
            truth.append((key, closed))
    now = local(date(2026, 6, 1))
    await domain.cases.import_cases(SYSTEM, rows, now)
    stats = await ReportService(domain.db, domain.units, PP).public(now)

    by_province = {str(r["province"]): r for r in stats["province"]}
    assert "Kep" not in by_province
    others = next(r for k, r in by_province.items() if k.startswith("others"))
    # Not Kep's figures: pooled with the smallest other province, so that the total less the
    # other rows never gives Kep's.
    assert others["received"] == 3 + 12 and "Pailin" not in by_province
    assert sorted(r["received"] for r in stats["province"]) == sorted([40, 25, 18, 15])
    totals = {"received": len(truth), "closed": sum(c for _k, c in truth),
              "in_progress": sum(not c for _k, c in truth), "forwarded": 0}
    for dimension in ("month", "province", "category"):
        table = stats[dimension]
        for column, total in totals.items():
            assert hidden_counts_pinned_down(table, column, total) == [], (dimension, column, table)
    # Something was hidden for it to mean anything: Kep's and the pool's closes are small.
    assert any(r["closed"] in (HIDDEN_SMALL, HIDDEN) for t in stats.values() for r in t)


@pytest.mark.parametrize(("values", "shown"), [
    ([3, 50, 60], [HIDDEN_SMALL, HIDDEN, 60]),          # one small count: the next smallest hidden too
    ([0, 3, 50], [HIDDEN_SMALL, HIDDEN_SMALL, 50]),     # a 0 can hide it ("<5": 0 to 4)
    ([2, 3, 50, 60], [HIDDEN_SMALL, HIDDEN_SMALL, 50, 60]),  # two small ones: 5 could be 1+4, 2+3…
    ([4, 4, 50], [HIDDEN_SMALL, HIDDEN_SMALL, HIDDEN]),  # 8 = 4+4 only: one more
    ([1, 1, 50], [HIDDEN_SMALL, HIDDEN_SMALL, 50]),      # 2 = 0+2, 1+1, 2+0
    ([7, 50, 60], [7, 50, 60]),                          # nothing small: nothing hidden
])
def test_complementary_suppression(values: list[int], shown: list[object]) -> None:
    rows: list[dict[str, object]] = [{"n": v} for v in values]
    protect(rows, ["n"])
    assert [r["n"] for r in rows] == shown
    assert hidden_counts_pinned_down(rows, "n", sum(values)) == []


def test_a_pool_never_singles_one_out() -> None:
    groups = {"a": [1] * 40, "b": [1] * 3, "c": [1] * 12}
    shown, pooled, members = pool(groups)
    assert [k for k, _v in shown] == ["a"] and pooled == ["b", "c"] and len(members) == 15
    shown, pooled, _members = pool({"a": [1] * 40, "b": [1] * 3, "c": [1] * 4, "d": [1] * 5})
    assert pooled == ["b", "c", "d"]  # 12 cases in three groups: enough
    assert pool({"a": [1] * 40, "b": [1] * 30}) == ([("a", [1] * 40), ("b", [1] * 30)], [], [])


# --- fairness in a period ----------------------------------------------------------------------------

async def test_fairness_in_a_monthly_report_is_about_its_month(domain: Domain) -> None:
    cat, dp = await domain.category_id("land"), await domain.unit_id("pp-dp")
    rows = []
    for i in range(12):  # closed in March after 40 days
        received = local(date(2026, 1, 20) + timedelta(days=i % 3))
        rows.append(ImportedCase(f"M-{i}", received, "phone", cat, dp, "old", "", "A", "", Status.CLOSED,
                                 received + timedelta(days=40)))
    for i in range(12):  # closed in April after 2 days
        received = local(date(2026, 4, 2) + timedelta(days=i))
        rows.append(ImportedCase(f"A-{i}", received, "phone", cat, dp, "new", "", "B", "", Status.CLOSED,
                                 received + timedelta(days=2)))
    now = local(date(2026, 5, 15))
    await domain.cases.import_cases(SYSTEM, rows, now)
    reports = ReportService(domain.db, domain.units, PP)
    april_rows = await reports.fairness(APRIL, None, now)
    [province] = april_rows["province"]
    assert province["median_days_to_close"] == 2.0 and province["closed"] == 12
    all_time = await reports.public(now)
    [everywhere] = all_time["province"]
    assert everywhere["median_days_to_close"] == 21.0  # all time: March's closes too
    lines = fairness_lines(april_rows, APRIL, html=False)
    assert lines[0].startswith("Fairness in April 2026, per province and per category")
    assert "Phnom Penh: median 2.0 days to close" in lines[1]
    assert fairness_lines(all_time, None, html=False)[0].startswith("Fairness, all time")


# --- Khmer ---------------------------------------------------------------------------------------------

async def test_khmer_reports_name_the_month_in_khmer(domain: Domain, clock: Clock) -> None:
    await april(domain, clock)
    reports = ReportService(domain.db, domain.units, PP)
    report = await reports.report(APRIL, None, local(date(2026, 5, 1)))
    with use_locale("km"):
        text = render_report(report)
        title = fairness_lines(await reports.fairness(APRIL, None, local(date(2026, 5, 1))), APRIL)[0]
        quarter = render_report(await reports.report(parse_period("2026-Q2", PP), None, local(date(2026, 7, 1))))
    assert text.startswith("<b>របាយការណ៍សម្រាប់ មេសា 2026</b>") and "2026-04" not in text
    assert "មេសា 2026" in title
    assert "ត្រីមាសទី 2 2026" in quarter
    assert render_report(report).startswith("<b>Report for April 2026</b>")


async def test_report_and_stats_in_khmer_in_telegram(bot: Bot) -> None:
    await make_case(bot)
    wg = bot.private(bot.wg)
    await bot.say(bot.wg, wg, "/lang km")
    m = await bot.say(bot.wg, wg, "/report 2026-11")
    text = bot.texts_since(m)[0]
    assert "វិច្ឆិកា 2026" in text and "2026-11" not in text
    photos = bot.sent_since(m, None, "sendPhoto")
    assert [p.params["caption"] for p in photos] == ["វិច្ឆិកា 2026"] * 2
    m = await bot.say(bot.wg, wg, "/stats")
    assert "វិច្ឆិកា 2026" in bot.texts_since(m)[0]


# --- exports answer the report ------------------------------------------------------------------------

async def test_a_periods_export_holds_every_case_its_report_counts(domain: Domain, clock: Clock,
                                                                  tmp_path: Path) -> None:
    made = await april(domain, clock)
    await may(domain, clock, made)
    reports = ReportService(domain.db, domain.units, PP)
    report = await reports.report(APRIL, None, clock())
    path = tmp_path / "april.xlsx"
    assert await cli_export(domain.settings, argparse.Namespace(
        period="2026-04", format="xlsx", output=str(path), no_personal_data=False)) == 0
    book = load_workbook(path)
    header, *cells = list(book["cases"].iter_rows())
    names = [c.value for c in header]
    rows = {r[0].value: dict(zip(names, r, strict=True)) for r in cells}
    by_name = {name: rows.get(n) for name, n in made.items()}
    # Every case the report counts, none it does not: the March one closed before April and the
    # one received in May are left out; "waiting", received in March, is in as open at the end.
    assert by_name["march"] is None and set(rows) == {n for k, n in made.items() if k != "march"}

    def flags(name: str) -> tuple[object, ...]:
        row = by_name[name]
        assert row is not None
        return tuple(row[c].value for c in ("received_in_period", "resolved_in_period", "closed_in_period",
                                            "reopened_in_period", "status_at_end", "overdue_at_end"))

    assert flags("closed") == (True, True, True, False, "closed", False)
    assert flags("resolved") == (True, True, False, False, "resolved", False)
    assert flags("late") == (True, False, False, False, "in_progress", True)
    assert flags("waiting") == (False, False, False, False, "waiting_info", False)
    # The report's figures, counted from the sheet.
    column = {c: [r[c].value for r in rows.values()] for c in names}
    assert column["received_in_period"].count(True) == report.received
    assert column["resolved_in_period"].count(True) == report.resolved
    assert column["closed_in_period"].count(True) == sum(report.closed.values())
    assert column["overdue_at_end"].count(True) == report.overdue_at_end
    assert column["status_at_end"].count("resolved") == report.awaiting_verification_at_end
    # Local date cells, and the contact as written: a text cell, no apostrophe in sight.
    late = by_name["late"]
    assert late is not None
    assert late["received_at"].is_date and late["received_at"].value == datetime(2026, 4, 2, 10, 0)
    assert (late["citizen_contact"].value, late["citizen_contact"].data_type) == ("+855 12 345 678", "s")
    events = list(book["events"].iter_rows(min_row=2, values_only=True))
    assert {e[0] for e in events} == set(rows) and all(isinstance(e[1], datetime) for e in events)


# --- charts -------------------------------------------------------------------------------------------

async def test_charts_mark_partial_weeks_and_show_what_is_not_closed(domain: Domain, clock: Clock) -> None:
    await april(domain, clock)
    reports = ReportService(domain.db, domain.units, PP)
    report = await reports.report(APRIL, None, local(date(2026, 5, 1)))
    # April 2026 begins on a Wednesday and ends on a Thursday.
    assert [w for w, _r, _c in report.weekly] == [date(2026, 3, 30) + timedelta(days=7 * i) for i in range(5)]
    assert partial_weeks(report) == [True, False, False, False, True]
    june = await reports.report(parse_period("2026-06", PP), None, local(date(2026, 7, 1)))
    assert partial_weeks(june) == [False, False, False, False, True]  # Mon 1 June to Tue 30 June
    assert len(report.awaiting_ages) == 1 and len(report.open_ages) == 5
    for language in ("en", "km"):
        with use_locale(language):
            pngs = charts(report)
        assert [name for name, _png in pngs] == ["received-closed.png", "open-ages.png"]
        assert all(png.startswith(b"\x89PNG") for _name, png in pngs)
    if _khmer_font() is None:  # without a Khmer font the charts fall back to English
        return
    with use_locale("km"):
        khmer = charts(report)
    with use_locale("en"):
        english = charts(report)
    assert khmer != english
