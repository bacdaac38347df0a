"""Figure 6: reports and exports (issues 6 and 16): ``casebot report`` for a year and
``casebot export --format xlsx`` of 100k cases, wall time and peak memory, beside the same
commands on the 10k database (the reference) in the same run.

Each command runs as a user runs it: ``python -m bot.cli`` (what the ``casebot`` script calls)
in a process of its own, with a TOML config written from the synthetic ministry's
(``ministry.config_toml``) and pointing at a working copy of the database (``casebot`` opens the
database as the bot does: migrations, WAL, units synced from the config, so it may write).

- ``report --period <year> --charts <folder>``: the year of ``ministry.NOW`` (2026, the year
  with the most intake), printed as text, with its two PNG charts.
- ``export --format xlsx --output <file>``: everything (no period), with personal data: every
  case and every event, the heaviest export. Target (issue 16): under 20 s at 100k (it took 49 s
  through openpyxl's write-only mode), memory flat: peak RSS at 100k at most 0.2 KB a case above
  the 10k run's (no row is held; what grows is the access log's list of the cases shown).
- ``export --period <year> --format xlsx``: every case the year's report counts (received,
  resolved, closed, reopened or merged in it, or unfinished at its end) with its events, read
  from the cases' history as the report reads it.

Time: from the spawn to the exit (interpreter, imports, opening the database included). Peak
memory: the child's VmHWM, read by the child itself as it exits (not ``ru_maxrss`` from
``wait4``: Linux keeps in it the RSS of the forked copy of the parent before ``exec``, so after
the other benchmarks every child "peaked" at the parent's size). Before the
timed runs, one untimed report on the reference warms the page cache and matplotlib's font cache.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import ministry
from bench.common import Figure, mb, ms, ratio, size_label
from bench.store import Target, working_copy
from bot.pg import PgConnection, is_url

REPO = Path(__file__).resolve().parent.parent
PERIOD = str(ministry.NOW.year)   # the year of "now" in the data: the most intake
REPORT_TARGET_S = 10.0
EXPORT_TARGET_S = 20.0            # issue 16 (it was 60 s)
RSS_TARGET_KIB = 200 * 1024       # as the bot (figure 5)
# Memory flat: the export's peak RSS grows by at most this per case over the reference (KiB; it
# held every row once: 5.8 KiB a case; what grows now is the access log's list of cases shown).
FLAT_KIB_PER_CASE = 0.2
NOISE_KIB = 5 * 1024  # two runs of the same command differ by a few MB


@dataclass
class Run:
    """One command in a process of its own."""

    argv: list[str]
    seconds: float
    maxrss_kib: int
    stdout: str
    extra: dict[str, Any] = field(default_factory=dict)


def casebot(args: list[str], config: Path, out_dir: Path, name: str) -> Run:
    """``casebot <args> --config <config>`` in a fresh process; its wall time and peak RSS."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out_path, err_path = out_dir / f"{name}.out", out_dir / f"{name}.err"
    hwm_path = out_dir / f"{name}.hwm"
    child = ("import atexit, sys\n"
             "from bench.memory import vm\n"
             f"atexit.register(lambda: open({str(hwm_path)!r}, 'w').write(str(vm('VmHWM'))))\n"
             "from bot.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    argv = [sys.executable, "-c", child, *args, "--config", str(config)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} failed ({proc.returncode}):\n"
                           f"{err_path.read_text(errors='replace')[-3000:]}")
    del usage  # see the module's docstring
    return Run(argv, seconds, int(hwm_path.read_text()), out_path.read_text(encoding="utf-8"))


def measure(n: int, path: Target, work_dir: Path, *, warm: bool = False,
            export: bool = True) -> dict[str, Run]:
    """The report for a year and the full XLSX export on a working copy of ``path``."""
    folder = work_dir / f"reports-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    db = working_copy(path, work_dir, f"reports-{n}.sqlite3")
    config = folder / "casebot.toml"
    config.write_text(ministry.config_toml(db), encoding="utf-8")
    charts = folder / "charts"
    report_args = ["report", "--period", PERIOD, "--charts", str(charts)]
    if warm:
        casebot(report_args, config, folder, "warm-up")
    report = casebot(report_args, config, folder, "report")
    pngs = sorted(charts.glob("*.png"))
    report.extra = {"charts": [p.name for p in pngs], "chart_bytes": sum(p.stat().st_size for p in pngs),
                    "received": _received(db)}
    runs = {"report": report}
    xlsx = folder / "export.xlsx"
    if export:
        for name, extra in (("export", []), ("period_export", ["--period", PERIOD])):
            runs[name] = done = casebot(["export", "--format", "xlsx", "--output", str(xlsx), *extra],
                                        config, folder, name)
            found = re.search(r"^(\d+) cases, (\d+) events$", done.stdout, re.M)
            done.extra = {"bytes": xlsx.stat().st_size if xlsx.exists() else 0,
                          "cases": int(found[1]) if found else 0, "events": int(found[2]) if found else 0}
            xlsx.unlink(missing_ok=True)  # an export of 1M cases is large; keep the work dir small
    for leftover in pngs:
        leftover.unlink(missing_ok=True)
    return runs


def _received(db: Target) -> int:
    """Cases received in the period (the report prints it in the ministry's language)."""
    from bot.db import to_db
    from bot.domain.reports import parse_period

    period = parse_period(PERIOD, ministry.settings_for(db).tz)
    sql = "SELECT COUNT(*) FROM cases WHERE received_at >= ? AND received_at < ?"
    args = (to_db(period.start), to_db(period.end))
    if is_url(db):
        with closing(PgConnection.connect(str(db))) as pg_con:
            row = pg_con.execute(sql, args).fetchone()
    else:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            row = con.execute(sql, args).fetchone()
    return int(row[0])


def run(paths: dict[int, Target], work_dir: Path, *, exports: bool = True) -> list[Figure]:
    """The largest size beside the smallest (the reference), each on a working copy.
    ``exports``: also the two exports (False: the year's report alone)."""
    small, big = min(paths), max(paths)
    runs = {n: measure(n, paths[n], work_dir, warm=n == small, export=exports) for n in sorted({small, big})}
    for n in runs:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work_dir / f'reports-{n}.sqlite3'}{suffix}").unlink(missing_ok=True)
    same = small == big
    rb, rs = runs[big]["report"], runs[small]["report"]
    at = size_label(small)

    def ref(value: str) -> str:
        return "—" if same else f"{value} at {at}"

    def rat(a: float, b: float) -> str:
        return "—" if same else ratio(a, b)

    data = {kind: {n: _raw(r[kind]) for n, r in runs.items()}
            for kind in ("report", "export", "period_export") if kind in runs[big]}
    report_name = (f"Report for {PERIOD} at {size_label(big)} cases ({rb.extra['received']:,} received "
                   f"in {PERIOD}; text and {len(rb.extra['charts'])} PNG charts), spawn → exit")
    report = [
        Figure(report_name, ms(rb.seconds), ref(ms(rs.seconds)), rat(rb.seconds, rs.seconds),
               f"< {REPORT_TARGET_S:.0f} s", rb.seconds < REPORT_TARGET_S, data=data),
        Figure(f"Report for {PERIOD} at {size_label(big)} cases: peak RSS", mb(rb.maxrss_kib),
               ref(mb(rs.maxrss_kib)), rat(rb.maxrss_kib, rs.maxrss_kib), "≤ 200 MB",
               rb.maxrss_kib <= RSS_TARGET_KIB, data=data),
    ]
    if not exports:
        return report
    eb, es = runs[big]["export"], runs[small]["export"]
    pb, ps = runs[big]["period_export"], runs[small]["period_export"]
    export_name = (f"Export --format xlsx of {size_label(big)} cases, everything with personal data "
                   f"({eb.extra['cases']:,} cases, {eb.extra['events']:,} events, "
                   f"{eb.extra['bytes'] / 1e6:,.1f} MB), spawn → exit")
    return [
        *report,
        Figure(export_name, ms(eb.seconds), ref(ms(es.seconds)), rat(eb.seconds, es.seconds),
               f"< {EXPORT_TARGET_S:.0f} s", eb.seconds < EXPORT_TARGET_S, data=data),
        Figure(f"Export --format xlsx of {size_label(big)} cases: peak RSS", mb(eb.maxrss_kib),
               ref(mb(es.maxrss_kib)), rat(eb.maxrss_kib, es.maxrss_kib),
               f"flat (≤ {FLAT_KIB_PER_CASE} KB a case over {at}), ≤ 200 MB",
               eb.maxrss_kib <= RSS_TARGET_KIB
               and (same or eb.maxrss_kib - es.maxrss_kib
                    <= max(FLAT_KIB_PER_CASE * (big - small), NOISE_KIB)),
               data=data),
        Figure(f"Export --period {PERIOD} --format xlsx at {size_label(big)} cases (every case the year's "
               f"report counts: {pb.extra['cases']:,} cases, {pb.extra['events']:,} events), spawn → exit",
               ms(pb.seconds), ref(ms(ps.seconds)), rat(pb.seconds, ps.seconds), f"< {EXPORT_TARGET_S:.0f} s",
               pb.seconds < EXPORT_TARGET_S, data=data),
        Figure(f"Export --period {PERIOD} --format xlsx at {size_label(big)} cases: peak RSS",
               mb(pb.maxrss_kib),
               ref(mb(ps.maxrss_kib)), rat(pb.maxrss_kib, ps.maxrss_kib), "≤ 200 MB",
               pb.maxrss_kib <= RSS_TARGET_KIB, data=data),
    ]


def _raw(r: Run) -> dict[str, Any]:
    return {"seconds": r.seconds, "maxrss_kib": r.maxrss_kib, **r.extra}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.reports --cases 1000000``: only the report and export at one size
    (no reference), on the cached database."""
    import argparse
    import shutil
    import tempfile

    from bench import generate

    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--report-only", action="store_true", help="no export")
    args = parser.parse_args(argv)
    path = generate.ensure(args.cases)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="casebot-bench-"))
    try:
        for n, r in measure(args.cases, path, work, warm=True,
                               export=not args.report_only).items():
            print(f"{n}: {ms(r.seconds)}, peak RSS {mb(r.maxrss_kib)}, {r.extra}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / f'reports-{args.cases}.sqlite3'}{suffix}").unlink(missing_ok=True)
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
