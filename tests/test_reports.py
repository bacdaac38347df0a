"""Reports, cohorts, public figures, fairness and exports on a data set whose figures are known
by construction."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.domain.cases import SYSTEM, Actor, Change, Draft, ImportedCase
from bot.domain.disclosure import suppress
from bot.domain.errors import Invalid
from bot.domain.reports import ReportService, parse_period
from bot.domain.rules import Action, Status
from bot.reporting import charts, cli_export, cli_report, cli_stats, render_report
from tests.conftest import WG, WG_CHAT, Clock, Domain

PP = ZoneInfo("Asia/Phnom_Penh")
NOW = datetime(2026, 5, 2, 3, 0, tzinfo=UTC)


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PP)


async def build(domain: Domain) -> dict[str, object]:
    """650 cases carried over from 2021 (125 closed in April 2026), and April 2026's intake of 185
    (67 closed in April, 118 still in progress)."""
    cat = await domain.category_id("land")
    dp, sr = await domain.unit_id("pp-dp"), await domain.unit_id("sr")
    rows, close_days = [], []
    for i in range(650):
        received = local(date(2021, 1, 1) + timedelta(days=i % 365))
        closed = i < 125
        resolved = local(date(2026, 4, 1) + timedelta(days=i % 30)) if closed else None
        if resolved:
            close_days.append((resolved - received).total_seconds() / 86400)
        rows.append(ImportedCase(f"B-{i}", received, "facebook_comment", cat, dp if i % 2 else sr,
                                 "Backlog case", "", "Citizen Secretname", "012 999 999",
                                 Status.CLOSED if closed else Status.IN_PROGRESS, resolved))
    for i in range(185):
        received = local(date(2026, 4, 1) + timedelta(days=i % 30), 9)
        closed = i < 67
        resolved = received + timedelta(hours=5) if closed else None
        if resolved:
            close_days.append((resolved - received).total_seconds() / 86400)
        rows.append(ImportedCase(f"A-{i}", received, "facebook_message", cat, dp, "April case", "",
                                 "Citizen Secretname", "", Status.CLOSED if closed else Status.IN_PROGRESS,
                                 resolved))
    created, skipped = await domain.cases.import_cases(SYSTEM, rows, NOW)
    assert len(created) == 835 and skipped == []
    return {"close_days": close_days}


async def test_the_ministrys_sentences_exactly(domain: Domain) -> None:
    built = await build(domain)
    reports = ReportService(domain.db, domain.units, PP)
    rep = await reports.report(parse_period("2026-04", PP), None, NOW)
    assert (rep.received, rep.intake_resolved, rep.intake_open) == (185, 67, 118)
    assert rep.resolved == 192 and rep.closed == {"confirmed": 192}
    [cohort] = rep.cohorts
    assert (cohort.year, cohort.open_at_start, cohort.resolved_since, cohort.still_open) == (2021, 650, 125, 525)
    assert rep.in_progress_at_end == 118 + 525
    days = built["close_days"]
    assert isinstance(days, list)
    assert rep.median_days_to_close == round(statistics.median(days), 1)
    text = render_report(rep, html=False)
    assert "Of the 185 requests received in April 2026, 67 have been resolved and 118 are still in progress." in text
    assert "Of the 650 cases carried over from 2021, 125 have been resolved and 525 are still being addressed." in text
    # Imported cases keep their received date; history starts with "imported".
    first = (await domain.cases.history(1))[0]
    assert first.action == "import" and first.to_status == "closed"


async def test_period_boundaries_are_local(domain: Domain, clock: Clock) -> None:
    cat, dp = await domain.category_id("land"), await domain.unit_id("pp-dp")
    wg = Actor(WG, "Sophea", WG_CHAT)
    for when in (local(date(2026, 4, 30), 23, 30), local(date(2026, 5, 1), 0, 10),
                 local(date(2026, 4, 1), 0, 5), local(date(2026, 3, 31), 23, 55)):
        await domain.cases.create(wg, Draft(source="phone", category_id=cat, place_unit_id=dp,
                                            summary="Boundary", citizen_name="X", received_at=when), clock())
    rep = await ReportService(domain.db, domain.units, PP).report(parse_period("2026-04", PP), None, NOW)
    assert rep.received == 2
    q = parse_period("2026-Q2", PP)
    assert q.start == local(date(2026, 4, 1), 0) and q.end == local(date(2026, 7, 1), 0)
    assert parse_period("2026", PP).end == local(date(2027, 1, 1), 0)
    for bad in ("2026-13", "26-04", "2026-Q5", "April"):
        with pytest.raises(Invalid):
            parse_period(bad, PP)


async def test_forwarded_returned_reopened_in_the_period(domain: Domain, clock: Clock) -> None:
    wg = Actor(WG, "Sophea", WG_CHAT)
    clock.now = local(date(2026, 4, 10), 10)
    a = await domain.new_case(clock)
    b = await domain.new_case(clock)
    await domain.cases.apply(a, Action.FORWARD, wg, Change(text="their land", unit_key="mlm", channel="letter"), clock())
    from tests.conftest import LIAISON, OFFICIAL
    await domain.cases.apply(a, Action.ACKNOWLEDGE, Actor(LIAISON, "Rith"), Change(), clock())
    await domain.cases.apply(b, Action.ASSIGN, wg, Change(unit_key="pp-dp"), clock())
    await domain.cases.apply(b, Action.RETURN, Actor(OFFICIAL, "Dara"), Change(text="not ours here"), clock())
    rep = await ReportService(domain.db, domain.units, PP).report(parse_period("2026-04", PP), None, NOW)
    assert rep.forwarded == {"Ministry of Land": (1, 1)}
    assert rep.returned == 1
    assert "Ministry of Land: 1 forwarded, 1 acknowledged" in render_report(rep)


async def test_supervisor_scope(domain: Domain) -> None:
    await build(domain)
    reports = ReportService(domain.db, domain.units, PP)
    scope = domain.units.subtree(await domain.unit_id("pp"))
    rep = await reports.report(parse_period("2026-04", PP), scope, NOW)
    assert rep.received == 185  # April's intake is all Daun Penh
    assert rep.cohorts[0].open_at_start == 325  # half the backlog is in Siem Reap


async def test_public_figures_suppress_small_counts_and_show_no_personal_data(domain: Domain) -> None:
    await build(domain)
    cat = await domain.category_id("docs")
    ck = await domain.unit_id("pp-dp")
    await domain.cases.import_cases(SYSTEM, [
        ImportedCase(f"S-{i}", local(date(2026, 3, 2)), "phone", cat, ck, "Small", "", "Tiny Person", "",
                     Status.IN_PROGRESS) for i in range(3)], NOW)
    stats = await ReportService(domain.db, domain.units, PP).public(NOW)
    dumped = json.dumps(stats, ensure_ascii=False)
    assert "Secretname" not in dumped and "Tiny Person" not in dumped and "Backlog case" not in dumped
    by_cat = {r["category"]: r for r in stats["category"]}
    assert "Civil documents" not in by_cat  # fewer than 10 cases: never shown on its own
    # Nor alone in a pool, which the total less the other rows would give: pooled with the
    # smallest other category (here the only one).
    [(name, others)] = by_cat.items()
    assert name == "others, pooled (2)" and others["received"] == 838
    march = next(r for r in stats["month"] if r["month"] == "2026-03")
    assert march["received"] == "<5"
    april = next(r for r in stats["month"] if r["month"] == "2026-04")
    assert april["received"] == 185 and april["closed"] == 67
    assert suppress(0) == 0 and suppress(4) == "<5" and suppress(5) == 5


async def test_out_of_order_closes(domain: Domain) -> None:
    cat, dp = await domain.category_id("land"), await domain.unit_id("pp-dp")
    rows = [
        ImportedCase("O-old", local(date(2026, 1, 5)), "phone", cat, dp, "older", "", "A", "", Status.IN_PROGRESS),
        ImportedCase("O-new", local(date(2026, 2, 5)), "phone", cat, dp, "newer", "", "B", "", Status.CLOSED,
                     local(date(2026, 2, 20))),
        ImportedCase("O-fair", local(date(2025, 12, 1)), "phone", cat, dp, "oldest", "", "C", "", Status.CLOSED,
                     local(date(2025, 12, 20))),
    ]
    await domain.cases.import_cases(SYSTEM, rows, NOW)
    reports = ReportService(domain.db, domain.units, PP)
    cases = [h async for h in reports.histories(None)]
    flagged = reports.out_of_order(cases, local(date(2020, 1, 1)), NOW)
    assert flagged == {2}  # the newer case closed while the older one waited; the oldest did not


async def test_charts_cli_and_exports(domain: Domain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await build(domain)
    rep = await ReportService(domain.db, domain.units, PP).report(parse_period("2026-04", PP), None, NOW)
    pngs = charts(rep)
    assert [name for name, _ in pngs] == ["received-closed.png", "open-ages.png"]
    assert all(png.startswith(b"\x89PNG") for _, png in pngs)
    settings = domain.settings
    assert await cli_report(settings, argparse.Namespace(period="2026-04", charts=str(tmp_path / "c"))) == 0
    out = capsys.readouterr().out
    assert "Of the 650 cases carried over from 2021, 125 have been resolved" in out
    assert "Fairness in April 2026, per province and per category" in out and "closed out of order" in out
    assert (tmp_path / "c" / "open-ages.png").exists()
    assert await cli_report(settings, argparse.Namespace(period="2026-14", charts=None)) == 2

    xlsx = tmp_path / "all.xlsx"
    assert await cli_export(settings, argparse.Namespace(period=None, format="xlsx", output=str(xlsx),
                                                         no_personal_data=False)) == 0
    wb = load_workbook(xlsx, read_only=True)
    cases = list(wb["cases"].iter_rows(values_only=True))
    assert len(cases) == 836 and "citizen_name" in cases[0]
    assert len(list(wb["events"].iter_rows(values_only=True))) == 836
    csv_path = tmp_path / "april.csv"
    assert await cli_export(settings, argparse.Namespace(period="2026-04", format="csv", output=str(csv_path),
                                                         no_personal_data=True)) == 0
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "citizen" not in text and "Secretname" not in text
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        april = list(csv.DictReader(fh))
    # Every case April's report counts, with columns saying how: the 185 received, the 125
    # carried over and resolved in April, the 525 still open at its end.
    assert len(april) == 835
    assert sum(r["received_in_period"] == "True" for r in april) == rep.received == 185
    assert sum(r["resolved_in_period"] == "True" for r in april) == rep.resolved == 192
    assert sum(r["closed_in_period"] == "True" for r in april) == sum(rep.closed.values()) == 192
    assert sum(r["status_at_end"] == "in_progress" for r in april) == rep.in_progress_at_end == 643
    assert sum(r["overdue_at_end"] == "True" for r in april) == rep.overdue_at_end
    assert (tmp_path / "april-events.csv").exists()
    assert await cli_stats(settings, argparse.Namespace(format="json")) == 0
    assert "Secretname" not in capsys.readouterr().out
