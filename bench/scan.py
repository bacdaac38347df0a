"""Figures 1 and 2: the reminder scan at 10k, 100k and 1M cases with the same number due, and
the daily digest for every supervisor at 1M cases beside the same digest at the smallest size."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import Figure, median, ms, open_domain, ratio, size_label
from bench.ministry import NOW
from bench.store import Target, working_copy

SCAN_LIMIT = 200  # bot.jobs.reminders.BATCH


async def reminder_scan(paths: dict[int, Target], *, repeats: int = 1000, block: int = 100) -> list[Figure]:
    """Median time of ``CaseService.due_reminders(NOW, 200)`` on each database (read-only).
    The sizes take turns in blocks of ``block`` calls, each block on a connection of its own
    (aiosqlite runs one thread per connection, and where the scheduler puts that thread
    weighs more than the query), so that the machine's noise falls on all sizes alike."""
    sizes = sorted(paths)
    counts: dict[int, int] = {}
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for i in range(max(1, repeats // block)):
        for n in sizes[i % len(sizes):] + sizes[:i % len(sizes)]:
            domain = await open_domain(paths[n])
            try:
                counts[n] = len(await domain.cases.due_reminders(NOW, SCAN_LIMIT))
                for _ in range(10):  # warm the page cache and the statement cache
                    await domain.cases.due_reminders(NOW, SCAN_LIMIT)
                for _ in range(block):
                    t = time.perf_counter()
                    await domain.cases.due_reminders(NOW, SCAN_LIMIT)
                    times[n].append(time.perf_counter() - t)
            finally:
                await domain.close()
    if len(set(counts.values())) != 1:
        raise AssertionError(f"not the same number due at every size: {counts}")
    smallest, largest = min(times), max(times)
    base = median(times[smallest])
    figures = []
    for n in sorted(times):
        value = median(times[n])
        last = n == largest and n != smallest
        figures.append(Figure(
            f"Reminder scan: due_reminders(now, {SCAN_LIMIT}), {size_label(n)} cases, "
            f"{counts[n]} selected",
            ms(value),
            reference="—" if n == smallest else f"{ms(base)} at {size_label(smallest)}",
            ratio="—" if n == smallest else ratio(value, base),
            target=f"{size_label(n)}/{size_label(smallest)} ≤ 2" if last else "—",
            met=(value / base <= 2) if last else None,
            data={"cases": n, "seconds": value, "selected": counts[n], "repeats": repeats},
        ))
    return figures


async def digest(paths: dict[int, Target], work_dir: Path, *, repeats: int = 3) -> list[Figure]:
    """Total time of ``DigestService.send_due`` (every supervisor and the working group) on
    working copies, largest beside smallest, repeated with the day's digests cleared between."""
    copies = {n: working_copy(p, work_dir, f"digest-{n}.sqlite3") for n, p in paths.items()}
    domains = {n: await open_domain(p, sync=True) for n, p in sorted(copies.items())}
    times: dict[int, list[float]] = {n: [] for n in domains}
    snapshots: dict[int, list[float]] = {n: [] for n in domains}
    queued: dict[int, int] = {}
    try:
        for _ in range(repeats):
            for n, d in domains.items():
                async with d.db.transaction() as conn:
                    conn.add("DELETE FROM digest_log")
                    conn.add("DELETE FROM outbox")
                t = time.perf_counter()
                queued[n] = await d.digests.send_due(NOW)
                times[n].append(time.perf_counter() - t)
                t = time.perf_counter()
                await d.digests.snapshot(NOW)
                snapshots[n].append(time.perf_counter() - t)
        scopes = {n: len([r for r in await d.digests.recipients() if r[2] is not None])
                  for n, d in domains.items()}
    finally:
        for d in domains.values():
            await d.close()
    smallest, largest = min(times), max(times)
    value, base = median(times[largest]), median(times[smallest])
    snap = median(snapshots[largest])
    return [Figure(
        f"Daily digest: send_due for {queued[largest]} recipients ({scopes[largest]} supervisor "
        f"scopes), {size_label(largest)} cases",
        f"{ms(value)} (snapshot {ms(snap)})",
        reference=f"{ms(base)} at {size_label(smallest)}" if largest != smallest else "—",
        ratio=ratio(value, base) if largest != smallest else "—",
        target="< 5 s",
        met=value < 5.0,
        data={"cases": largest, "seconds": value, "reference_seconds": base, "queued": queued[largest],
              "scopes": scopes[largest], "snapshot_seconds": snap},
    )]
