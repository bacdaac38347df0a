"""The benchmarks of bench/ run end to end at a tiny size, so that they do not rot.

Only behaviour and completion are checked, never timing: every benchmark measures what it says
(the same number of reminders due at every size, a digest for every supervisor, presses that
resolve their cases through the inbox, a private command answered while a group's backlog waits
on its limit, every notification delivered, a bot process that starts and sends its digests). ``python -m bench.run`` measures for real (bench/README.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import Figure
from bench.compare import comparison
from bench.run import BENCHMARKS, PG_BENCHMARKS, Options, run
from tests import pgtest


@pytest.fixture(autouse=True)
def _keep_log_levels() -> Iterator[None]:
    """The benchmarks quiet the bot's loggers; the tests after this one need them as they were."""
    levels = {name: logging.getLogger(name).level for name in ("", "bot", "telegram", "httpx")}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.sqlite_only("bench/ builds its databases as SQLite files")
def test_every_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    options = Options(
        sizes=[400, 800], due_now=20, data_dir=tmp_path / "data", work_dir=tmp_path / "work",
        press_cases=2, press_rounds=1, press_latency=0.01, delivery_messages=60, delivery_chats=30,
        flood_updates=21, flood_gap=0.15, flood_quiet=5,  # 21: one reply beyond the group's minute
        scan_repeats=3, digest_repeats=1, memory_reference=False, backlog_cases=30, backlog_units=10,
        backlog_repeats=1,
    )
    figures = run(options, log=lambda line: None)

    def named(prefix: str) -> list[Figure]:
        found = [f for f in figures if f.name.startswith(prefix)]
        assert found, f"no figure {prefix!r} in {[f.name for f in figures]}"
        return found

    scans = named("Reminder scan")
    assert [f.data["cases"] for f in scans] == [400, 800]
    assert {f.data["selected"] for f in scans} == {20}  # the same number due at every size

    (digest,) = named("Daily digest")
    assert digest.data["scopes"] == 256 and digest.data["queued"] == 257  # and the working group

    burst, one_by_one, p50, p99, same_burst, same_one, *slow = named("Button press")
    assert burst.data["updates"] == one_by_one.data["updates"] == 2 * 4  # two cases, four updates
    assert p50.data["casebot"] > 0 and p99.data["bare"] > 0
    assert "aiohttp" in same_burst.name and same_burst.data["bare_aiohttp"] > 0
    assert "one at a time" in same_one.name and same_one.data["casebot"] == one_by_one.data["casebot"]
    assert len(slow) == 6 and all("every Bot API call taking 10 ms" in f.name for f in slow)
    assert slow[0].data["updates"] == 2 * 4 * 2  # two rounds

    p50_flood, p95_flood = named("Private /whoami while one group floods")
    backlog, unanswered = named("The flooding group's")
    flood = backlog.data
    assert flood["flood"] == 21 and flood["private"] >= 1 and len(flood["quiet_latencies"]) >= 1
    # The private command was answered while the group's backlog still waited on its limit (a
    # scheduler that let one chat hold up the others would answer it only after the last).
    assert flood["first_private_reply"] < flood["drained"]
    assert flood["private_before_drain"] >= max(1, flood["private"] - 1) and backlog.met
    assert flood["group_replies"] >= 20 and flood["group_replies"] + flood["parked"] >= 21
    assert p50_flood.data is flood and p95_flood.reference.endswith("with no flood")
    assert unanswered.met == (flood["parked"] == 0)

    rate, too_many, lost = named("Delivery")
    assert rate.data["delivered"] == 60 and lost.data["lost"] == 0 and lost.data["failed"] == 0
    assert too_many.data["count_429"] >= 0

    restart, fresh, first_run, memory = named("Start-up") + named("First run") + named("Peak RSS")
    assert fresh.data["fresh"]["digests"] == 257  # today's digests, caught up after start
    assert fresh.data["fresh"]["delivered"] >= 257 + 20  # and the reminders due, all delivered
    assert restart.data["restart"]["startup"] > 0 and memory.data["fresh"]["hwm_kib"] > 0
    assert first_run.data["fresh"]["first_run_after"] is not None or first_run.data["fresh"]["scheduled_in"] > 0

    report, report_rss = named("Report for")
    export, export_rss = named("Export --format xlsx")
    period_export, period_rss = named("Export --period")
    for n in (400, 800):  # the reference (the smallest size) and the measured size, both run
        assert report.data["report"][n]["seconds"] > 0 and report.data["report"][n]["maxrss_kib"] > 0
        assert report.data["report"][n]["charts"] == ["open-ages.png", "received-closed.png"]
        assert report.data["report"][n]["chart_bytes"] > 0 and report.data["report"][n]["received"] > 0
        assert export.data["export"][n]["cases"] == n and export.data["export"][n]["events"] > n
        assert export.data["export"][n]["bytes"] > 0 and export.data["export"][n]["maxrss_kib"] > 0
        assert 0 < period_export.data["period_export"][n]["cases"] < n  # the year's, not everything
    assert report.reference.endswith("at 400") and report_rss.value.endswith("MB")
    assert export.ratio != "—" and export_rss.value.endswith("MB") and period_rss.value.endswith("MB")
    backlog_run, none_due = named("Reminder run")
    assert backlog_run.data["messages"] == backlog_run.data["chats"] and none_due.data["handled"] == 30

    assert len(figures) == 2 + 2 + 1 + 6 + 6 + 4 + 3 + 4 + 6 and len(BENCHMARKS) == 8


@pytest.mark.sqlite_only("bench/ builds its databases as SQLite files")
def test_the_backlog_reminder_run_at_a_tiny_size(tmp_path: Path) -> None:
    """The reminder run after an import on its own: every imported case handled in one run, each
    chat told once (its units, their supervisors, the working group), each case's reminder and
    escalations recorded, and then a run with none due."""
    options = Options(benchmarks=("backlog",), data_dir=tmp_path / "data", work_dir=tmp_path / "work",
                      backlog_cases=30, backlog_units=10, backlog_repeats=2)
    run_figure, none_due = run(options, log=lambda line: None)
    assert run_figure.name.startswith("Reminder run: 30 imported overdue cases across 10 units")
    data = run_figure.data
    assert data["handled"] == 30 and data["events"] == 30 * 3  # remind, E1, E2 (years overdue)
    # 10 districts in two provinces (8 a province): 10 unit chats, 2 supervisors, the working group.
    assert data["messages"] == data["chats"] == 10 + 2 + 1 and run_figure.met is True
    assert data["most_buttons"] <= 100 and data["longest_text"] <= 4096 and data["repeats"] == 2
    assert none_due.name.startswith("Reminder run with none due") and data["none_due_seconds"] > 0
    assert not list((tmp_path / "data").glob("*.sqlite3"))  # no generated database needed


@pytest.mark.skipif(not pgtest.enabled(), reason=f"PostgreSQL: {pgtest.ENV} is not set")
def test_the_postgresql_benchmarks_run_at_a_tiny_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmarks that run on both stores, on both in the same run (``--store
    sqlite,postgresql``): the generated files moved to PostgreSQL by ``casebot migrate-db``, every
    benchmark measuring the same things on it (the same number due, a digest for every
    supervisor, presses that resolve their cases through the inbox, every notification
    delivered, the report and the exports counting the same cases), and the table comparing them."""
    from bot.db import Database

    # The suite's PostgreSQL run opens every file as a schema; the benchmarks' SQLite side is files.
    assert pgtest.open_file is not None
    monkeypatch.setattr(Database, "open", classmethod(pgtest.open_file))
    assert pgtest.URL is not None
    options = Options(
        benchmarks=PG_BENCHMARKS, stores=("sqlite", "postgresql"), database_url=pgtest.URL,
        keep_databases=False, database_prefix=f"casebot_bench_t{os.getpid()}_", sizes=[400, 800], due_now=20, data_dir=tmp_path / "data",
        work_dir=tmp_path / "work", press_cases=2, press_rounds=1, press_latency=0,
        delivery_messages=60, delivery_chats=30, scan_repeats=3, digest_repeats=1,
    )
    figures = run(options, log=lambda line: None)
    on = {kind: [f for f in figures if f.store == kind] for kind in ("sqlite", "postgresql")}
    assert [(f.benchmark, f.index) for f in on["sqlite"]] == [(f.benchmark, f.index) for f in on["postgresql"]]
    assert len(on["postgresql"]) == 2 + 1 + 6 + 3 + 6
    pg = {(f.benchmark, f.index): f for f in on["postgresql"]}
    sq = {(f.benchmark, f.index): f for f in on["sqlite"]}
    assert all(f.name.endswith(" [PostgreSQL]") for f in pg.values())

    scans = [pg[("reminders", 0)], pg[("reminders", 1)]]
    assert [f.data["cases"] for f in scans] == [400, 800] and {f.data["selected"] for f in scans} == {20}
    digest = pg[("digest", 0)]
    assert digest.data["scopes"] == 256 and digest.data["queued"] == 257
    burst = pg[("presses", 0)]
    assert burst.data["updates"] == 2 * 4  # two cases, four updates: each resolved through the inbox
    rate, _too_many, lost = pg[("delivery", 0)], pg[("delivery", 1)], pg[("delivery", 2)]
    assert rate.data["delivered"] == 60 and lost.data["lost"] == 0
    report, export = pg[("reports", 0)].data, pg[("reports", 2)].data
    for n in (400, 800):  # the same cases counted as on the file
        assert report["report"][n]["received"] == sq[("reports", 0)].data["report"][n]["received"] > 0
        assert report["report"][n]["charts"] == ["open-ages.png", "received-closed.png"]
        assert export["export"][n]["cases"] == n
        assert export["export"][n]["events"] == sq[("reports", 2)].data["export"][n]["events"]

    text = comparison(figures)
    assert text.count("\n") == 2 + len(on["postgresql"]) - 1
    assert "| PostgreSQL/SQLite |" in text.splitlines()[0]

    import psycopg  # the databases made for the run are dropped (keep_databases=False)

    with psycopg.connect(pgtest.URL, autocommit=True) as admin:
        left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                             (f"casebot\\_bench\\_t{os.getpid()}\\_%",)).fetchall()
    assert left == []
