"""Figure: the carried-over backlog in the reminder ladder. 650 overdue cases (the ministry's
"650 unsolved cases from 2021") imported across 200 districts, then one run of the repeating
job's ladder (``CaseService.run_ladder``): the time it takes, the messages it queues (one per chat
told, not one per case and step), next to a run on the same database with none due."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import ministry
from bench.common import Figure, median, ms, open_domain
from bench.generate import working_copy
from bench.ministry import ADMIN, FIRST_SUPERVISOR, NOW
from bot.domain.model import SYSTEM, ImportedCase
from bot.domain.rules import Status

TZ = ZoneInfo(ministry.TIMEZONE)
FIRST_RECEIVED = date(2021, 1, 4)


async def _imported(path: Path, cases: int, units: int) -> dict[str, int]:
    """A new database of the ministry (its units, one supervisor per province) with ``cases``
    imported overdue cases, assigned or in progress, spread over the first ``units`` districts."""
    domain = await open_domain(path, sync=True)
    try:
        await domain.people.sync_config(NOW)
        for p in range(len(ministry.PROVINCES)):
            token = await domain.people.invite(ADMIN, ministry.province_key(p), "supervisor", NOW)
            await domain.people.redeem(token, FIRST_SUPERVISOR + p, f"Supervisor {p + 1}", None, "km", NOW)
        districts = [(await domain.units.by_key(ministry.district_key(p, d))).id
                     for p in range(len(ministry.PROVINCES))
                     for d in range(ministry.DISTRICTS_PER_PROVINCE)][:units]
        categories = [c.id for c in await domain.units.categories()]
        rows = []
        for i in range(cases):
            day = FIRST_RECEIVED + timedelta(days=i * 365 // max(cases, 1))
            received = datetime(day.year, day.month, day.day, 12, tzinfo=TZ)
            rows.append(ImportedCase(
                f"2021-{i:04d}", received, "letter", categories[i % len(categories)],
                districts[i % len(districts)], f"Carried-over request {i + 1} from the 2021 register",
                "", f"Citizen {i + 1}", "", Status.IN_PROGRESS if i % 3 else Status.ASSIGNED))
        created, skipped = await domain.cases.import_cases(SYSTEM, rows, NOW)
        assert len(created) == cases and not skipped
        due = await domain.cases.due_reminders(NOW, cases + 1)
        assert len(due) == cases, f"{len(due)} of {cases} imported cases due"
        return {"districts": len(districts)}
    finally:
        await domain.close()


async def _run(path: Path) -> dict[str, float]:
    domain = await open_domain(path)
    try:
        mark = await domain.db.one("SELECT COALESCE(MAX(id), 0) FROM outbox")
        assert mark is not None
        started = time.perf_counter()
        handled = await domain.cases.run_ladder(NOW)
        seconds = time.perf_counter() - started
        rows = await domain.db.all("SELECT chat_id, text, payload FROM outbox WHERE kind = 'text' AND id > ?",
                                   (int(mark[0]),))
        events = await domain.db.one(
            "SELECT COUNT(*) FROM events WHERE action IN ('warn', 'remind', 'escalate')")
        assert events is not None
        started = time.perf_counter()
        again = await domain.cases.run_ladder(NOW)  # on the same database: none due now
        none_due = time.perf_counter() - started
        assert again == 0
        return {"seconds": seconds, "none_due": none_due, "handled": handled, "messages": len(rows),
                "chats": len({r[0] for r in rows}), "events": int(events[0]),
                "longest": max((len(r[1]) for r in rows), default=0),
                "buttons": max((sum(len(row) for row in json.loads(r[2]).get("buttons", [])) for r in rows),
                               default=0)}
    finally:
        await domain.close()


async def reminder_run(work_dir: Path, *, cases: int = 650, units: int = 200,
                       repeats: int = 3) -> list[Figure]:
    """Median of ``repeats`` runs, each on a fresh copy of the imported database."""
    work_dir.mkdir(parents=True, exist_ok=True)
    base = work_dir / "backlog-base.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    setup = await _imported(base, cases, units)
    runs = [await _run(working_copy(base, work_dir, f"backlog-{i}.sqlite3")) for i in range(max(1, repeats))]
    last = runs[-1]
    if any((r["messages"], r["chats"], r["events"]) != (last["messages"], last["chats"], last["events"])
           for r in runs):
        raise AssertionError(f"runs differ: {runs}")
    value, none_due = median([r["seconds"] for r in runs]), median([r["none_due"] for r in runs])
    data = {"cases": cases, "units": setup["districts"], "handled": last["handled"],
            "messages": last["messages"], "chats": last["chats"], "events": last["events"],
            "longest_text": last["longest"], "most_buttons": last["buttons"], "seconds": value,
            "none_due_seconds": none_due, "repeats": len(runs)}
    return [
        Figure(
            f"Reminder run: {cases} imported overdue cases across {setup['districts']} units "
            f"({last['events']} reminders and escalations recorded)",
            f"{last['messages']} messages in {ms(value)}",
            reference=f"{ms(none_due)} with none due",
            target=f"one message per chat told ({last['chats']}), ≤ 4,096 characters and ≤ 100 buttons each",
            met=(last["messages"] == last["chats"] and last["longest"] <= 4096 and last["buttons"] <= 100),
            data=data,
        ),
        Figure("Reminder run with none due (the same database, right after)", ms(none_due), data=data),
    ]
