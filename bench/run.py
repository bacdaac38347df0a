"""Run the benchmarks and print one Markdown table: figure, value, reference, ratio, target.

    python -m bench.run                      # everything at 10k, 100k and 1M cases
    python -m bench.run reminders digest     # some of them
    python -m bench.run --sizes 10000,100000 --out /tmp/bench.md
    python -m bench.run --store sqlite,postgresql reminders digest   # both stores, side by side

Databases are generated on first use and cached (bench/generate.py); benchmarks that write
work on copies in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import telegram

from bench import backlog, delivery, flood, generate, memory, presses, reports, scan, store
from bench.common import Figure, size_label, table
from bench.compare import comparison

BENCHMARKS = ("reminders", "backlog", "digest", "presses", "flood", "delivery", "memory", "reports")
# The benchmarks that also run on PostgreSQL (--store postgresql); the others are SQLite's alone
# (backlog builds a database of its own, flood and memory measure the bot's process, not the store).
PG_BENCHMARKS = ("reminders", "digest", "presses", "delivery", "reports")


@dataclass
class Options:
    sizes: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    benchmarks: tuple[str, ...] = BENCHMARKS
    seed: int = 1
    due_now: int = generate.DUE_NOW
    data_dir: Path = generate.DATA_DIR
    work_dir: Path | None = None        # None: a temporary folder, removed at the end
    press_size: int | None = None       # None: 100k if measured, else the largest size below
    press_cases: int = 40               # flows per mode and round (4 updates each)
    press_rounds: int = 4
    press_latency: float = 0.05         # a second pass with this network latency (0: none)
    flood_updates: int = 40             # a group's commands at once, each answered in the group
    flood_gap: float = 0.25             # between a private reply and the next private command
    flood_quiet: int = 100              # private commands with no flood (at most), the reference
    delivery_messages: int = 3000
    delivery_chats: int = 1000
    scan_repeats: int = 1000
    digest_repeats: int = 3
    memory_reference: bool = True       # also start the bot on the smallest database
    report_size: int | None = None      # reports and exports; None: as press_size's default
    report_exports: bool = True         # False: the year's report alone (no exports)
    backlog_cases: int = 650            # the reminder run after importing a backlog: its cases,
    backlog_units: int = 200            # the districts they are spread over,
    backlog_repeats: int = 3            # and runs (each on a fresh copy), median
    stores: tuple[str, ...] = (store.SQLITE,)  # each benchmark on each, in turn, in the same run
    database_url: str = store.DEFAULT_URL  # the PostgreSQL server (its databases made from it)
    keep_databases: bool = True         # False: drop the PostgreSQL databases made, at the end
    database_prefix: str = store.PREFIX  # of their names


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import os

    return (f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"python-telegram-bot {telegram.__version__}")


def load() -> str:
    """The load averages (1, 5, 15 minutes) as the run ends: other work on the machine."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def code_state() -> str:
    """The commit measured, and the files of bot/ changed since (work in progress)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "bot"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(changed)}" if changed else "")


def run(options: Options, log: Callable[[str], None] = print) -> list[Figure]:
    sizes = sorted(set(options.sizes))
    wanted = set(options.benchmarks)
    up_to_100k = max([s for s in sizes if s <= 100_000] or [min(sizes)])
    press_size = options.press_size or up_to_100k
    needed = set(sizes) if wanted & {"reminders"} else set()
    if wanted & {"digest", "memory"}:
        needed |= {min(sizes), max(sizes)}
    if "presses" in wanted:
        needed.add(press_size)
    if wanted & {"delivery", "flood"}:
        needed.add(min(sizes))
    report_sizes = {min(sizes), options.report_size or up_to_100k}  # the reference, and 100k
    if "reports" in wanted:
        needed |= report_sizes
    files = {n: generate.ensure(n, seed=options.seed, due_now=options.due_now,
                                data_dir=options.data_dir, log=log) for n in sorted(needed)}
    targets: dict[str, dict[int, store.Target]] = {}
    for kind in options.stores:
        if kind == store.POSTGRESQL:
            targets[kind] = {n: store.ensure(f, options.database_url, log, prefix=options.database_prefix)
                             for n, f in files.items()}
        else:
            targets[kind] = dict(files)
    own_work = options.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="casebot-bench-")) if own_work else options.work_dir
    assert work is not None
    figures: list[Figure] = []
    try:
        for name, kind in [(b, k) for b in BENCHMARKS for k in options.stores]:
            if name not in wanted:
                continue
            if kind != store.SQLITE and name not in PG_BENCHMARKS:
                log(f"{name}: SQLite only (not run on {store.label(kind)})")
                continue
            paths = targets[kind]
            ends = {n: paths[n] for n in {min(sizes), max(sizes)} if n in paths}
            tag = "" if options.stores == (store.SQLITE,) else f" [{store.label(kind)}]"
            at_start = load().split()[0]
            log(f"{name}{tag} … (load {at_start})")
            started = time.perf_counter()
            if name == "reminders":
                got = asyncio.run(scan.reminder_scan(paths, repeats=options.scan_repeats,
                                                  block=min(100, options.scan_repeats)))
            elif name == "backlog":
                got = asyncio.run(backlog.reminder_run(work, cases=options.backlog_cases,
                                                       units=options.backlog_units,
                                                       repeats=options.backlog_repeats))
            elif name == "digest":
                got = asyncio.run(scan.digest(ends, work, repeats=options.digest_repeats))
            elif name == "presses":
                got = asyncio.run(presses.run(paths[press_size], work, cases=options.press_cases,
                                              rounds=options.press_rounds))
                for f in got:
                    f.name += f" ({size_label(press_size)} cases)"
                if options.press_latency > 0:  # the same where each call takes a round trip
                    slow = asyncio.run(presses.run(paths[press_size], work,
                                                   cases=min(20, options.press_cases), rounds=2,
                                                   latency=options.press_latency))
                    for f in slow:
                        f.name += (f" ({size_label(press_size)} cases, every Bot API call taking"
                                   f" {options.press_latency * 1000:.0f} ms)")
                    got += slow
            elif name == "flood":
                got = asyncio.run(flood.run(files[min(sizes)], work, flood=options.flood_updates,
                                            gap=options.flood_gap, quiet=options.flood_quiet))
            elif name == "delivery":
                got = asyncio.run(delivery.run(paths[min(sizes)], work,
                                               messages=options.delivery_messages,
                                               n_chats=options.delivery_chats))
            elif name == "memory":
                got = asyncio.run(memory.run(  # SQLite only: the files
                    {n: files[n] for n in ends} if options.memory_reference
                    else {max(sizes): files[max(sizes)]}, work))
            else:
                got = reports.run({n: paths[n] for n in report_sizes}, work, exports=options.report_exports)
            for i, f in enumerate(got):
                f.name += tag
                f.store, f.benchmark, f.index, f.load = kind, name, i, at_start
            figures += got
            for f in got:
                log(f"  {f.name}: {f.value} (reference {f.reference}, ratio {f.ratio}) {f.verdict}")
            log(f"{name}{tag} done in {time.perf_counter() - started:.1f} s")
            for leftover in work.glob("*.sqlite3*"):
                leftover.unlink()
            store.drop_copies()
    finally:
        store.drop_copies()
        if not options.keep_databases:
            for url in targets.get(store.POSTGRESQL, {}).values():
                store.drop(str(url))
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                        help=f"some of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="case counts, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--due-now", type=int, default=generate.DUE_NOW)
    parser.add_argument("--data-dir", type=Path, default=generate.DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--press-size", type=int, default=None)
    parser.add_argument("--press-cases", type=int, default=40)
    parser.add_argument("--report-size", type=int, default=None,
                        help="cases for the reports and exports (default: 100k or the largest below)")
    parser.add_argument("--no-exports", action="store_true",
                        help="reports: the year's report alone, without the two exports")
    parser.add_argument("--press-rounds", type=int, default=4)
    parser.add_argument("--press-latency", type=float, default=0.05,
                        help="seconds per Bot API call in a second pass of presses (0: skip it)")
    parser.add_argument("--flood-updates", type=int, default=40,
                        help="commands a group sends at once in the flood benchmark")
    parser.add_argument("--delivery-messages", type=int, default=3000)
    parser.add_argument("--delivery-chats", type=int, default=1000)
    parser.add_argument("--backlog-cases", type=int, default=650)
    parser.add_argument("--backlog-units", type=int, default=200)
    parser.add_argument("--store", default=store.SQLITE,
                        help="sqlite, postgresql, or both (sqlite,postgresql: each benchmark on each "
                             "in turn, and a table comparing them); default sqlite")
    parser.add_argument("--database-url", default=store.DEFAULT_URL,
                        help="the PostgreSQL server for --store postgresql (a database on it to "
                             f"connect to first; default {store.DEFAULT_URL})")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    unknown = [b for b in args.benchmarks if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    stores = tuple(s.strip().lower() for s in args.store.split(",") if s.strip())
    if not stores or any(s not in store.STORES for s in stores):
        parser.error(f"--store: one or both of {', '.join(store.STORES)}")
    options = Options(
        sizes=[int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()],
        benchmarks=tuple(args.benchmarks) or BENCHMARKS, seed=args.seed, due_now=args.due_now,
        data_dir=args.data_dir, work_dir=args.work_dir, press_size=args.press_size,
        press_cases=args.press_cases, press_rounds=args.press_rounds, press_latency=args.press_latency,
        report_exports=not args.no_exports,
        flood_updates=args.flood_updates, delivery_messages=args.delivery_messages,
        delivery_chats=args.delivery_chats, report_size=args.report_size,
        backlog_cases=args.backlog_cases, backlog_units=args.backlog_units,
        stores=stores, database_url=args.database_url,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    figures = run(options, log)
    text = f"Machine: {machine()}\nCode: {code_state()}\nLoad: {load()}\n"
    if store.POSTGRESQL in stores:
        text += f"Server: {store.server(options.database_url)}\n"
    text += f"\n{table(figures)}\n"
    if len(stores) > 1:
        text += f"\n{comparison(figures)}\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
